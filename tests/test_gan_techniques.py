"""The GAN techniques of issue 17, each switchable and off by default: a moving average of G's
weights for sampling, one-sided label smoothing, two learning rates (TTUR), spectral normalisation
of D's layers, dropout in D and a wider G.

References: NumPy float64 formulas (the EMA recursion, the smoothed cross-entropy, the SVD's top
singular value, the spectral-norm backward), finite differences (gradcheck, gradgradcheck) and,
where torch is installed, torch.optim.swa_utils.AveragedModel and torch.nn.utils.spectral_norm.
"""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.data import toy
from tinygen.data.loader import DataLoader
from tinygen.ema import ExponentialMovingAverage, update_batch_norm
from tinygen.models import (
    GAN,
    dcgan,
    dcgan_discriminator,
    dcgan_generator,
    gan_optimizers,
    mlp_discriminator,
    mlp_gan,
    mlp_generator,
)
from tinygen.models import gan as gan_module
from tinygen.nn.spectral_norm import spectral_normalize, weight_matrix
from tinygen.train import fit


def small_generator():
    """z (2) -> Linear + BatchNorm1d + ReLU -> Linear: parameters and buffers to average."""
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def small_gan(seed=0, dtype="float64", **options):
    tg.manual_seed(seed)
    return GAN(small_generator(), mlp_discriminator(2, [8]), 2, **options).to(dtype)


def ring_batch(n, seed=0):
    return tg.tensor(toy.Ring().sample(n, np.random.default_rng(seed)).astype(np.float32))


def snapshot(module):
    return {name: p.data.astype(np.float64) for name, p in module.named_parameters()}


def ema_reference(snapshots, decay, warmup=False):
    """The EMA of a list of weight snapshots: the first copied, then ema <- d ema + (1 - d) w."""
    ema = dict(snapshots[0])
    for t, weights in enumerate(snapshots[1:], start=1):
        d = min(decay, (1 + t) / (10 + t)) if warmup else decay
        ema = {name: d * ema[name] + (1 - d) * w for name, w in weights.items()}
    return ema


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# ---- 1. the exponential moving average of G's weights ------------------------------------------
@pytest.mark.parametrize("warmup", [False, True])
def test_the_ema_follows_the_numpy_recursion_and_copies_buffers(warmup):
    tg.manual_seed(0)
    model = small_generator().double()
    ema = ExponentialMovingAverage(model, decay=0.9, warmup=warmup)
    rng = np.random.default_rng(1)
    snapshots = []
    for _ in range(5):
        for p in model.parameters():  # stand-in for an optimizer step
            p.data += rng.standard_normal(p.shape)
        model(tg.tensor(rng.standard_normal((4, 2)), dtype="float64"))  # moves the running stats
        ema.update(model)
        snapshots.append(snapshot(model))
    expected = ema_reference(snapshots, 0.9, warmup)
    for name, p in ema.module.named_parameters():
        np.testing.assert_allclose(p.data, expected[name], rtol=1e-12, err_msg=name)
    for (name, b), (_, b_model) in zip(ema.module.named_buffers(), model.named_buffers()):
        np.testing.assert_array_equal(b.data, b_model.data, err_msg=name)  # copied, not averaged
    assert int(ema.n_averaged.data) == 5 and ema.n_averaged.dtype == np.int64
    assert not any(p.requires_grad for p in ema.parameters())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_numba_backends_one_pass_ema_equals_numpys_passes(dtype, monkeypatch):
    from tinygen.kernels import numba_conv
    calls = []
    fused = numba_conv.ema_update

    def counted(averaged, current, decay):
        calls.append(averaged.shape)
        fused(averaged, current, decay)

    monkeypatch.setattr(numba_conv, "ema_update", counted)
    results = {}
    for backend in ("numpy", "numba"):
        tg.manual_seed(0)
        model = small_generator().to(dtype)
        ema = ExponentialMovingAverage(model, decay=0.9)
        rng = np.random.default_rng(1)
        with tg.backend.use(backend):
            for _ in range(4):
                for p in model.parameters():
                    p.data += rng.standard_normal(p.shape).astype(dtype)
                ema.update(model)
        results[backend] = snapshot(ema.module)
    assert len(calls) == 3 * len(list(model.parameters()))  # updates 2 to 4 (1 copies)
    for name, value in results["numpy"].items():
        np.testing.assert_allclose(results["numba"][name], value,
                                   rtol=1e-12 if dtype == "float64" else 1e-6, err_msg=name)


def test_the_ema_starts_as_a_copy_and_refuses_another_architecture():
    tg.manual_seed(0)
    model = small_generator()
    ema = ExponentialMovingAverage(model, decay=0.99)
    z = tg.randn(3, 2)
    np.testing.assert_array_equal(ema(z).numpy(), model(z).numpy())
    assert ema.module.state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ValueError, match="decay must be in"):
        ExponentialMovingAverage(model, decay=1.5)
    with pytest.raises(ValueError, match="parameters do not match"):
        ema.update(nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 2)))


def test_the_ema_matches_torch_averaged_model():
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    tg.manual_seed(0)
    model = small_generator().double()
    ema = ExponentialMovingAverage(model, decay=0.8)
    theirs_model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8),
                                       torch.nn.ReLU(), torch.nn.Linear(8, 2)).double()
    theirs = AveragedModel(theirs_model, multi_avg_fn=get_ema_multi_avg_fn(0.8))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ema.state_dict().items()})
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((5, 2))
        for p in model.parameters():
            p.data += rng.standard_normal(p.shape)
        model(tg.tensor(x, dtype="float64"))
        theirs_model.load_state_dict({k: torch.from_numpy(v)
                                      for k, v in model.state_dict().items()})
        ema.update(model)
        theirs.update_parameters(theirs_model)
    ours = ema.state_dict()
    assert list(ours) == list(theirs.state_dict())  # n_averaged, module.0.weight, ...
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours[key], value.numpy(), rtol=1e-12, err_msg=key)


def test_a_gan_with_ema_updates_it_after_every_g_step_and_samples_from_it():
    gan = small_gan(ema_decay=0.7)
    optimizers = gan_optimizers(gan, lr=1e-2)
    snapshots = []
    g_step = optimizers["generator"].step

    def step_and_snapshot(*args, **kwargs):
        g_step(*args, **kwargs)
        snapshots.append(snapshot(gan.generator))

    optimizers["generator"].step = step_and_snapshot
    for seed in range(4):
        gan.train_step(ring_batch(8, seed), optimizers)
    expected = ema_reference(snapshots, 0.7)
    for name, p in gan.generator_ema.module.named_parameters():
        np.testing.assert_allclose(p.data, expected[name], rtol=1e-12, err_msg=name)
    gan.eval()
    assert gan.sampling_generator is gan.generator_ema.module
    tg.manual_seed(5)
    samples = gan.sample(6).numpy()
    tg.manual_seed(5)
    z = gan.sample_prior(6)
    with tg.no_grad():
        np.testing.assert_array_equal(samples, gan.generator_ema(z).numpy())
        assert not np.allclose(samples, gan.generator(z).numpy())
    z_a, z_b = np.zeros(2), np.ones(2)
    with tg.no_grad():
        line = gan.generator_ema(tg.tensor(np.linspace(z_a, z_b, 3), dtype="float64"))
    np.testing.assert_allclose(gan.interpolate(z_a, z_b, steps=3).numpy(), line.numpy(),
                               rtol=1e-12)


def test_without_ema_there_is_no_copy_and_sampling_uses_g():
    gan = small_gan()
    assert gan.generator_ema is None and gan.sampling_generator is gan.generator
    assert not any(key.startswith("generator_ema") for key in gan.state_dict())


def test_the_fixed_noise_grid_comes_from_the_ema_in_eval_mode(tmp_path):
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8, ema_decay=0.9)
    seen = []
    ema_forward = gan.generator_ema.module.forward

    def spy(z):
        seen.append(gan.generator_ema.module.training)
        return ema_forward(z)

    gan.generator_ema.module.forward = spy
    save = gan.sample_watcher(tg.plot.epoch_grids(tmp_path), n=4)
    save(1)
    assert seen == [False] and gan.generator_ema.module.training
    assert (tmp_path / "samples_epoch_001.png").exists()


def test_dcgan_ema_starts_equal_to_g_and_is_saved_in_the_state_dict():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8, ema_decay=0.999)
    state = gan.state_dict()
    assert state["generator_ema.n_averaged"] == 0
    for key, value in gan.generator.state_dict().items():
        np.testing.assert_array_equal(state["generator_ema.module." + key], value, err_msg=key)


def test_a_gan_with_ema_resumes_from_a_checkpoint_exactly(tmp_path):
    data = toy.Ring().sample(48, np.random.default_rng(0)).astype(np.float32)

    def run(epochs, **checkpointing):
        gan = small_gan(dtype="float32", ema_decay=0.9)
        fit(gan, DataLoader(data, batch_size=16, seed=0), gan_optimizers(gan, lr=1e-2), epochs,
            progress=False, **checkpointing)
        return gan

    straight = run(2)
    path = str(tmp_path / "checkpoint.npz")
    run(1, checkpoint=path)
    resumed = run(2, resume=path)
    assert int(resumed.generator_ema.n_averaged.data) == 6  # 3 batches an epoch, 2 epochs
    for key, value in straight.state_dict().items():
        np.testing.assert_allclose(resumed.state_dict()[key], value, rtol=1e-6, atol=1e-7,
                                   err_msg=key)


# ---- 1b. the moving average's batch norm statistics, measured on its own activations ------------
def statistics_model():
    """Linear + BatchNorm1d + ReLU + Linear + BatchNorm1d: two layers of statistics to measure."""
    tg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2),
                         nn.BatchNorm1d(2)).double()


def test_update_batch_norm_keeps_the_average_of_each_batchs_statistics():
    model = statistics_model()
    model.eval()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 3)) for n in (5, 7, 6)]
    weights = snapshot(model)
    expected = {1: [], 4: []}
    for x in batches:  # NumPy float64: the activations each batch norm sees, in training mode
        h = x @ weights["0.weight"].T + weights["0.bias"]
        expected[1].append((h.mean(0), h.var(0, ddof=1)))
        h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * weights["1.weight"] + weights["1.bias"]
        h = np.maximum(h, 0) @ weights["3.weight"].T + weights["3.bias"]
        expected[4].append((h.mean(0), h.var(0, ddof=1)))
    update_batch_norm(model, [tg.tensor(x, dtype="float64") for x in batches])
    for index, stats in expected.items():
        norm = model[index]
        np.testing.assert_allclose(norm.running_mean.data, np.mean([m for m, _ in stats], 0),
                                   rtol=1e-6)
        np.testing.assert_allclose(norm.running_var.data, np.mean([v for _, v in stats], 0),
                                   rtol=1e-6)
        assert int(norm.num_batches_tracked.data) == 3 and norm.momentum == 0.1  # put back
    assert not model.training  # the mode it was in
    for name, value in snapshot(model).items():
        if "running" not in name:
            np.testing.assert_array_equal(value, weights[name], err_msg=name)  # weights alone


def test_update_batch_norm_matches_torch_update_bn():
    torch = pytest.importorskip("torch")
    from torch.optim.swa_utils import update_bn
    model = statistics_model()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                                 torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2)).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    batches = [np.random.default_rng(seed).standard_normal((6, 3)) for seed in range(4)]
    update_batch_norm(model, [tg.tensor(x, dtype="float64") for x in batches])
    update_bn([torch.from_numpy(x) for x in batches], theirs)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[key], value.numpy(), rtol=1e-10,
                                   err_msg=key)


def test_a_recomputing_ema_leaves_its_statistics_alone_until_asked_and_knows_when_stale():
    model = statistics_model()
    ema = ExponentialMovingAverage(model, decay=0.5, batch_norm="recompute")
    before = ema.module[1].running_mean.data.copy()
    model(tg.tensor(np.random.default_rng(0).standard_normal((8, 3)), dtype="float64"))
    ema.update(model)  # G's running statistics moved; the copy's are not copied
    np.testing.assert_array_equal(ema.module[1].running_mean.data, before)
    assert not np.allclose(model[1].running_mean.data, before)
    assert ema.statistics_stale()
    ema.recompute_batch_norm([tg.tensor(np.ones((4, 3)) * [[1.0], [2.0], [3.0], [4.0]],
                                        dtype="float64")])
    assert not ema.statistics_stale()
    ema.update(model)
    assert ema.statistics_stale()  # new weights
    ema.recompute_batch_norm([tg.randn(4, 3, dtype="float64")])
    ema.load_state_dict(ema.state_dict())
    assert ema.statistics_stale()  # loaded weights may be any
    assert not ExponentialMovingAverage(model, 0.5).statistics_stale()  # "copy" never is
    with pytest.raises(ValueError, match="batch_norm must be one of copy, recompute"):
        ExponentialMovingAverage(model, 0.5, batch_norm="average")


def test_a_gan_samples_from_the_average_with_statistics_of_its_own_activations():
    gan = small_gan(ema_decay=0.7, ema_batch_norm="recompute")
    optimizers = gan_optimizers(gan, lr=1e-2)
    for seed in range(3):
        gan.train_step(ring_batch(8, seed), optimizers)
    gan.eval()
    reference = small_generator().double()  # the same weights, statistics measured by hand
    reference.load_state_dict(gan.generator_ema.module.state_dict())
    rng = np.random.default_rng(gan_module.STATISTICS_SEED)
    update_batch_norm(reference, [tg.tensor(rng.standard_normal((gan_module.STATISTICS_BATCH_SIZE,
                                                                2)), dtype="float64")
                                  for _ in range(gan_module.STATISTICS_BATCHES)])
    reference.eval()
    tg.manual_seed(3)
    z = gan.sample_prior(5)
    expected_next = tg.randn(2).numpy()
    tg.manual_seed(3)
    samples = gan.sample(5).numpy()  # measures the statistics first, from draws of its own
    np.testing.assert_array_equal(tg.randn(2).numpy(), expected_next)  # global stream: z only
    with tg.no_grad():
        np.testing.assert_allclose(samples, reference(z).numpy(), rtol=1e-12)
    np.testing.assert_allclose(gan.generator_ema.module[1].running_var.data,
                               reference[1].running_var.data, rtol=1e-12)
    assert not np.allclose(gan.generator_ema.module[1].running_var.data,
                           gan.generator[1].running_var.data)  # not G's statistics
    # a copy loaded from the state_dict measures the same statistics, so it samples the same
    again = small_gan(seed=9, ema_decay=0.7, ema_batch_norm="recompute")
    again.load_state_dict(gan.state_dict())
    again.eval()
    with tg.no_grad():
        np.testing.assert_allclose(again.sampling_generator(z).numpy(), samples, rtol=1e-12)


# ---- 2. one-sided label smoothing --------------------------------------------------------------
@pytest.mark.parametrize("real_label", [1.0, 0.9, 0.75])
def test_the_smoothed_discriminator_loss_matches_the_hand_formula(real_label):
    a, b = 1.5, -0.2  # D(x) = sigmoid(a x + b)
    d = nn.Linear(1, 1).double()
    d.weight.data[...], d.bias.data[...] = a, b
    gan = GAN(nn.Linear(1, 1).double(), d, 1, real_label=real_label)
    real, fake = np.array([[0.5], [2.0], [-1.0]]), np.array([[0.1], [-3.0]])
    loss, _, _ = gan.discriminator_loss(tg.tensor(real, dtype="float64"),
                                        tg.tensor(fake, dtype="float64"))
    s_real, s_fake = sigmoid(a * real + b), sigmoid(a * fake + b)
    expected = (-(real_label * np.log(s_real) + (1 - real_label) * np.log(1 - s_real)).mean()
                - np.log(1 - s_fake).mean())  # the fakes' target stays 0
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    # its gradient w.r.t. the real logits: (sigmoid(l) - real_label) / n
    logits = tg.tensor(a * real + b, dtype="float64", requires_grad=True)
    gan.discriminator = nn.Identity()
    gan.discriminator_loss(logits, tg.tensor(fake, dtype="float64"))[0].backward()
    np.testing.assert_allclose(logits.grad.numpy(), (s_real - real_label) / len(real),
                               rtol=1e-12)


def test_label_smoothing_is_off_by_default_and_checked():
    assert small_gan().real_label == 1.0
    assert dcgan(latent_dim=4, real_label=0.9).real_label == 0.9
    for bad in (0.0, 1.1):
        with pytest.raises(ValueError, match="real_label must be in"):
            small_gan(real_label=bad)


# ---- 3. the two-timescale update rule -----------------------------------------------------------
@pytest.mark.parametrize("kwargs, lr_g, lr_d", [
    ({}, 2e-4, 2e-4),
    ({"lr": 1e-3}, 1e-3, 1e-3),
    ({"lr_discriminator": 4e-4, "lr_generator": 1e-4}, 1e-4, 4e-4),
    ({"lr": 3e-4, "lr_discriminator": 6e-4}, 3e-4, 6e-4),
])
def test_gan_optimizers_give_each_player_its_learning_rate(kwargs, lr_g, lr_d):
    gan = small_gan(ema_decay=0.9)
    optimizers = gan_optimizers(gan, betas=(0.0, 0.9), **kwargs)
    for name, lr in (("generator", lr_g), ("discriminator", lr_d)):
        (group,) = optimizers[name].param_groups
        assert group["lr"] == lr and group["betas"] == (0.0, 0.9), name
    g_params = {id(p) for p in optimizers["generator"].param_groups[0]["params"]}
    assert g_params == {id(p) for p in gan.generator.parameters()}  # not the EMA copy's


# ---- 4. spectral normalisation ------------------------------------------------------------------
LAYERS = {
    "Linear": (lambda: nn.Linear(6, 4), (3, 6), 0),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5), 0),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, 2, 1), (2, 3, 3, 3), 1),
}


def normalised_layer(name, n_power_iterations=1, seed=0):
    tg.manual_seed(seed)
    make, input_shape, dim = LAYERS[name]
    layer = nn.spectral_norm(make().double(), n_power_iterations=n_power_iterations)
    x = tg.tensor(np.random.default_rng(seed).standard_normal(input_shape), dtype="float64")
    return layer, x, dim


@pytest.mark.parametrize("name", LAYERS)
def test_power_iteration_finds_the_largest_singular_value(name):
    layer, x, dim = normalised_layer(name, n_power_iterations=200)
    w = layer.weight_orig.numpy()
    top = np.linalg.svd(weight_matrix(w, dim), compute_uv=False)[0]
    layer(x)  # training mode: 200 power-iteration steps
    assert layer.forward.dim == dim
    np.testing.assert_allclose(layer.forward.sigma(), top, rtol=1e-4)
    np.testing.assert_allclose(layer.weight.numpy(), w / top, rtol=1e-4)
    normalised_top = np.linalg.svd(weight_matrix(layer.weight.numpy(), dim), compute_uv=False)[0]
    np.testing.assert_allclose(normalised_top, 1.0, rtol=1e-4)


@pytest.mark.parametrize("name", LAYERS)
def test_the_normalised_layer_passes_gradcheck_and_gradgradcheck_with_u_and_v_fixed(name):
    layer, x, _ = normalised_layer(name)
    layer.eval()  # u and v stay put between the finite-difference evaluations
    u_before = layer.weight_u.numpy().copy()

    def output(weight_orig):
        return layer(x)  # weight_orig is the layer's own parameter, perturbed in place

    tg.gradcheck(output, layer.weight_orig)
    tg.gradgradcheck(output, layer.weight_orig)
    np.testing.assert_array_equal(layer.weight_u.numpy(), u_before)


def test_the_backward_is_the_gradient_with_u_and_v_held_constant(rng):
    w = tg.tensor(rng.standard_normal((4, 5)), dtype="float64", requires_grad=True)
    u, v = rng.standard_normal(4), rng.standard_normal(5)
    g = rng.standard_normal((4, 5))
    out = spectral_normalize(w, u, v)
    (out * tg.tensor(g, dtype="float64")).sum().backward()
    sigma = u @ w.numpy() @ v
    expected = (g - np.sum(g * out.numpy()) * np.outer(u, v)) / sigma  # (G - <G, W_sn> u v^T) / s
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("name", LAYERS)
def test_u_moves_in_training_mode_only_and_is_a_buffer(name):
    layer, x, _ = normalised_layer(name)
    assert [n for n, _ in layer.named_parameters()] == ["bias", "weight_orig"]
    assert list(layer.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    layer.weight_orig.data += 0.5  # so that the next step has somewhere to go
    u = layer.weight_u.numpy().copy()
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.weight_u.numpy(), u)
    layer.train()
    layer(x)
    assert not np.allclose(layer.weight_u.numpy(), u)


@pytest.mark.parametrize("name", LAYERS)
def test_spectral_norm_matches_torch_from_the_same_u(name):
    torch = pytest.importorskip("torch")
    layer, x, _ = normalised_layer(name)
    make_torch = {"Linear": lambda: torch.nn.Linear(6, 4),
                  "Conv2d": lambda: torch.nn.Conv2d(2, 3, 3),
                  "ConvTranspose2d": lambda: torch.nn.ConvTranspose2d(3, 2, 3, 2, 1)}[name]
    theirs = torch.nn.utils.spectral_norm(make_torch().double())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    for _ in range(3):  # training mode: one power-iteration step per call, in both
        y = layer(x)
        y_torch = theirs(torch.from_numpy(x.numpy()))
        np.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.weight_u.numpy(), theirs.weight_u.numpy(), rtol=1e-10)
    layer.weight_orig.grad = None
    (y * y).sum().backward()
    (y_torch * y_torch).sum().backward()
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), theirs.weight_orig.grad.numpy(),
                               rtol=1e-8, atol=1e-12)


def test_spectral_norm_refuses_twice_and_a_missing_weight():
    layer = nn.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="already spectrally normalised"):
        nn.spectral_norm(layer)
    with pytest.raises(ValueError, match="has no parameter 'weight'"):
        nn.spectral_norm(nn.ReLU())


def test_dcgan_with_spectral_norm_normalises_d_and_drops_its_batch_norm():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8, spectral_norm=True)
    d = gan.discriminator
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    normalised = [m for m in d.modules() if hasattr(m, "weight_orig")]
    assert [type(m).__name__ for m in normalised] == ["Conv2d", "Conv2d", "Linear"]
    for m in normalised:  # dcgan_init draws the learned weight_orig with sd 0.02
        assert abs(m.weight_orig.numpy().std() - 0.02) < 0.005
    images = tg.tensor(np.random.default_rng(0).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))
    metrics = gan.train_step(images, gan_optimizers(gan))
    assert all(math.isfinite(float(np.asarray(getattr(v, "data", v)))) for v in metrics.values())
    assert d(images).shape == (4, 1)


# ---- 5. dropout in D, a wider G ----------------------------------------------------------------
def test_dropout_in_d_adds_dropout_after_each_leaky_relu():
    tg.manual_seed(0)
    default = dcgan_discriminator()
    assert not any(isinstance(m, nn.Dropout) for m in default.modules())
    d = dcgan_discriminator(dropout=0.3)
    kinds = [type(m).__name__ for m in d]
    assert kinds == ["Conv2d", "LeakyReLU", "Dropout", "Conv2d", "BatchNorm2d", "LeakyReLU",
                     "Dropout", "Flatten", "Linear"]
    x = tg.randn(3, 1, 28, 28)
    assert d(x).shape == (3, 1)
    without_dropout = x
    for layer in d:  # the same network with its Dropout layers left out
        if not isinstance(layer, nn.Dropout):
            without_dropout = layer(without_dropout)
    assert not np.allclose(d(x).numpy(), without_dropout.numpy())  # training: dropout acts
    d.eval()
    with_dropout_in_eval = d(x)
    without_dropout = x
    for layer in d:
        if not isinstance(layer, nn.Dropout):
            without_dropout = layer(without_dropout)
    np.testing.assert_array_equal(with_dropout_in_eval.numpy(), without_dropout.numpy())


def test_the_mlp_discriminator_takes_dropout_and_spectral_norm_and_stays_plain_by_default():
    tg.manual_seed(0)
    kinds = [type(m).__name__ for m in mlp_discriminator(6, (5, 4))]
    assert kinds == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"]
    d = mlp_discriminator(6, (5, 4), dropout=0.25, spectral_norm=True)
    kinds = [type(m).__name__ for m in d]
    assert kinds == ["Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout", "Linear"]
    assert [m.p for m in d if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    for linear in (d[0], d[3], d[6]):
        assert "weight_orig" in dict(linear.named_parameters())  # learned; weight = W / sigma
    d.eval()
    x = tg.randn(3, 6)
    assert d(x).shape == (3, 1)
    for linear in (d[0], d[3], d[6]):  # every layer's spectral norm is 1 after normalisation
        assert np.linalg.svd(linear.weight.numpy(), compute_uv=False)[0] == pytest.approx(1, 1e-3)


def test_mlp_gan_is_the_course_mlp_gan_and_passes_on_the_techniques():
    tg.manual_seed(0)
    recipe = GAN(mlp_generator(100, (256, 512), 784), mlp_discriminator(784, (512, 256)), 100)
    tg.manual_seed(0)
    plain = mlp_gan(100)
    assert {k: v.shape for k, v in plain.state_dict().items()} == \
        {k: v.shape for k, v in recipe.state_dict().items()}
    for key, value in recipe.state_dict().items():  # the same draws in the same order
        np.testing.assert_array_equal(plain.state_dict()[key], value)
    gan = mlp_gan(16, real_label=0.9, ema_decay=0.99, ema_warmup=True, spectral_norm=True,
                  discriminator_dropout=0.3)
    assert gan.real_label == 0.9 and gan.generator_ema.decay == 0.99 and gan.generator_ema.warmup
    assert any(isinstance(m, nn.Dropout) for m in gan.discriminator.modules())
    optimizers = gan_optimizers(gan)
    metrics = gan.train_step(tg.randn(8, 784), optimizers)
    assert np.isfinite(float(metrics["loss_d"].item())) and gan.sample(2).shape == (2, 784)


@pytest.mark.parametrize("width, wide, narrow", [(1.0, 128, 64), (2.0, 256, 128), (0.5, 64, 32)])
def test_a_wider_generator_has_wider_layers_and_still_makes_28x28_images(width, wide, narrow):
    g = dcgan_generator(8, width=width)
    assert g[0].weight.shape == (wide * 7 * 7, 8)
    assert g[4].weight.shape == (wide, narrow, 4, 4) and g[7].weight.shape == (narrow, 1, 4, 4)
    assert g(tg.randn(2, 8)).shape == (2, 1, 28, 28)


def test_dcgan_with_every_technique_takes_a_finite_step():
    tg.manual_seed(0)
    gan = dcgan(latent_dim=8, real_label=0.9, ema_decay=0.99, ema_warmup=True, spectral_norm=True,
                discriminator_dropout=0.3, generator_width=0.5)
    images = tg.tensor(np.random.default_rng(0).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))
    optimizers = gan_optimizers(gan, lr_discriminator=4e-4, lr_generator=1e-4)
    for _ in range(2):
        metrics = gan.train_step(images, optimizers)
    assert all(math.isfinite(float(np.asarray(getattr(v, "data", v)))) for v in metrics.values())
    assert gan.sample(2).shape == (2, 1, 28, 28)
    assert int(gan.generator_ema.n_averaged.data) == 2
