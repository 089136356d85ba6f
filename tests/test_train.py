"""fit: updates, history, validation, checkpoints and resuming, divergence errors, custom steps."""
import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.train import TrainingDiverged, evaluate, fit


class Regression(nn.Module):
    """y = x W^T + b with a mean-squared-error loss that also reports its mean absolute error."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        return self.fc(x)

    def loss(self, x, y):
        error = self(x) - y
        mse = (error * error).mean()
        return mse, {"mae": error.abs().mean()}


def make_batches(n_batches=4, batch=16, seed=0):
    """A fixed list of (x, y) batches from y = x . (1, -2, 3) + 0.5."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        x = rng.standard_normal((batch, 3))
        y = x @ np.array([[1.0], [-2.0], [3.0]]) + 0.5
        batches.append((tg.tensor(x), tg.tensor(y)))
    return batches


def make_model_and_optimizer(seed=0):
    tg.manual_seed(seed)
    model = Regression()
    return model, tg.optim.SGD(model.parameters(), lr=0.1)


def test_fit_reduces_the_loss_and_records_one_value_per_epoch():
    model, optimizer = make_model_and_optimizer()
    history = fit(model, make_batches(), optimizer, epochs=5, progress=False)
    assert set(history) == {"loss", "mae", "seconds"}
    assert all(len(values) == 5 for values in history.values())
    assert history["loss"][-1] < 0.05 * history["loss"][0]


def test_history_is_the_sample_weighted_mean_of_the_batch_metrics():
    model, _ = make_model_and_optimizer()
    batches = make_batches()[:1] + [(x[:4], y[:4]) for x, y in make_batches(seed=1)[:1]]
    frozen = tg.optim.SGD(model.parameters(), lr=0.0)  # no update: metrics are those of one model
    history = fit(model, batches, frozen, epochs=1, progress=False)
    losses = [model.loss(x, y)[0].item() for x, y in batches]
    expected = (losses[0] * 16 + losses[1] * 4) / 20
    np.testing.assert_allclose(history["loss"][0], expected, rtol=1e-6)


def test_validation_metrics_are_prefixed_and_computed_without_a_graph():
    model, optimizer = make_model_and_optimizer()
    val = make_batches(n_batches=2, seed=5)
    history = fit(model, make_batches(), optimizer, epochs=2, val_loader=val, progress=False)
    assert "val_loss" in history and "val_mae" in history
    np.testing.assert_allclose(history["val_loss"][-1], evaluate(model, val)["loss"], rtol=1e-6)
    assert model.training


class FailingLoss(Regression):
    """Its loss raises, as a shape mismatch in a validation batch would."""

    def loss(self, x, y):
        assert not self.training, "evaluate calls the loss in eval mode"
        raise ValueError("a bad batch")


def test_evaluate_restores_training_mode_when_the_loss_raises():
    tg.manual_seed(0)
    model = FailingLoss()
    model.train()
    with pytest.raises(ValueError, match="a bad batch"):
        evaluate(model, make_batches(n_batches=1))
    assert model.training and model.fc.training


def test_checkpoint_every_epoch_and_resume_continues_identically(tmp_path):
    batches = make_batches()
    straight, optimizer = make_model_and_optimizer()
    fit(straight, batches, optimizer, epochs=4, progress=False)

    path = tmp_path / "run.ckpt"
    first, optimizer = make_model_and_optimizer()
    fit(first, batches, optimizer, epochs=2, checkpoint=path, progress=False)
    assert tg.load(path)["epoch"] == 2

    resumed, optimizer = make_model_and_optimizer(seed=123)  # other weights: all come from the file
    history = fit(resumed, batches, optimizer, epochs=4, resume=path, checkpoint=path,
                  progress=False)
    assert len(history["loss"]) == 4
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=name)


def test_resume_restores_the_optimizer_state(tmp_path):
    path = tmp_path / "adam.ckpt"
    model, _ = make_model_and_optimizer()
    adam = tg.optim.Adam(model.parameters(), lr=0.01)
    fit(model, make_batches(), adam, epochs=1, checkpoint=path, progress=False)
    other, _ = make_model_and_optimizer()
    other_adam = tg.optim.Adam(other.parameters(), lr=0.01)
    fit(other, make_batches(), other_adam, epochs=1, resume=path, progress=False)
    assert other_adam.state_dict()["state"][0]["step"] == 4  # 4 batches in epoch 1


class Exploding(Regression):
    """Its loss becomes inf on the third step of the second epoch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def loss(self, x, y):
        self.calls += 1
        loss, metrics = super().loss(x, y)
        if self.calls == 7:
            loss = loss * float("inf")
        return loss, metrics


def test_a_non_finite_loss_names_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    tg.manual_seed(0)
    model = Exploding()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "good.ckpt"
    with pytest.raises(TrainingDiverged, match=r"loss became inf at epoch 2, step 3.*good\.ckpt"):
        fit(model, make_batches(), optimizer, epochs=3, checkpoint=path, progress=False)
    assert tg.load(path)["epoch"] == 1


class CountingSteps(Regression):
    """A model with its own training step (as a GAN has): fit must call it, not the default."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def train_step(self, batch, optimizers):
        self.steps += 1
        x, y = batch
        loss, _ = self.loss(x, y)
        optimizers["main"].zero_grad()
        loss.backward()
        optimizers["main"].step()
        return {"loss": loss, "steps": self.steps}


def test_a_model_can_provide_its_own_training_step_and_optimizer_dict(tmp_path):
    tg.manual_seed(0)
    model = CountingSteps()
    optimizers = {"main": tg.optim.SGD(model.parameters(), lr=0.1)}
    path = tmp_path / "custom.ckpt"
    history = fit(model, make_batches(), optimizers, epochs=2, checkpoint=path, progress=False)
    assert model.steps == 8
    assert history["loss"][-1] < history["loss"][0]
    assert set(tg.load(path)["optimizer"]) == {"main"}


def test_on_epoch_end_is_called_with_the_history():
    model, optimizer = make_model_and_optimizer()
    seen = []
    fit(model, make_batches(), optimizer, epochs=3, progress=False,
        on_epoch_end=lambda epoch, history: seen.append((epoch, len(history["loss"]))))
    assert seen == [(1, 1), (2, 2), (3, 3)]


def test_a_non_finite_loss_stops_training_before_the_update_spoils_the_weights():
    tg.manual_seed(0)
    model = Exploding()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDiverged):
        fit(model, make_batches(), optimizer, epochs=3, progress=False)
    assert all(np.isfinite(p.data).all() for p in model.parameters())


class CountingLoader:
    """A loader whose __iter__ is not a generator and counts the passes it starts."""

    def __init__(self, batches):
        self.batches = batches
        self.passes = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


@pytest.mark.parametrize("progress", [False, True])
def test_fit_starts_exactly_one_pass_over_the_loader_per_epoch(progress, capsys):
    model, optimizer = make_model_and_optimizer()
    loader = CountingLoader(make_batches())
    history = fit(model, loader, optimizer, epochs=3, progress=progress)
    assert loader.passes == 3
    assert len(history["loss"]) == 3
