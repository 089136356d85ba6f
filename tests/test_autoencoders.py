"""The autoencoder family: interface, penalties against hand computation, denoising, PCA, training,
checkpoints and backends.

Each test checks one claim of tinygen/models/autoencoders.py against an independent reference:
NumPy float64 formulas, finite differences, PCA by SVD, or closed-form noise statistics.
"""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import models, nn
from tinygen.data.loader import DataLoader
from tinygen.models import (
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    LinearAutoencoder,
    SparseAutoencoder,
    conv_autoencoder,
    corrupt,
    mlp,
    mlp_autoencoder,
)
from tinygen.train import evaluate, fit

D = 12  # input size of the small MLP models
K = 4  # code size


def unit_data(n=16, d=D, seed=0, dtype="float32"):
    """(n, d) values in [0, 1], as a Tensor."""
    return tg.tensor(np.random.default_rng(seed).random((n, d)), dtype=dtype)


def sigmoid_encoder(d=D, k=K):
    return nn.Sequential(nn.Linear(d, k), nn.Sigmoid())


def tanh_encoder(d=D, hidden=6, k=K):
    """A 2-layer tanh encoder: Linear, Tanh, Linear, Tanh."""
    return nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, k), nn.Tanh())


# name -> (builder, metric names of its loss); builders take no arguments (seed first).
MODELS = {
    "plain": (lambda: Autoencoder(mlp([D, 8, K]), mlp([K, 8, D])), {"recon"}),
    "linear": (lambda: LinearAutoencoder(D, K), {"recon"}),
    "mlp_autoencoder": (lambda: mlp_autoencoder(D, (8,), K), {"recon"}),
    "sparse_l1": (lambda: SparseAutoencoder(mlp([D, 8, K]), mlp([K, 8, D]), l1=0.1),
                  {"recon", "l1"}),
    "sparse_kl": (lambda: SparseAutoencoder(sigmoid_encoder(), mlp([K, D]), l1=0,
                                            kl_target=(0.05, 1.0)),
                  {"recon", "kl_sparsity"}),
    "sparse_both": (lambda: SparseAutoencoder(sigmoid_encoder(), mlp([K, D]), l1=0.1,
                                              kl_target=(0.05, 1.0)),
                    {"recon", "l1", "kl_sparsity"}),
    "denoising": (lambda: DenoisingAutoencoder(mlp([D, 8, K]), mlp([K, 8, D]), noise="masking",
                                               level=0.3),
                  {"recon"}),
    "contractive_exact": (lambda: ContractiveAutoencoder(tanh_encoder(), mlp([K, D]), lam=0.5),
                          {"recon", "contraction"}),
    "contractive_closed_form": (lambda: ContractiveAutoencoder(sigmoid_encoder(), mlp([K, D]),
                                                               lam=0.5, penalty="closed_form"),
                                {"recon", "contraction"}),
    "contractive_projection": (lambda: ContractiveAutoencoder(tanh_encoder(), mlp([K, D]), lam=0.5,
                                                              penalty="projection",
                                                              n_projections=3),
                               {"recon", "contraction"}),
}


def build(name, seed=0):
    tg.manual_seed(seed)
    return MODELS[name][0]()


# ---- interface -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_has_encode_decode_forward_and_a_loss_with_named_terms(name):
    model = build(name)
    x = unit_data()
    z = model.encode(x)
    r = model.decode(z)
    assert z.shape == (16, K)
    assert r.shape == x.shape
    np.testing.assert_array_equal(model(x).data, r.data)  # forward = decode(encode(x))
    loss, metrics = model.loss(x)
    assert isinstance(loss, tg.Tensor) and loss.shape == ()
    assert set(metrics) == MODELS[name][1]
    # The loss is the sum of its named terms.
    total = sum(float(value.item()) for value in metrics.values())
    np.testing.assert_allclose(loss.item(), total, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(n for n in MODELS if n not in ("linear",)))
def test_sigmoid_output_lies_in_the_unit_interval_even_when_saturated(name):
    model = build(name)
    assert model.output == "sigmoid"
    for layer in model.decoder.modules():
        if isinstance(layer, nn.Linear):
            layer.weight.data *= 50  # push the logits far into saturation
    x = tg.tensor(np.random.default_rng(1).standard_normal((32, D)) * 10)
    with tg.no_grad():
        r = model(x).data
    assert np.all(r >= 0) and np.all(r <= 1)
    assert r.min() < 1e-3 and r.max() > 1 - 1e-3  # saturation was actually reached


@pytest.mark.parametrize("kwargs, message", [
    ({"reconstruction": "l2"}, "reconstruction must be 'bce' or 'mse'"),
    ({"output": "relu"}, "output must be 'sigmoid' or 'linear'"),
    ({"reconstruction": "bce", "output": "linear"}, "needs output='sigmoid'"),
])
def test_invalid_autoencoder_options_raise_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Autoencoder(mlp([D, K]), mlp([K, D]), **kwargs)


def test_invalid_noise_raises_a_value_error_listing_the_choices():
    with pytest.raises(ValueError, match="noise must be one of gaussian, masking, salt_pepper"):
        DenoisingAutoencoder(mlp([D, K]), mlp([K, D]), noise="dropout")
    with pytest.raises(ValueError, match="unknown noise 'dropout'"):
        corrupt(np.zeros(3), "dropout", 0.5)


def test_invalid_penalty_raises_a_value_error_listing_the_choices():
    with pytest.raises(ValueError, match="penalty must be one of exact, closed_form, projection"):
        ContractiveAutoencoder(sigmoid_encoder(), mlp([K, D]), penalty="hutchinson")


@pytest.mark.parametrize("encoder", [
    lambda: tanh_encoder(),  # two layers
    lambda: nn.Sequential(nn.Linear(D, K), nn.Tanh()),  # not a sigmoid
    lambda: nn.Linear(D, K),  # no activation
])
def test_closed_form_penalty_with_a_non_sigmoid_encoder_raises_a_clear_error(encoder):
    with pytest.raises(ValueError, match=r"one-layer sigmoid encoder.*use penalty='exact'"):
        ContractiveAutoencoder(encoder(), mlp([K, D]), penalty="closed_form")


# ---- penalties against NumPy float64 -------------------------------------------------------------

def np_linear(layer, x):
    return x @ layer.weight.data.T + layer.bias.data


def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def test_l1_term_equals_l1_times_batch_mean_of_summed_absolute_codes():
    tg.manual_seed(0)
    encoder = nn.Linear(D, K)  # a linear code takes both signs
    model = SparseAutoencoder(encoder, mlp([K, D]), l1=0.37).double()
    x = unit_data(dtype="float64")
    _, metrics = model.loss(x)
    z = np_linear(encoder, x.data)
    assert (z < 0).any() and (z > 0).any()
    expected = 0.37 * np.abs(z).sum(axis=1).mean()
    np.testing.assert_allclose(metrics["l1"].item(), expected, rtol=1e-12)


def test_kl_sparsity_term_equals_beta_times_summed_bernoulli_kl_of_mean_activations():
    tg.manual_seed(0)
    encoder = sigmoid_encoder()
    rho, beta = 0.1, 2.5
    model = SparseAutoencoder(encoder, mlp([K, D]), l1=0, kl_target=(rho, beta)).double()
    x = unit_data(dtype="float64")
    _, metrics = model.loss(x)
    assert "l1" not in metrics  # l1=0 switches the L1 term off
    rho_hat = np_sigmoid(np_linear(encoder[0], x.data)).mean(axis=0)
    kl = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
    np.testing.assert_allclose(metrics["kl_sparsity"].item(), beta * kl.sum(), rtol=1e-12)


def np_tanh_encoder(encoder, x):
    h = np.tanh(np_linear(encoder[0], x))
    return np.tanh(np_linear(encoder[2], h))


def finite_difference_jacobians(f, x, eps=1e-6):
    """(N, K, D): dz_n/dx_n of a row-wise map f by central differences."""
    n, d = x.shape
    k = f(x).shape[1]
    jac = np.zeros((n, k, d))
    for j in range(d):
        step = np.zeros(d)
        step[j] = eps
        jac[:, :, j] = (f(x + step) - f(x - step)) / (2 * eps)
    return jac


def test_exact_contraction_equals_finite_difference_jacobian_frobenius_norm():
    tg.manual_seed(0)
    encoder = tanh_encoder()
    model = ContractiveAutoencoder(encoder, mlp([K, D]), lam=0.3).double()
    x = unit_data(n=10, dtype="float64")
    jac = finite_difference_jacobians(lambda a: np_tanh_encoder(encoder, a), x.data)
    per_sample = (jac ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(model.jacobian_penalty(x).data, per_sample, rtol=1e-7)
    _, metrics = model.loss(x)
    np.testing.assert_allclose(metrics["contraction"].item(), 0.3 * per_sample.mean(), rtol=1e-7)


def test_exact_contraction_equals_closed_form_for_a_sigmoid_encoder():
    tg.manual_seed(0)
    encoder = sigmoid_encoder()
    decoder = mlp([K, D])
    exact = ContractiveAutoencoder(encoder, decoder, penalty="exact").double()
    closed = ContractiveAutoencoder(encoder, decoder, penalty="closed_form")  # same Modules
    x = unit_data(dtype="float64")
    np.testing.assert_allclose(exact.jacobian_penalty(x).data, closed.jacobian_penalty(x).data,
                               rtol=1e-12)
    # and both equal sum_i (z_i (1 - z_i))^2 sum_j W_ij^2 computed in NumPy
    z = np_sigmoid(np_linear(encoder[0], x.data))
    by_hand = (z * (1 - z)) ** 2 @ (encoder[0].weight.data ** 2).sum(axis=1)
    np.testing.assert_allclose(closed.jacobian_penalty(x).data, by_hand, rtol=1e-12)


def contractive_pair(n_projections):
    """An exact and a projection model sharing one float64 tanh encoder, and a batch."""
    tg.manual_seed(0)
    encoder = tanh_encoder()
    decoder = mlp([K, D])
    exact = ContractiveAutoencoder(encoder, decoder).double()
    projection = ContractiveAutoencoder(encoder, decoder, penalty="projection",
                                        n_projections=n_projections)
    return exact, projection, unit_data(n=8, dtype="float64")


def test_projection_estimate_with_many_projections_is_close_to_exact():
    exact, projection, x = contractive_pair(n_projections=2000)
    want = exact.jacobian_penalty(x).data
    tg.manual_seed(1)
    got = projection.jacobian_penalty(x).data
    # One draw v^T J J^T v has relative std <= sqrt(2); 2000 draws: <= 0.032 per sample.
    np.testing.assert_allclose(got, want, rtol=0.12)
    np.testing.assert_allclose(got.mean(), want.mean(), rtol=0.05)


def test_projection_estimate_is_unbiased_over_seeds():
    exact, projection, x = contractive_pair(n_projections=1)
    want = exact.jacobian_penalty(x).data.mean()
    draws = []
    for seed in range(400):
        tg.manual_seed(seed)
        draws.append(projection.jacobian_penalty(x).data.mean())
    draws = np.array(draws)
    assert draws.std() > 0.05 * want  # a single projection is genuinely random
    standard_error = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - want) < 4 * standard_error


@pytest.mark.parametrize("penalty, encoder", [
    ("exact", tanh_encoder),
    ("projection", tanh_encoder),
    ("closed_form", sigmoid_encoder),
])
def test_contraction_gradient_wrt_encoder_weights_matches_finite_differences(penalty, encoder):
    tg.manual_seed(0)
    model = ContractiveAutoencoder(encoder(d=5, k=3), mlp([3, 5]), lam=1.0, penalty=penalty,
                                   n_projections=2).double()
    x = unit_data(n=4, d=5, dtype="float64")
    weights = list(model.encoder.parameters())

    def contraction(*params):
        # params are the encoder's own Parameters (gradcheck perturbs their data in place)
        tg.manual_seed(123)  # the same projections v on every call
        return model.loss(x)[1]["contraction"]

    assert tg.gradcheck(contraction, weights)

    def total_loss(*params):
        tg.manual_seed(123)
        return model.loss(x)[0]

    assert tg.gradcheck(total_loss, list(model.parameters()))


@pytest.mark.parametrize("penalty", ["exact", "projection"])
def test_contraction_under_no_grad_equals_the_training_value(penalty):
    tg.manual_seed(0)
    model = ContractiveAutoencoder(tanh_encoder(), mlp([K, D]), lam=0.5, penalty=penalty).double()
    x = unit_data(dtype="float64")
    tg.manual_seed(7)
    want = model.loss(x)[1]["contraction"].item()
    tg.manual_seed(7)
    got = evaluate(model, [x])["contraction"]  # validation runs under no_grad
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---- denoising -----------------------------------------------------------------------------------

class Recorder(nn.Module):
    """Wraps an encoder and keeps the last input it saw."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen = None

    def forward(self, x):
        self.seen = x.data.copy()
        return self.inner(x)


@pytest.mark.parametrize("noise", DenoisingAutoencoder.NOISES)
def test_denoising_encoder_sees_corrupted_input_and_loss_scores_against_clean(noise):
    tg.manual_seed(0)
    encoder = Recorder(mlp([D, 8, K]))
    model = DenoisingAutoencoder(encoder, mlp([K, 8, D]), noise=noise, level=0.3).double()
    x = unit_data(dtype="float64")
    _, metrics = model.loss(x)
    seen = tg.tensor(encoder.seen, dtype="float64")
    assert not np.array_equal(encoder.seen, x.data)
    with tg.no_grad():
        decoded = model.decoder(encoder.inner(seen))
        against_clean = model.reconstruction_loss(x, decoded).item()
        against_noisy = model.reconstruction_loss(seen, decoded).item()
    assert metrics["recon"].item() == against_clean
    assert abs(against_clean - against_noisy) > 1e-3


def test_denoising_draws_fresh_noise_for_every_batch():
    tg.manual_seed(0)
    encoder = Recorder(mlp([D, K]))
    model = DenoisingAutoencoder(encoder, mlp([K, D]), noise="gaussian", level=0.2)
    x = unit_data()
    model.loss(x)
    first = encoder.seen
    model.loss(x)
    assert not np.array_equal(first, encoder.seen)


def clipped_normal_mean(m, s):
    """E[clip(Y, 0, 1)] for Y ~ N(m, s^2): P(Y > 1) + E[Y; 0 < Y < 1]."""
    def phi(t):
        return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)

    def cdf(t):
        return 0.5 * (1 + math.erf(t / math.sqrt(2)))

    a, b = (0 - m) / s, (1 - m) / s
    return (1 - cdf(b)) + m * (cdf(b) - cdf(a)) + s * (phi(a) - phi(b))


@pytest.mark.parametrize("value, level", [(0.2, 0.5), (0.5, 0.3), (0.9, 0.4)])
def test_gaussian_corruption_stays_in_unit_interval_with_the_clipped_normal_mean(value, level):
    x = np.full((200, 100), value, dtype=np.float32)
    noisy = corrupt(x, "gaussian", level, rng=np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert noisy.min() == 0 or noisy.max() == 1  # clipping happened
    shift = noisy.mean() - value
    want = clipped_normal_mean(value, level) - value
    # the std of one clipped draw is < level; 20,000 draws
    assert abs(shift - want) < 4 * level / math.sqrt(x.size)


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_masking_zeroes_a_level_fraction_and_leaves_the_rest_unchanged(level):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (100, 100)).astype(np.float32)  # no zeros of its own
    noisy = corrupt(x, "masking", level, rng=np.random.default_rng(1))
    assert noisy.dtype == np.float32
    hit = noisy == 0
    assert abs(hit.mean() - level) < 4 * math.sqrt(level * (1 - level) / x.size)
    np.testing.assert_array_equal(noisy[~hit], x[~hit])


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_salt_pepper_sets_a_level_fraction_to_exactly_zero_or_one(level):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (100, 100)).astype(np.float32)  # never 0 or 1 of its own
    noisy = corrupt(x, "salt_pepper", level, rng=np.random.default_rng(1))
    assert noisy.dtype == np.float32
    changed = noisy != x
    assert set(np.unique(noisy[changed])) == {0.0, 1.0}
    assert abs(changed.mean() - level) < 4 * math.sqrt(level * (1 - level) / x.size)
    salt = (noisy[changed] == 1).mean()
    assert abs(salt - 0.5) < 4 * math.sqrt(0.25 / changed.sum())


@pytest.mark.parametrize("noise", DenoisingAutoencoder.NOISES)
def test_corrupt_draws_fresh_noise_on_each_call(noise):
    tg.manual_seed(0)
    x = np.random.default_rng(0).uniform(0.1, 0.9, (20, 20))
    assert not np.array_equal(corrupt(x, noise, 0.3), corrupt(x, noise, 0.3))
    tg.manual_seed(5)
    again = corrupt(x, noise, 0.3)
    tg.manual_seed(5)
    np.testing.assert_array_equal(corrupt(x, noise, 0.3), again)  # the global generator's draws


# ---- linear autoencoder and PCA ------------------------------------------------------------------

def largest_principal_angle(a, b):
    """The largest angle (radians) between the column spaces of a and b: QR, then SVD."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return float(np.arccos(np.clip(cosines.min(), -1.0, 1.0)))


def test_linear_autoencoder_decoder_spans_the_pca_subspace():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((20, 3)))  # (20, 3) orthonormal
    codes = rng.standard_normal((500, 3)) * np.array([3.0, 2.0, 1.5])
    data = codes @ basis.T + 0.1 * rng.standard_normal((500, 20)) + 0.5
    centred = data - data.mean(axis=0)
    pca = np.linalg.svd(centred, full_matrices=False)[2][:3].T  # (20, 3) top principal axes

    tg.manual_seed(0)
    model = LinearAutoencoder(20, 3)
    before = largest_principal_angle(model.decoder.weight.data.astype(np.float64), pca)
    optimizer = tg.optim.Adam(model.parameters(), lr=0.02)
    x = tg.tensor(data)
    for _ in range(300):
        loss, _ = model.loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = largest_principal_angle(model.decoder.weight.data.astype(np.float64), pca)
    assert after < 0.1
    assert after < before


# ---- training ------------------------------------------------------------------------------------

TRAINED = {
    "plain": lambda: Autoencoder(mlp([D, 16, K]), mlp([K, 16, D])),
    "sparse": lambda: SparseAutoencoder(mlp([D, 16, K]), mlp([K, 16, D]), l1=0.05),
    "sparse_kl": lambda: SparseAutoencoder(sigmoid_encoder(), mlp([K, 16, D]), l1=0,
                                           kl_target=(0.1, 1.0)),
    "denoising": lambda: DenoisingAutoencoder(mlp([D, 16, K]), mlp([K, 16, D]),
                                              noise="gaussian", level=0.2),
    "contractive_exact": lambda: ContractiveAutoencoder(tanh_encoder(D, 16, K), mlp([K, 16, D]),
                                                        lam=0.1),
}


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_loss_falls_over_a_few_dozen_steps_with_fit(name):
    tg.manual_seed(0)
    model = TRAINED[name]()
    rng = np.random.default_rng(0)
    # binary images from four prototypes with 5% of the pixels flipped: structure to learn
    prototypes = rng.random((4, D)) < 0.5
    flips = rng.random((200, D)) < 0.05
    data = (prototypes[rng.integers(0, 4, 200)] ^ flips).astype(np.float32)
    loader = DataLoader(data, batch_size=50, seed=0)
    history = fit(model, loader, tg.optim.Adam(model.parameters(), lr=1e-2), epochs=10,
                  progress=False)
    losses = history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    for term in history:
        assert all(math.isfinite(v) for v in history[term])


def test_conv_autoencoder_loss_falls_on_random_images():
    tg.manual_seed(0)
    model = conv_autoencoder(code_dim=8)
    images = tg.tensor((np.random.default_rng(0).random((8, 784)) > 0.7).astype(np.float32))
    history = fit(model, [images], tg.optim.Adam(model.parameters(), lr=2e-3), epochs=15,
                  progress=False)
    assert history["loss"][-1] < 0.9 * history["loss"][0]


def test_overcomplete_unregularised_autoencoder_learns_to_copy_its_training_data():
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.random((200, 20)))
    tg.manual_seed(0)
    model = Autoencoder(nn.Linear(20, 40), nn.Linear(40, 20), reconstruction="mse",
                        output="linear")
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        loss, _ = model.loss(x)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with tg.no_grad():
        final = model.loss(x)[0].item()
    assert final < 1e-3 * first
    assert final < 1e-3  # summed over 20 pixels per sample
    # and it copies inputs it has never seen: the map is close to the identity
    fresh = rng.random((50, 20))
    with tg.no_grad():
        np.testing.assert_allclose(model(tg.tensor(fresh)).data, fresh, atol=0.03)


# ---- checkpoints and backends --------------------------------------------------------------------

SAVED = dict({name: builder for name, (builder, _) in MODELS.items()},
             conv=lambda: conv_autoencoder(code_dim=4))


@pytest.mark.parametrize("name", sorted(SAVED))
def test_model_saves_and_reloads_with_identical_outputs(name, tmp_path):
    tg.manual_seed(0)
    model = SAVED[name]()
    x = unit_data(n=3, d=784 if name == "conv" else D)
    with tg.no_grad():
        want = model(x).data
    tg.save({"model": model.state_dict()}, tmp_path / "model.ckpt")

    tg.manual_seed(1)
    fresh = SAVED[name]()
    with tg.no_grad():
        assert not np.array_equal(fresh(x).data, want)  # a different initialisation
    fresh.load_state_dict(tg.load(tmp_path / "model.ckpt")["model"])
    with tg.no_grad():
        got = fresh(x).data
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif("numba" not in tg.backend.available(), reason="numba is not installed")
def test_conv_autoencoder_gives_the_same_output_and_gradients_on_numpy_and_numba():
    tg.manual_seed(0)
    model = conv_autoencoder(code_dim=4)
    x = unit_data(n=2, d=784)
    before = tg.backend.current()
    results = {}
    for name in ("numpy", "numba"):
        with tg.backend.use(name):
            assert tg.backend.current() == name
            model.zero_grad()
            loss, _ = model.loss(x)
            loss.backward()
            with tg.no_grad():
                output = model(x).data
            results[name] = output, [p.grad.data.copy() for p in model.parameters()]
        assert tg.backend.current() == before
    (out_np, grads_np), (out_nb, grads_nb) = results["numpy"], results["numba"]
    np.testing.assert_allclose(out_nb, out_np, rtol=1e-5, atol=1e-6)
    for g_nb, g_np in zip(grads_nb, grads_np):
        np.testing.assert_allclose(g_nb, g_np, rtol=1e-4, atol=1e-6)


def test_sparse_autoencoder_with_only_a_kl_target_has_no_l1_term():
    model = models.SparseAutoencoder(nn.Sequential(nn.Linear(5, 3), nn.Sigmoid()),
                                     nn.Linear(3, 5), kl_target=(0.05, 1.0))
    _, metrics = model.loss(tg.tensor(np.random.default_rng(0).random((4, 5))))
    assert sorted(metrics) == ["kl_sparsity", "recon"]


@pytest.mark.parametrize("kwargs", [{"kl_target": (1.5, 1.0)}, {"kl_target": (0.05, -1)},
                                    {"l1": -0.1}])
def test_sparse_autoencoder_rejects_impossible_settings(kwargs):
    with pytest.raises(ValueError):
        models.SparseAutoencoder(nn.Linear(5, 3), nn.Linear(3, 5), **kwargs)


@pytest.mark.parametrize("noise, level", [("masking", 1.5), ("salt_pepper", -0.1),
                                          ("gaussian", -1.0)])
def test_corrupt_rejects_levels_outside_their_range(noise, level):
    with pytest.raises(ValueError, match="level"):
        models.corrupt(np.zeros((2, 4)), noise, level)
