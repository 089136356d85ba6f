"""The GAN: the k-step minibatch algorithm, who gets which gradient, the two generator losses, the
logged metrics, errors, a tiny 1-D GAN that learns, fit, and the DCGAN builders.

Each test checks one claim of tinygen/models/gan.py against an independent reference: calls and
inputs recorded by a wrapper module, parameter snapshots, hand-derived derivatives of a
one-parameter generator, NumPy float64 formulas.
"""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.data import toy
from tinygen.data.loader import DataLoader
from tinygen.models import (
    GAN,
    dcgan,
    dcgan_discriminator,
    dcgan_generator,
    gan_optimizers,
    mlp_discriminator,
    mlp_generator,
)
from tinygen.train import fit

METRICS = {"loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm"}


class Recorder(nn.Module):
    """Calls net, and keeps a copy of every input and whether it carries a graph."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.inputs = []
        self.input_requires_grad = []

    def forward(self, x):
        self.inputs.append(x.numpy().copy())
        self.input_requires_grad.append(x.requires_grad)
        return self.net(x)


def tiny_gan(k=1, seed=0, generator_loss="non-saturating", prior="normal", dtype="float32"):
    """A 2-D GAN with small MLPs; its discriminator is wrapped in a Recorder."""
    tg.manual_seed(seed)
    generator = mlp_generator(2, [8], 2, out_activation=None)
    discriminator = Recorder(mlp_discriminator(2, [8]))
    gan = GAN(generator, discriminator, 2, prior=prior, k=k, generator_loss=generator_loss)
    return gan.to(dtype)


def ring_batch(n, seed=0):
    return tg.tensor(toy.Ring().sample(n, np.random.default_rng(seed)).astype(np.float32))


def snapshot(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def grads(module):
    return {name: None if p.grad is None else p.grad.data.copy()
            for name, p in module.named_parameters()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        if a[name] is None or b[name] is None:
            assert a[name] is None and b[name] is None, name
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ---- the k-step loop ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5])
def test_each_iteration_calls_d_twice_per_d_step_and_once_in_the_g_step(k):
    gan = tiny_gan(k=k)
    optimizers = gan_optimizers(gan, lr=1e-3)
    recorder = gan.discriminator
    for iteration in range(1, 3):
        gan.train_step(ring_batch(4 * k, seed=iteration), optimizers)
        assert len(recorder.inputs) == iteration * (2 * k + 1)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_each_d_step_takes_its_own_m_real_samples_and_m_fakes_without_a_graph(k):
    m = 4
    gan = tiny_gan(k=k)
    batch = ring_batch(k * m + k - 1)  # m = len // k = 4; the k - 1 rows over k * m are left out
    gan.train_step(batch, gan_optimizers(gan, lr=1e-3))
    recorder = gan.discriminator
    x = batch.numpy()
    for step in range(k):
        real, fake = recorder.inputs[2 * step], recorder.inputs[2 * step + 1]
        np.testing.assert_array_equal(real, x[step * m:(step + 1) * m])
        assert fake.shape == (m, 2)
        assert not recorder.input_requires_grad[2 * step + 1]  # G(z) made under no_grad
    reals = np.concatenate(recorder.inputs[0:2 * k:2])
    assert len(np.unique(reals, axis=0)) == k * m  # k * m distinct samples, none used twice
    # the G step: m fresh samples, carrying G's graph
    assert recorder.inputs[-1].shape == (m, 2)
    assert recorder.input_requires_grad[-1]


def wrap_step(optimizer, before=None, after=None):
    """Make optimizer.step call before() and after() around the real step."""
    step = optimizer.step

    def wrapped(*args, **kwargs):
        if before is not None:
            before()
        result = step(*args, **kwargs)
        if after is not None:
            after()
        return result

    optimizer.step = wrapped


@pytest.mark.parametrize("k", [1, 3])
def test_d_steps_neither_give_g_a_gradient_nor_change_g(k):
    gan = tiny_gan(k=k)
    optimizers = gan_optimizers(gan, lr=1e-2)
    gan.train_step(ring_batch(2 * k), optimizers)  # G now holds the gradients of a G step
    g_params, g_grads = snapshot(gan.generator), grads(gan.generator)
    assert all(g is not None for g in g_grads.values())
    seen = []

    def check_g():
        assert_same(grads(gan.generator), g_grads)  # nothing added to (or reset in) G's grads
        assert_same(snapshot(gan.generator), g_params)
        seen.append(True)

    wrap_step(optimizers["discriminator"], before=check_g, after=check_g)
    gan.train_step(ring_batch(2 * k, seed=1), optimizers)
    assert len(seen) == 2 * k
    assert any(not np.array_equal(p.data, g_params[name])  # the G step did move G
               for name, p in gan.generator.named_parameters())


@pytest.mark.parametrize("k", [1, 3])
def test_the_g_step_changes_neither_d_nor_its_gradients(k):
    gan = tiny_gan(k=k)
    optimizers = gan_optimizers(gan, lr=1e-2)
    after_d_steps = {}

    def keep_d():
        after_d_steps["params"] = snapshot(gan.discriminator)
        after_d_steps["grads"] = grads(gan.discriminator)

    wrap_step(optimizers["discriminator"], after=keep_d)
    for seed in range(2):
        before = snapshot(gan.discriminator)
        gan.train_step(ring_batch(2 * k, seed=seed), optimizers)
        assert any(not np.array_equal(p, before[name])  # the D steps did move D
                   for name, p in after_d_steps["params"].items())
        assert_same(snapshot(gan.discriminator), after_d_steps["params"])
        assert_same(grads(gan.discriminator), after_d_steps["grads"])
        assert all(p.requires_grad for p in gan.discriminator.parameters())


def test_d_is_unfrozen_again_when_the_g_step_raises():
    gan = tiny_gan()
    optimizers = gan_optimizers(gan)

    def fail():
        assert not any(p.requires_grad for p in gan.discriminator.parameters())  # frozen now
        raise RuntimeError("generator step failed")

    wrap_step(optimizers["generator"], before=fail)
    with pytest.raises(RuntimeError, match="generator step failed"):
        gan.train_step(ring_batch(4), optimizers)
    assert all(p.requires_grad for p in gan.discriminator.parameters())


# ---- the two generator losses on a one-parameter generator --------------------------------------
class Constant(nn.Module):
    """G(z) = theta for every z: one parameter, samples (N, 1)."""

    def __init__(self, theta):
        super().__init__()
        self.theta = nn.Parameter(np.array([theta]), dtype="float64")

    def forward(self, z):
        return self.theta + 0.0 * z  # (N, 1)


def linear_logit(a, b):
    """The discriminator logit l(x) = a x + b, as a Linear(1, 1) in float64."""
    layer = nn.Linear(1, 1).double()
    layer.weight.data[...] = a
    layer.bias.data[...] = b
    return layer


def one_parameter_gan(theta, a, b, generator_loss):
    return GAN(Constant(theta), linear_logit(a, b), 1, generator_loss=generator_loss)


def generator_loss_and_grad(gan, n=5):
    """generator_loss(D(G(z))) for n draws of z, and its gradient w.r.t. theta."""
    loss = gan.generator_loss(gan.discriminator(gan.generator(gan.sample_prior(n))))
    gan.generator.theta.grad = None
    loss.backward()
    return loss.item(), gan.generator.theta.grad.item()


@pytest.mark.parametrize("theta, a, b", [(0.5, 1.5, -0.3), (-1.0, 0.7, 2.0), (2.0, 3.0, -4.0)])
def test_generator_losses_match_the_hand_formulas_and_raise_d_of_g(theta, a, b):
    s = sigmoid(a * theta + b)  # D(G(z))
    expected = {
        "saturating": (math.log(1 - s), -s * a),  # d/dtheta log(1 - s) = -s(1 - s) a / (1 - s)
        "non-saturating": (-math.log(s), -(1 - s) * a),  # d/dtheta -log s = -(1 - s) a
    }
    for kind, (loss_ref, grad_ref) in expected.items():
        loss, grad = generator_loss_and_grad(one_parameter_gan(theta, a, b, kind))
        np.testing.assert_allclose(loss, loss_ref, rtol=1e-10, err_msg=kind)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, err_msg=kind)
        assert grad < 0  # a > 0: descending moves theta up, which raises D(G(z))


def test_the_saturating_gradient_vanishes_when_d_rejects_the_fakes():
    theta, a, b = 0.0, 1.0, -8.0  # D(G(z)) = sigmoid(-8) ~ 3e-4: D is sure the samples are fake
    s = sigmoid(b)
    _, saturating = generator_loss_and_grad(one_parameter_gan(theta, a, b, "saturating"))
    _, non_saturating = generator_loss_and_grad(one_parameter_gan(theta, a, b, "non-saturating"))
    assert abs(non_saturating) > 0.99 * a
    assert abs(saturating) / abs(non_saturating) < 1e-3
    np.testing.assert_allclose(saturating / non_saturating, s / (1 - s), rtol=1e-8)


@pytest.mark.parametrize("kind", ["saturating", "non-saturating"])
def test_the_g_step_of_train_step_descends_the_chosen_loss(kind):
    theta, a, b, lr = 0.5, 2.0, -1.0, 0.1
    gan = one_parameter_gan(theta, a, b, kind)
    optimizers = {"generator": tg.optim.SGD(gan.generator.parameters(), lr=lr),
                  "discriminator": tg.optim.SGD(gan.discriminator.parameters(), lr=0.0)}
    real = tg.tensor(np.full((4, 1), 3.0), dtype="float64")
    metrics = gan.train_step(real, optimizers)
    s = sigmoid(a * theta + b)
    grad = -s * a if kind == "saturating" else -(1 - s) * a
    np.testing.assert_allclose(gan.generator.theta.item(), theta - lr * grad, rtol=1e-12)
    np.testing.assert_allclose(float(metrics["g_grad_norm"]), abs(grad), rtol=1e-12)


# ---- the logged metrics ------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2])
def test_metrics_are_the_last_d_steps_and_the_g_steps_values(k):
    gan = tiny_gan(k=k, dtype="float64")
    optimizers = {"generator": tg.optim.Adam(gan.generator.parameters(), lr=1e-2),
                  "discriminator": tg.optim.SGD(gan.discriminator.parameters(), lr=0.0)}
    metrics = gan.train_step(ring_batch(3 * k), optimizers)
    assert set(metrics) == METRICS
    values = {name: float(np.asarray(getattr(v, "data", v))) for name, v in metrics.items()}
    recorder = gan.discriminator
    net = recorder.net  # unchanged: D's learning rate is 0

    def d_prob(x):
        with tg.no_grad():
            return sigmoid(net(tg.tensor(x, dtype="float64")).numpy())

    p_real, p_fake = d_prob(recorder.inputs[-3]), d_prob(recorder.inputs[-2])  # the last D step
    p_g = d_prob(recorder.inputs[-1])  # the G step's samples
    np.testing.assert_allclose(values["d_real"], p_real.mean(), rtol=1e-10)
    np.testing.assert_allclose(values["d_fake"], p_fake.mean(), rtol=1e-10)
    np.testing.assert_allclose(values["loss_d"],
                               -np.log(p_real).mean() - np.log(1 - p_fake).mean(), rtol=1e-10)
    np.testing.assert_allclose(values["loss_g"], -np.log(p_g).mean(), rtol=1e-10)
    assert 0 <= values["d_real"] <= 1 and 0 <= values["d_fake"] <= 1
    squares = sum(float(np.sum(p.grad.data ** 2)) for p in gan.generator.parameters())
    np.testing.assert_allclose(values["g_grad_norm"], math.sqrt(squares), rtol=1e-10)


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"prior": "gaussian"}, "prior must be one of"),
    ({"generator_loss": "minimax"}, "generator_loss must be one of"),
    ({"k": 0}, "k .* must be >= 1"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GAN(mlp_generator(2, [4], 2), mlp_discriminator(2, [4]), 2, **kwargs)


def test_a_batch_smaller_than_k_raises():
    gan = tiny_gan(k=3)
    with pytest.raises(ValueError, match="a batch of 2 cannot feed k = 3"):
        gan.train_step(ring_batch(2), gan_optimizers(gan))


# ---- learning ----------------------------------------------------------------------------------
@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_a_tiny_1d_gan_moves_its_samples_to_the_target(prior):
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    target = toy.Gaussian(4.0, 0.5)
    gan = GAN(mlp_generator(1, [16], 1, out_activation=None), mlp_discriminator(1, [16]), 1,
              prior=prior)
    optimizers = gan_optimizers(gan, lr=1e-2)
    assert abs(gan.sample(1000).numpy().mean()) < 1.5
    for _ in range(300):
        gan.train_step(tg.tensor(target.sample(64, rng)[:, None].astype(np.float32)), optimizers)
    assert abs(gan.sample(1000).numpy().mean() - 4.0) < 1.0


def test_fit_trains_a_gan_and_logs_its_metrics():
    gan = tiny_gan(k=2)
    loader = DataLoader(toy.Ring().sample(96, np.random.default_rng(0)), batch_size=32, seed=0)
    history = fit(gan, loader, gan_optimizers(gan), epochs=1, progress=False)
    assert set(history) == METRICS | {"seconds"}
    assert all(len(values) == 1 and math.isfinite(values[0]) for values in history.values())
    assert len(gan.discriminator.inputs) == 3 * (2 * 2 + 1)  # 3 batches of 2 D steps + 1 G step


def test_the_priors_are_standard_normal_and_uniform_on_minus_one_one():
    tg.manual_seed(0)
    normal = GAN(mlp_generator(3, [4], 2), mlp_discriminator(2, [4]), 3).sample_prior(4000)
    uniform = GAN(mlp_generator(3, [4], 2), mlp_discriminator(2, [4]), 3,
                  prior="uniform").sample_prior(4000)
    assert normal.shape == uniform.shape == (4000, 3)
    assert abs(normal.numpy().mean()) < 0.05 and abs(normal.numpy().std() - 1) < 0.05
    assert uniform.numpy().min() >= -1 and uniform.numpy().max() <= 1
    assert abs(uniform.numpy().std() - 1 / math.sqrt(3)) < 0.03  # sd of U(-1, 1)


# ---- DCGAN -------------------------------------------------------------------------------------
def test_dcgan_samples_are_28_by_28_images_in_minus_one_one():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=16)
    samples = gan.sample(3).numpy()
    assert samples.shape == (3, 1, 28, 28)
    assert samples.min() >= -1 and samples.max() <= 1
    assert gan.discriminator(tg.tensor(samples)).shape == (3, 1)
    assert dcgan_generator(8)(tg.randn(2, 8)).shape == (2, 1, 28, 28)
    assert dcgan_discriminator()(tg.randn(2, 1, 28, 28)).shape == (2, 1)


def linear(n_in, n_out):
    return n_in * n_out + n_out  # weights and biases


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def batch_norm(c):
    return 2 * c  # scale and shift (the running statistics are buffers)


# Each architecture's layers, by hand: parameter counts and the output shape after each layer of
# the Sequential (batch 2, latent 100), from the formulas in the builders' docstrings.
HAND = {
    "classic": {
        "generator": (linear(100, 6272) + batch_norm(6272) + conv(128, 64, 4) + batch_norm(64)
                      + conv(64, 1, 4),  # 778,305
                      [(2, 6272), (2, 6272), (2, 6272), (2, 128, 7, 7), (2, 64, 14, 14),
                       (2, 64, 14, 14), (2, 64, 14, 14), (2, 1, 28, 28), (2, 1, 28, 28)]),
        "discriminator": (conv(1, 64, 4) + conv(64, 128, 4) + batch_norm(128)
                          + linear(6272, 1),  # 138,817
                          [(2, 64, 14, 14), (2, 64, 14, 14), (2, 128, 7, 7), (2, 128, 7, 7),
                           (2, 128, 7, 7), (2, 6272), (2, 1)]),
    },
    "deep": {
        "generator": (linear(100, 12544) + batch_norm(12544) + conv(256, 128, 3)
                      + batch_norm(128) + conv(128, 64, 4) + batch_norm(64)
                      + conv(64, 1, 4),  # 1,719,617
                      [(2, 12544), (2, 12544), (2, 12544), (2, 256, 7, 7), (2, 128, 7, 7),
                       (2, 128, 7, 7), (2, 128, 7, 7), (2, 64, 14, 14), (2, 64, 14, 14),
                       (2, 64, 14, 14), (2, 1, 28, 28), (2, 1, 28, 28)]),
        "discriminator": (conv(1, 64, 4) + conv(64, 128, 4) + batch_norm(128)
                          + conv(128, 256, 3) + batch_norm(256)
                          + linear(12544, 1),  # 440,769
                          [(2, 64, 14, 14), (2, 64, 14, 14), (2, 128, 7, 7), (2, 128, 7, 7),
                           (2, 128, 7, 7), (2, 256, 7, 7), (2, 256, 7, 7), (2, 256, 7, 7),
                           (2, 12544), (2, 1)]),
    },
    "infogan": {
        "generator": (linear(100, 1024) + batch_norm(1024) + linear(1024, 6272)
                      + batch_norm(6272) + conv(128, 64, 4) + batch_norm(64)
                      + conv(64, 1, 4),  # 6,679,105
                      [(2, 1024), (2, 1024), (2, 1024), (2, 6272), (2, 6272), (2, 6272),
                       (2, 128, 7, 7), (2, 64, 14, 14), (2, 64, 14, 14), (2, 64, 14, 14),
                       (2, 1, 28, 28), (2, 1, 28, 28)]),
        "discriminator": (conv(1, 64, 4) + conv(64, 128, 4) + batch_norm(128)
                          + linear(6272, 1024) + batch_norm(1024)
                          + linear(1024, 1),  # 6,559,169
                          [(2, 64, 14, 14), (2, 64, 14, 14), (2, 128, 7, 7), (2, 128, 7, 7),
                           (2, 128, 7, 7), (2, 6272), (2, 1024), (2, 1024), (2, 1024),
                           (2, 1)]),
    },
}


@pytest.mark.parametrize("architecture", sorted(HAND))
def test_dcgan_architectures_have_the_hand_counted_parameters_and_shapes(architecture):
    tg.manual_seed(0)
    gan = dcgan(latent_dim=100, architecture=architecture)
    x = {"generator": gan.sample_prior(2)}
    for player in ("generator", "discriminator"):
        network = getattr(gan, player)
        n_parameters, shapes = HAND[architecture][player]
        assert sum(p.numpy().size for p in network.parameters()) == n_parameters, player
        h = x[player]
        seen = []
        with tg.no_grad():
            for layer in network:
                h = layer(h)
                seen.append(tuple(h.shape))
        assert seen == shapes, player
        x["discriminator"] = h  # G's images go on to D


def test_dcgan_counts_add_up_to_the_documented_totals():
    """The module's comment gives the totals: 0.92M, 2.16M and 13.24M parameters."""
    totals = {name: sum(count for count, _ in players.values()) for name, players in HAND.items()}
    assert totals == {"classic": 917_122, "deep": 2_160_386, "infogan": 13_238_274}


def test_the_classic_dcgan_keeps_its_state_dict_keys():
    """Checkpoints written before the architectures were added load into the classic network."""
    gan = dcgan(latent_dim=8, architecture="classic")
    assert [k for k in gan.generator.state_dict() if not k.endswith(("running_mean",
                                                                     "running_var",
                                                                     "num_batches_tracked"))] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "5.weight", "5.bias",
        "7.weight", "7.bias"]
    assert [k for k in gan.discriminator.state_dict() if not k.endswith(("running_mean",
                                                                         "running_var",
                                                                         "num_batches_tracked"))
            ] == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias", "6.weight",
                  "6.bias"]


def test_an_unknown_architecture_is_an_error_that_lists_the_known_ones():
    with pytest.raises(ValueError, match="classic, deep, infogan.*'resnet'"):
        dcgan(architecture="resnet")
    with pytest.raises(ValueError, match="architecture"):
        dcgan_discriminator(architecture="wide")


def test_dcgan_init_draws_weights_with_sd_002_and_zero_biases():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=100)
    for module in gan.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = module.weight.numpy()
            tolerance = 4 * 0.02 / math.sqrt(2 * w.size) + 1e-4  # 4 standard errors of the sd
            assert abs(w.std() - 0.02) < tolerance, type(module).__name__
            assert abs(w.mean()) < 4 * 0.02 / math.sqrt(w.size)
            assert np.all(module.bias.numpy() == 0)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            w = module.weight.numpy()
            assert abs(w.mean() - 1) < 4 * 0.02 / math.sqrt(w.size)
            assert abs(w.std() - 0.02) < 4 * 0.02 / math.sqrt(2 * w.size) + 1e-4
            assert np.all(module.bias.numpy() == 0)


def test_one_dcgan_train_step_gives_finite_metrics():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8)
    images = tg.tensor(np.random.default_rng(0).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))
    metrics = gan.train_step(images, gan_optimizers(gan))
    assert set(metrics) == METRICS
    assert all(math.isfinite(float(np.asarray(getattr(v, "data", v)))) for v in metrics.values())


def test_train_step_keeps_discriminator_parameters_the_user_froze_frozen():
    tg.manual_seed(0)
    discriminator = mlp_discriminator(2, [4])
    gan = GAN(mlp_generator(2, [4], 2), discriminator, 2)
    discriminator[0].weight.requires_grad = False
    optimizers = {"generator": tg.optim.Adam(gan.generator.parameters()),
                  "discriminator": tg.optim.Adam(discriminator[2].parameters())}
    gan.train_step(tg.randn(8, 2), optimizers)
    assert not discriminator[0].weight.requires_grad
    assert discriminator[0].bias.requires_grad and discriminator[2].weight.requires_grad


# ---- watching training: one fixed z, one picture per epoch -------------------------------------
def test_fixed_noise_is_the_same_every_call_and_leaves_the_global_stream_alone():
    gan = tiny_gan(prior="uniform")
    tg.manual_seed(5)
    expected_next = tg.randn(3).numpy()
    tg.manual_seed(5)
    a, b = gan.fixed_noise(16, seed=1), gan.fixed_noise(16, seed=1)
    np.testing.assert_array_equal(tg.randn(3).numpy(), expected_next)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (16, 2) and a.numpy().min() >= -1 and a.numpy().max() <= 1
    assert not np.array_equal(gan.fixed_noise(16, seed=2).numpy(), a.numpy())


def test_fit_saves_a_fixed_noise_grid_each_epoch_in_eval_mode_and_restores_train_mode(tmp_path):
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8)
    seen = []
    generator_forward = gan.generator.forward

    def spy(z):
        seen.append((z.numpy().copy(), gan.generator.training))
        return generator_forward(z)

    gan.generator.forward = spy
    saver = tg.plot.epoch_grids(tmp_path / "epochs")
    watch = gan.sample_watcher(saver, n=4)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32)
    fit(gan, DataLoader(images, batch_size=4, seed=0), gan_optimizers(gan), epochs=2,
        progress=False, on_epoch_end=watch)
    names = sorted(p.name for p in (tmp_path / "epochs").iterdir())
    assert names == ["samples_epoch_001.png", "samples_epoch_002.png"]
    assert [str(p) for p in saver.paths] == [str(tmp_path / "epochs" / n) for n in names]
    grid_calls = [(z, training) for z, training in seen if len(z) == 4 and not training]
    assert len(grid_calls) == 2  # one eval-mode call per epoch, with the same z
    np.testing.assert_array_equal(grid_calls[0][0], grid_calls[1][0])
    assert gan.generator.training  # back in train mode for the next epoch
    assert all((tmp_path / "epochs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
               for name in names)
