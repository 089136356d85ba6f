"""The variational autoencoder: KL, sampler, likelihoods, loss, warm-up, IWAE bound, training,
the latent-space tools, errors and checkpoints.

Each test checks one claim of tinygen/models/vae.py against an independent reference: Monte Carlo
estimates with a standard-error tolerance, NumPy float64 formulas, finite differences, or a
linear-Gaussian VAE whose log p(x) and true posterior are known in closed form (for the IWAE bound).
"""
import math

import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.data.loader import DataLoader
from tinygen.data.transforms import Dequantizer
from tinygen.models import (
    VAE,
    add_attribute,
    attribute_vector,
    conv_vae,
    iwae_bound,
    mlp,
    mlp_vae,
)
from tinygen.models.vae import bits_per_dim, floored_logvar
from tinygen.nn import functional as F
from tinygen.train import evaluate, fit

D = 12  # input size
H = 16  # hidden units
L = 3  # latent size
LOG_2PI = math.log(2 * math.pi)


def binary_data(n=8, d=D, seed=0, dtype="float32"):
    """(n, d) binary images as a Tensor."""
    return tg.tensor((np.random.default_rng(seed).random((n, d)) < 0.5), dtype=dtype)


def prototype_data(n=200, d=D, seed=0):
    """Binary images from four prototypes with 5% of the pixels flipped: structure to learn."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((4, d)) < 0.5
    flips = rng.random((n, d)) < 0.05
    return (prototypes[rng.integers(0, 4, n)] ^ flips).astype(np.float32)


def tiny_vae(likelihood="bernoulli", seed=0, **kwargs):
    tg.manual_seed(seed)
    return mlp_vae(D, H, L, likelihood=likelihood, **kwargs)


def spread_encoder_(model, scale=3.0):
    """Scale the encoder's last layer so that mu and logvar are far from 0 (a stronger test)."""
    last = model.encoder[-1]
    last.weight.data *= scale
    last.bias.data[:] = np.random.default_rng(1).normal(0, 0.5, last.bias.shape)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def log_normal_np(x, mean, logvar):
    """log N(x; mean, exp(logvar)) elementwise, in the -log sigma - ((x - m) / sigma)^2 / 2 form."""
    sigma = np.exp(0.5 * logvar)
    return -np.log(sigma) - 0.5 * LOG_2PI - 0.5 * ((x - mean) / sigma) ** 2


# ---- the KL term ---------------------------------------------------------------------------------

def test_closed_form_kl_metric_matches_a_monte_carlo_estimate_of_log_q_minus_log_p():
    model = tiny_vae().double()
    spread_encoder_(model)
    x = binary_data(n=4, dtype="float64")
    with tg.no_grad():
        _, metrics = model.loss(x)
        mu, logvar = (t.data for t in model.encode(x))
    assert np.abs(mu).max() > 0.3 and np.abs(logvar).max() > 0.3  # a non-trivial q

    s = 100_000
    eps = np.random.default_rng(0).standard_normal((s,) + mu.shape)  # (S, N, L)
    z = mu + np.exp(0.5 * logvar) * eps
    log_q = log_normal_np(z, mu, logvar).sum(axis=-1)  # (S, N)
    log_p = log_normal_np(z, 0.0, 0.0).sum(axis=-1)
    per_sample = (log_q - log_p).mean(axis=1)  # batch mean, (S,)
    estimate = per_sample.mean()
    standard_error = per_sample.std() / math.sqrt(s)
    assert abs(metrics["kl"].item() - estimate) < 5 * standard_error


def test_kl_metric_is_the_closed_form_summed_over_latents_and_averaged_over_the_batch():
    model = tiny_vae().double()
    spread_encoder_(model)
    x = binary_data(n=5, dtype="float64")
    with tg.no_grad():
        _, metrics = model.loss(x)
        mu, logvar = (t.data for t in model.encode(x))
    want = (0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)).sum(axis=1).mean()
    np.testing.assert_allclose(metrics["kl"].item(), want, rtol=1e-12)


# ---- the reparameterised sampler -----------------------------------------------------------------

def test_reparameterize_samples_have_mean_mu_and_variance_exp_logvar():
    model = tiny_vae()
    mu = np.array([-1.5, 0.0, 2.0])
    logvar = np.array([-2.0, 0.0, 1.0])
    n = 200_000
    tg.manual_seed(0)
    z = model.reparameterize(tg.tensor(np.tile(mu, (n, 1)), dtype="float64"),
                             tg.tensor(np.tile(logvar, (n, 1)), dtype="float64")).data
    assert z.shape == (n, 3)
    var = np.exp(logvar)
    # standard errors: sqrt(var / n) for the mean, var sqrt(2 / n) for the variance
    np.testing.assert_array_less(np.abs(z.mean(axis=0) - mu), 5 * np.sqrt(var / n))
    np.testing.assert_array_less(np.abs(z.var(axis=0) - var), 5 * var * math.sqrt(2 / n))


def test_reparameterize_passes_gradcheck_in_mu_and_logvar_with_a_fixed_eps():
    model = tiny_vae()
    rng = np.random.default_rng(0)
    mu = tg.tensor(rng.normal(size=(4, L)), dtype="float64", requires_grad=True)
    logvar = tg.tensor(rng.normal(size=(4, L)), dtype="float64", requires_grad=True)

    def sample(mu, logvar):
        tg.manual_seed(7)  # the same eps on every call
        return model.reparameterize(mu, logvar)

    assert tg.gradcheck(sample, (mu, logvar))


def test_reparameterize_derivatives_are_one_in_mu_and_half_sigma_eps_in_logvar():
    model = tiny_vae()
    rng = np.random.default_rng(0)
    mu = tg.tensor(rng.normal(size=(4, L)), dtype="float64", requires_grad=True)
    logvar = tg.tensor(rng.normal(size=(4, L)), dtype="float64", requires_grad=True)
    tg.manual_seed(7)
    z = model.reparameterize(mu, logvar)
    eps = np.random.default_rng(7).standard_normal((4, L))  # what manual_seed(7) draws
    np.testing.assert_allclose(z.data, mu.data + np.exp(0.5 * logvar.data) * eps, rtol=1e-12)
    # z_ij depends only on mu_ij and logvar_ij, so d sum(z) / d input is the elementwise derivative
    d_mu, d_logvar = tg.grad(z.sum(), [mu, logvar])
    np.testing.assert_allclose(d_mu.data, np.ones((4, L)), rtol=1e-12)
    np.testing.assert_allclose(d_logvar.data, 0.5 * np.exp(0.5 * logvar.data) * eps, rtol=1e-12)


def test_whole_vae_loss_passes_gradcheck_in_every_parameter_with_a_fixed_eps():
    model = tiny_vae().double()
    x = binary_data(n=3, dtype="float64")
    params = list(model.parameters())

    def loss(*_):
        tg.manual_seed(3)
        return model.loss(x)[0]

    model.eval()  # the loss counts training steps; keep it still
    assert tg.gradcheck(loss, params, max_elements=12)


# ---- the likelihoods -----------------------------------------------------------------------------

def test_gaussian_decoder_mean_and_logvar_halves_both_receive_gradients():
    model = tiny_vae("gaussian")
    x = tg.tensor(np.random.default_rng(0).random((6, D)))
    loss, _ = model.loss(x)
    loss.backward()
    last = model.decoder[-1]
    assert last.out_features == 2 * D
    grad = last.bias.grad.data  # bias[:D] feeds the means, bias[D:] the log-variances
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[:D]).sum() > 0
    assert np.abs(grad[D:]).sum() > 0
    assert np.abs(last.weight.grad.data[:D]).sum() > 0
    assert np.abs(last.weight.grad.data[D:]).sum() > 0


def test_gaussian_decode_splits_the_decoder_output_into_mean_and_logvar():
    model = tiny_vae("gaussian")
    z = tg.randn(5, L)
    with tg.no_grad():
        out = model.decoder(z).data
        mean, logvar = model.decode(z)
    assert mean.shape == logvar.shape == (5, D)
    np.testing.assert_array_equal(mean.data, out[:, :D])
    np.testing.assert_array_equal(logvar.data, out[:, D:])


def test_gaussian_log_likelihood_is_the_sum_of_log_normal_densities():
    model = tiny_vae("gaussian")
    rng = np.random.default_rng(0)
    x = rng.random((5, D))
    mean = rng.normal(size=(5, D))
    logvar = rng.normal(size=(5, D))
    got = model.log_likelihood(tg.tensor(x, dtype="float64"),
                               (tg.tensor(mean, dtype="float64"),
                                tg.tensor(logvar, dtype="float64")))
    assert got.shape == (5,)
    np.testing.assert_allclose(got.data, log_normal_np(x, mean, logvar).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("soft", [False, True])
def test_bernoulli_log_likelihood_is_x_log_p_plus_one_minus_x_log_one_minus_p(soft):
    model = tiny_vae()
    rng = np.random.default_rng(0)
    x = rng.random((5, D)) if soft else (rng.random((5, D)) < 0.5).astype(np.float64)
    logits = rng.normal(0, 3, (5, D))
    got = model.log_likelihood(tg.tensor(x, dtype="float64"), tg.tensor(logits, dtype="float64"))
    p = sigmoid(logits)
    want = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    assert got.shape == (5,)
    np.testing.assert_allclose(got.data, want, rtol=1e-10)


# ---- the loss, beta and the KL warm-up -----------------------------------------------------------

@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_loss_is_recon_plus_beta_kl_with_recon_from_the_same_sample(beta):
    model = tiny_vae(beta=beta).double()
    x = binary_data(n=6, dtype="float64")
    tg.manual_seed(5)
    loss, metrics = model.loss(x)
    assert set(metrics) == {"recon", "kl"}
    np.testing.assert_allclose(loss.item(), metrics["recon"].item() + beta * metrics["kl"].item(),
                               rtol=1e-12)
    # recon is -log p(x|z) averaged over the batch, z drawn with the same seed
    tg.manual_seed(5)
    with tg.no_grad():
        mu, logvar = model.encode(x)
        z = model.reparameterize(mu, logvar)
        logits = model.decode(z).data
    p = sigmoid(logits)
    xd = x.data
    want = -(xd * np.log(p) + (1 - xd) * np.log(1 - p)).sum(axis=1).mean()
    np.testing.assert_allclose(metrics["recon"].item(), want, rtol=1e-10)


def _kl_weight_used(model, x):
    loss, metrics = model.loss(x)
    return (loss.item() - metrics["recon"].item()) / metrics["kl"].item()


def test_kl_weight_grows_linearly_to_beta_over_the_warmup_steps_and_then_stays():
    model = tiny_vae(beta=2.0, kl_warmup=4).double()
    x = binary_data(n=4, dtype="float64")
    weights = [_kl_weight_used(model, x) for _ in range(7)]
    np.testing.assert_allclose(weights, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0], atol=1e-10)
    assert model.steps == 7
    assert model.kl_weight() == 2.0


def test_kl_warmup_does_not_advance_in_eval_mode_where_the_loss_is_the_full_objective():
    model = tiny_vae(beta=1.0, kl_warmup=10).double()
    x = binary_data(n=4, dtype="float64")
    for _ in range(3):
        model.loss(x)
    model.eval()
    weights = [_kl_weight_used(model, x) for _ in range(5)]
    np.testing.assert_allclose(weights, [1.0] * 5, atol=1e-10)  # -ELBO, not the warm-up weight
    assert model.steps == 3
    model.train()
    assert _kl_weight_used(model, x) == pytest.approx(0.3)
    assert model.steps == 4


def test_kl_warmup_counts_the_training_steps_of_fit_but_not_its_validation():
    model = tiny_vae(kl_warmup=100)
    data = prototype_data(n=40)
    loader = DataLoader(data, batch_size=10, seed=0)  # 4 steps per epoch
    fit(model, loader, tg.optim.Adam(model.parameters(), lr=1e-3), epochs=2, val_loader=loader,
        progress=False)
    assert model.steps == 8
    evaluate(model, loader)
    assert model.steps == 8
    assert model.kl_weight() == pytest.approx(0.08)


def test_no_warmup_uses_beta_from_the_first_step():
    model = tiny_vae(beta=3.0)
    assert model.kl_weight() == 3.0
    assert _kl_weight_used(model.double(), binary_data(n=4, dtype="float64")) \
        == pytest.approx(3.0)


# ---- the importance-weighted bound ---------------------------------------------------------------

@pytest.fixture(scope="module")
def iwae_setup():
    """A tiny float64 VAE, 4 images, and the mean ELBO estimate over 400 repetitions of each."""
    model = tiny_vae().double().eval()
    spread_encoder_(model, scale=2.0)
    x = binary_data(n=4, seed=3, dtype="float64")
    reps = 400
    repeated = tg.tensor(np.repeat(x.data, reps, axis=0), dtype="float64")  # (4 reps, D)
    tg.manual_seed(11)
    with tg.no_grad():
        mu, logvar = model.encode(repeated)
        z = model.reparameterize(mu, logvar)
        log_px = model.log_likelihood(repeated, model.decode(z)).data
    kl = (0.5 * (mu.data ** 2 + np.exp(logvar.data) - 1 - logvar.data)).sum(axis=1)
    elbo = (log_px - kl).reshape(4, reps)  # (N, reps): one-sample ELBO estimates per image
    return model, x, elbo


def test_iwae_bound_returns_one_float_per_image(iwae_setup):
    model, x, _ = iwae_setup
    tg.manual_seed(0)
    bound = iwae_bound(model, x, k=5)
    assert isinstance(bound, np.ndarray)
    assert bound.shape == (4,)
    assert np.all(np.isfinite(bound))
    # NumPy input is accepted too
    tg.manual_seed(0)
    np.testing.assert_allclose(iwae_bound(model, x.data, k=5), bound)


def test_iwae_bound_at_k1_averages_to_the_elbo(iwae_setup):
    model, x, elbo = iwae_setup
    reps = elbo.shape[1]
    tg.manual_seed(12)
    repeated = tg.tensor(np.repeat(x.data, reps, axis=0), dtype="float64")
    bound = iwae_bound(model, repeated, k=1).reshape(4, reps)
    # compare the image-averaged means; both are averages of independent draws
    a = bound.mean(axis=0)  # (reps,): each the mean over the 4 images
    b = elbo.mean(axis=0)
    standard_error = math.sqrt(a.var() / reps + b.var() / reps)
    assert abs(a.mean() - b.mean()) < 5 * standard_error


def test_iwae_bound_at_k1_averages_to_minus_the_model_loss(iwae_setup):
    model, x, _ = iwae_setup
    reps = 400
    repeated = tg.tensor(np.repeat(x.data, reps, axis=0), dtype="float64")
    losses = []
    tg.manual_seed(13)
    with tg.no_grad():
        for _ in range(reps):
            losses.append(model.loss(x)[0].item())  # batch means over the 4 images
    tg.manual_seed(14)
    bound = iwae_bound(model, repeated, k=1).reshape(4, reps).mean(axis=0)
    neg_loss = -np.array(losses)
    standard_error = math.sqrt(bound.var() / reps + neg_loss.var() / reps)
    assert abs(bound.mean() - neg_loss.mean()) < 5 * standard_error


def test_iwae_bound_exceeds_the_elbo_and_grows_with_k(iwae_setup):
    model, x, elbo = iwae_setup
    elbo_mean = elbo.mean()
    means = {}
    for k, reps in ((1, 40), (10, 10), (100, 3)):
        tg.manual_seed(20 + k)
        means[k] = np.mean([iwae_bound(model, x, k=k).mean() for _ in range(reps)])
    assert means[10] >= elbo_mean
    assert means[100] >= elbo_mean
    assert means[1] <= means[10] + 0.05
    assert means[10] <= means[100] + 0.05
    assert means[100] > means[1]  # strictly, for this poorly fitting q


def linear_gaussian_vae(shift=0.0):
    """A float64 VAE whose log p(x) is known: p(z) = N(0, I), p(x|z) = N(W z + b, psi I) with
    orthogonal columns of W, so the true posterior is a diagonal Gaussian, linear in x. The
    encoder computes it exactly, its mean moved by `shift` in every latent dimension.

    Returns (model, log_p, posterior variances, sample): log_p(x) (N,) from
    x ~ N(b, W W^T + psi I); sample(n, seed) draws n images from that marginal.
    """
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, L)))
    scales = np.array([2.0, 1.0, 0.5])
    w = q * scales  # (D, L), W^T W diagonal
    b = rng.normal(size=D)
    psi = 0.3
    var_post = 1 / (1 + scales ** 2 / psi)  # diag (I + W^T W / psi)^-1
    a = var_post[:, None] * w.T / psi  # posterior mean = a (x - b)
    encoder = nn.Linear(D, 2 * L)
    decoder = nn.Linear(L, 2 * D)
    model = VAE(encoder, decoder, L, likelihood="gaussian").double()
    encoder.weight.data[:] = np.vstack([a, np.zeros((L, D))])
    encoder.bias.data[:] = np.concatenate([-a @ b + shift, np.log(var_post)])
    decoder.weight.data[:] = np.vstack([w, np.zeros((D, L))])  # a constant log-variance
    decoder.bias.data[:] = np.concatenate([b, np.full(D, math.log(psi))])
    cov = w @ w.T + psi * np.eye(D)

    def log_p(x):
        diff = x - b
        _, logdet = np.linalg.slogdet(cov)
        mahalanobis = np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
        return -0.5 * (D * LOG_2PI + logdet + mahalanobis)

    def sample(n, seed):
        r = np.random.default_rng(seed)
        return r.normal(size=(n, L)) @ w.T + b + math.sqrt(psi) * r.normal(size=(n, D))

    return model, log_p, var_post, sample


@pytest.mark.parametrize("k", [1, 7, 600])
def test_iwae_bound_is_log_p_exactly_when_q_is_the_true_posterior(k):
    model, log_p, _, sample = linear_gaussian_vae()
    x = sample(4, seed=1)
    tg.manual_seed(k)
    # every importance weight p(x, z) / q(z|x) is p(x); batch_size=250 draws k=600 in 3 chunks
    bound = iwae_bound(model, tg.tensor(x, dtype="float64"), k=k, batch_size=250)
    np.testing.assert_allclose(bound, log_p(x), rtol=1e-10)


def test_mean_elbo_is_log_p_when_q_is_the_true_posterior():
    model, log_p, _, sample = linear_gaussian_vae()
    model.eval()
    x = tg.tensor(sample(4, seed=1), dtype="float64")
    reps = 2000
    tg.manual_seed(0)
    with tg.no_grad():
        neg_loss = np.array([-model.loss(x)[0].item() for _ in range(reps)])
    standard_error = neg_loss.std() / math.sqrt(reps)
    assert abs(neg_loss.mean() - log_p(x.data).mean()) < 5 * standard_error


def test_iwae_bound_at_k1_is_log_p_minus_the_kl_to_the_true_posterior_on_average():
    shift = 0.3
    model, log_p, var_post, sample = linear_gaussian_vae(shift)
    x = sample(4, seed=1)
    reps = 300
    tg.manual_seed(0)
    bound = iwae_bound(model, tg.tensor(np.repeat(x, reps, axis=0), dtype="float64"), k=1)
    per_rep = bound.reshape(4, reps).mean(axis=0)  # (reps,), each the mean over the 4 images
    # KL(N(m + shift, S) || N(m, S)) = sum_i shift^2 / (2 s_i^2)
    want = log_p(x).mean() - (shift ** 2 / (2 * var_post)).sum()
    standard_error = per_rep.std() / math.sqrt(reps)
    assert abs(per_rep.mean() - want) < 5 * standard_error


def test_iwae_bound_climbs_towards_log_p_with_k_and_stays_below_it():
    model, log_p, _, sample = linear_gaussian_vae(shift=0.3)
    x = sample(4, seed=1)
    truth = log_p(x).mean()
    means = {}
    for k, reps in ((1, 100), (10, 20), (100, 5), (1000, 2)):
        tg.manual_seed(k)
        means[k] = np.mean([iwae_bound(model, tg.tensor(x, dtype="float64"), k=k).mean()
                            for _ in range(reps)])
    assert means[1] < means[10] < means[100] < means[1000] <= truth + 0.01
    assert truth - means[1000] < 0.1 * (truth - means[1])


# ---- training ------------------------------------------------------------------------------------

def test_bernoulli_vae_loss_falls_over_a_few_dozen_adam_steps():
    model = tiny_vae()
    loader = DataLoader(prototype_data(), batch_size=50, seed=0)  # 4 steps per epoch
    history = fit(model, loader, tg.optim.Adam(model.parameters(), lr=1e-2), epochs=10,
                  progress=False)
    losses = history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    for term in ("loss", "recon", "kl"):
        assert all(math.isfinite(v) for v in history[term])


def test_gaussian_vae_loss_falls_over_a_few_dozen_adam_steps():
    model = tiny_vae("gaussian")
    rng = np.random.default_rng(0)
    x = tg.tensor(prototype_data() * 0.8 + 0.1 + rng.normal(0, 0.05, (200, D)))
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, metrics = model.loss(x)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(math.isfinite(v) for v in losses)
    # the Gaussian NLL can go below zero, so ask for a fall in nats rather than a ratio
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 3.0


# ---- what a trained VAE is for -------------------------------------------------------------------

def test_sample_gives_n_images_with_pixel_means_in_0_1():
    model = tiny_vae()
    model.decoder[-1].bias.data[:] = 20.0 * np.sign(np.arange(D) - D / 2)  # saturate some pixels
    tg.manual_seed(0)
    images = model.sample(7)
    assert images.shape == (7, D)
    assert not images.requires_grad
    assert images.data.min() >= 0 and images.data.max() <= 1


def test_gaussian_sample_is_the_decoded_mean():
    model = tiny_vae("gaussian")
    tg.manual_seed(0)
    images = model.sample(3)
    tg.manual_seed(0)
    z = tg.randn(3, L)
    with tg.no_grad():
        mean, _ = model.decode(z)
    assert images.shape == (3, D)
    np.testing.assert_array_equal(images.data, mean.data)


def test_reconstruct_equals_forward_and_records_no_graph():
    model = tiny_vae()
    x = binary_data(n=5)
    forward = model(x)
    recon = model.reconstruct(x)
    assert recon.shape == (5, D)
    assert not recon.requires_grad
    np.testing.assert_array_equal(recon.data, forward.data)
    # and it is the mean code decoded: sigmoid(decoder(mu))
    with tg.no_grad():
        mu, _ = model.encode(x)
        want = sigmoid(model.decoder(mu).data.astype(np.float64))
    np.testing.assert_allclose(recon.data, want, rtol=1e-5)


@pytest.mark.parametrize("as_rows", [False, True])
def test_interpolate_starts_and_ends_at_the_reconstructions(as_rows):
    model = tiny_vae()
    x = binary_data(n=2)
    x_a, x_b = (x.data[0], x.data[1]) if as_rows else (x[0:1], x[1:2])
    path = model.interpolate(x_a, x_b, steps=6)
    assert path.shape == (6, D)
    recon = model.reconstruct(x).data
    np.testing.assert_allclose(path.data[0], recon[0], rtol=1e-6)
    np.testing.assert_allclose(path.data[-1], recon[1], rtol=1e-6)
    # the middle is the decoded midpoint of the codes (steps = 3: t = 0, 0.5, 1)
    mid = model.interpolate(x_a, x_b, steps=3).data[1]
    with tg.no_grad():
        mu, _ = model.encode(x)
        want = sigmoid(model.decoder(mu.mean(axis=0, keepdims=True)).data.astype(np.float64))
    np.testing.assert_allclose(mid, want[0], rtol=1e-5)


def test_attribute_vector_is_the_difference_of_mean_codes():
    model = tiny_vae()
    x_with = binary_data(n=6, seed=1)
    x_without = binary_data(n=9, seed=2)
    vector = attribute_vector(model, x_with, x_without)
    with tg.no_grad():
        want = (model.encode(x_with)[0].data.mean(axis=0)
                - model.encode(x_without)[0].data.mean(axis=0))
    assert vector.shape == (L,)
    np.testing.assert_allclose(vector, want, rtol=1e-6)
    # NumPy groups give the same vector
    np.testing.assert_allclose(attribute_vector(model, x_with.data, x_without.data), want,
                               rtol=1e-6)


def test_add_attribute_rows_are_images_by_scales_and_scale_zero_is_the_reconstruction():
    model = tiny_vae()
    x = binary_data(n=3)
    vector = attribute_vector(model, binary_data(n=6, seed=1), binary_data(n=6, seed=2))
    scales = (0.0, 1.0, 2.5)
    out = add_attribute(model, x, vector, scales=scales)
    assert out.shape == (3 * len(scales), D)
    assert not out.requires_grad
    grid = out.data.reshape(3, len(scales), D)  # row-major by image
    np.testing.assert_allclose(grid[:, 0], model.reconstruct(x).data, rtol=1e-6)
    with tg.no_grad():
        mu = model.encode(x)[0].data.astype(np.float64)
        for j, s in enumerate(scales):
            code = tg.tensor(mu + s * vector)
            np.testing.assert_allclose(grid[:, j], sigmoid(model.decoder(code).data), rtol=1e-5)


def test_add_attribute_default_scales_give_five_rows_per_image():
    model = tiny_vae()
    x = binary_data(n=2)
    out = add_attribute(model, x, np.ones(L, dtype=np.float32))
    assert out.shape == (10, D)


# ---- errors --------------------------------------------------------------------------------------

def test_unknown_likelihood_is_named():
    with pytest.raises(ValueError, match=r"bernoulli, gaussian.*'poisson'"):
        VAE(mlp([D, H, 2 * L]), mlp([L, H, D]), L, likelihood="poisson")
    with pytest.raises(ValueError, match="poisson"):
        mlp_vae(D, H, L, likelihood="poisson")


def test_encoder_output_of_the_wrong_width_names_the_shapes():
    model = VAE(mlp([D, H, 5]), mlp([L, H, D]), L)
    x = binary_data(n=4)
    with pytest.raises(ValueError, match=r"2 x latent_dim = 6 .*got shape \(4, 5\)"):
        model.loss(x)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        model.reconstruct(x)


def test_conv_vae_refuses_the_gaussian_likelihood():
    with pytest.raises(ValueError, match="Bernoulli"):
        conv_vae(latent_dim=2, likelihood="gaussian")


# ---- checkpoints and the convolutional VAE -------------------------------------------------------

@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_saves_and_reloads_with_identical_reconstructions(likelihood, tmp_path):
    model = tiny_vae(likelihood, seed=0)
    x = binary_data(n=4)
    want = model.reconstruct(x).data
    tg.save({"model": model.state_dict()}, tmp_path / "vae.ckpt")

    fresh = tiny_vae(likelihood, seed=1)
    assert not np.array_equal(fresh.reconstruct(x).data, want)  # a different initialisation
    fresh.load_state_dict(tg.load(tmp_path / "vae.ckpt")["model"])
    got = fresh.reconstruct(x).data
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    tg.manual_seed(0)
    sampled = model.sample(3).data
    tg.manual_seed(0)
    np.testing.assert_array_equal(fresh.sample(3).data, sampled)


def test_conv_vae_computes_a_loss_and_gradients_on_two_28x28_images():
    tg.manual_seed(0)
    model = conv_vae(latent_dim=4)
    images = tg.tensor(np.random.default_rng(0).random((2, 784)))
    loss, metrics = model.loss(images)
    assert loss.shape == ()
    assert set(metrics) == {"recon", "kl"}
    assert math.isfinite(loss.item()) and loss.item() > 0
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert np.all(np.isfinite(param.grad.data)), name
    assert model.reconstruct(images).shape == (2, 784)
    assert model.sample(2).shape == (2, 784)


# ---- warm-up across resumes, bad k ---------------------------------------------------------------

def test_kl_warmup_continues_when_fit_resumes_from_a_checkpoint(tmp_path):
    data = prototype_data(n=40)
    model = tiny_vae(kl_warmup=100)
    fit(model, DataLoader(data, batch_size=10, seed=0), tg.optim.Adam(model.parameters()),
        epochs=2, checkpoint=tmp_path / "vae.ckpt", progress=False)
    assert model.steps == 8
    resumed = tiny_vae(kl_warmup=100, seed=1)
    fit(resumed, DataLoader(data, batch_size=10, seed=0), tg.optim.Adam(resumed.parameters()),
        epochs=3, resume=tmp_path / "vae.ckpt", progress=False)
    assert resumed.steps == 12  # 8 before the checkpoint, 4 after


def test_iwae_bound_names_a_k_that_is_not_positive():
    model = tiny_vae()
    with pytest.raises(ValueError, match=r"\bk\b"):
        iwae_bound(model, binary_data(n=2), k=0)


# ---- the Gaussian decoder: its loss, the variance floor, dequantised data, bits/dim -------------

def softplus_np(a):
    return np.logaddexp(0.0, a)


@pytest.mark.parametrize("sigma_min, mean_activation",
                         [(None, "identity"), (0.5, "identity"), (None, "sigmoid")])
def test_gaussian_vae_loss_is_minus_log_normal_summed_over_pixels_plus_the_kl(sigma_min,
                                                                              mean_activation):
    model = tiny_vae("gaussian", sigma_min=sigma_min, mean_activation=mean_activation).double()
    spread_encoder_(model)
    x = tg.tensor(np.random.default_rng(0).random((6, D)), dtype="float64")
    tg.manual_seed(5)
    loss, metrics = model.loss(x)
    # The same eps again, and every step after it in NumPy.
    tg.manual_seed(5)
    with tg.no_grad():
        mu, logvar = (t.data for t in model.encode(x))
        eps = tg.randn(6, L, dtype="float64").data
        out = model.decoder(tg.tensor(mu + np.exp(logvar / 2) * eps)).data
    mean, raw = out[:, :D], out[:, D:]
    if mean_activation == "sigmoid":
        mean = sigmoid(mean)
    if sigma_min is not None:
        floor = 2 * math.log(sigma_min)
        raw = floor + softplus_np(raw - floor)
    recon = -log_normal_np(x.data, mean, raw).sum(axis=1).mean()
    kl = (-0.5 * (1 + logvar - mu**2 - np.exp(logvar))).sum(axis=1).mean()
    np.testing.assert_allclose(metrics["recon"].item(), recon, rtol=1e-8)
    np.testing.assert_allclose(loss.item(), recon + kl, rtol=1e-8)


def test_floored_logvar_never_goes_below_the_floor_and_is_raw_well_above_it():
    floor = -4.0
    raw = np.array([-1e4, -50.0, -4.0, -3.0, 0.0, 30.0])
    got = floored_logvar(tg.tensor(raw, dtype="float64"), floor).data
    assert np.all(got >= floor)
    np.testing.assert_allclose(got, floor + softplus_np(raw - floor), rtol=1e-12)
    np.testing.assert_allclose(got[-1], 30.0, rtol=1e-12)  # 34 above the floor: raw itself
    assert got[2] == pytest.approx(floor + math.log(2))   # at the floor: twice its variance


def test_floored_logvar_gradient_is_sigmoid_of_the_distance_to_the_floor():
    floor = -4.0
    raw = tg.tensor([-30.0, -6.0, -4.0, -2.0, 10.0], dtype="float64", requires_grad=True)
    floored_logvar(raw, floor).sum().backward()
    want = sigmoid(raw.data - floor)
    np.testing.assert_allclose(raw.grad.data, want, rtol=1e-12)
    assert np.all(raw.grad.data > 0)        # below the floor too: a unit there can climb back
    assert raw.grad.data[-1] > 0.9999       # well above it the gradient passes unchanged


def test_floored_logvar_passes_gradcheck_and_gradgradcheck_in_float64():
    raw = tg.tensor(np.linspace(-8, 4, 7), dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda r: floored_logvar(r, -3.0), raw)
    assert tg.gradgradcheck(lambda r: floored_logvar(r, -3.0), raw)


def test_a_floored_decoder_keeps_logvar_above_log_sigma_min_squared_and_still_learns_it():
    model = tiny_vae("gaussian", sigma_min=0.1)
    last = model.decoder[-1]
    last.bias.data[D:] = np.linspace(-40, 5, D)  # log-variances far below and above the floor
    x = tg.tensor(np.random.default_rng(0).random((4, D)))
    with tg.no_grad():
        _, logvar = model.decode(model.encode(x)[0])
    assert logvar.data.min() >= 2 * math.log(0.1) - 1e-6
    loss, _ = model.loss(x)
    loss.backward()
    grad = last.bias.grad.data[D:]
    assert np.all(np.isfinite(grad)) and np.all(grad != 0)  # every log-variance still learns


def test_sigma_min_is_refused_without_a_gaussian_decoder_and_must_be_positive():
    with pytest.raises(ValueError, match="bernoulli decoder has none"):
        tiny_vae("bernoulli", sigma_min=0.1)
    with pytest.raises(ValueError, match="positive"):
        tiny_vae("gaussian", sigma_min=0.0)


def test_mean_activation_is_checked_and_only_for_a_gaussian_decoder():
    with pytest.raises(ValueError, match="identity, sigmoid.*'tanh'"):
        tiny_vae("gaussian", mean_activation="tanh")
    with pytest.raises(ValueError, match="bernoulli decoder has none"):
        tiny_vae("bernoulli", mean_activation="sigmoid")
    model = tiny_vae("gaussian", mean_activation="sigmoid")
    model.decoder[-1].bias.data[:D] = np.linspace(-30, 30, D)  # means far outside [0, 1] raw
    tg.manual_seed(0)
    images = model.sample(4).data
    assert images.min() >= 0 and images.max() <= 1
    assert "mean_activation='sigmoid'" in repr(model)


def constant_pixel_run(sigma_min, steps=150):
    """A tiny Gaussian VAE (sigmoid means) trained on images whose last half of pixels are always
    0: (its losses until one is not finite, the lowest log-variance it gave those pixels)."""
    rng = np.random.default_rng(0)
    x = rng.random((64, D)).astype(np.float32)
    x[:, D // 2:] = 0.0
    model = tiny_vae("gaussian", sigma_min=sigma_min, mean_activation="sigmoid")
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)
    losses, lowest = [], np.inf
    with np.errstate(all="ignore"):
        for _ in range(steps):
            mu, logvar = model.encode(tg.tensor(x))
            mean, pixel_logvar = model.decode(model.reparameterize(mu, logvar))
            loss = (F.gaussian_nll(tg.tensor(x), mean, pixel_logvar, reduction="none")
                    .sum(axis=1).mean() + F.kl_normal(mu, logvar, reduction="batchmean"))
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                break
            lowest = min(lowest, float(pixel_logvar.data[:, D // 2:].min()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return losses, lowest


def test_without_a_floor_the_variance_of_always_black_pixels_collapses_and_with_one_it_stops():
    floor = 2 * math.log(0.05)  # -6.0
    free_losses, free_lowest = constant_pixel_run(None)
    floored_losses, floored_lowest = constant_pixel_run(0.05)
    assert free_lowest < floor - 5.0  # the black pixels' variance runs far below the floor ...
    assert min(free_losses) < min(floored_losses) - 50  # ... and the "likelihood" climbs with it
    assert floored_lowest >= floor - 1e-5
    assert len(floored_losses) == 150 and all(math.isfinite(v) for v in floored_losses)


def test_a_gaussian_vae_on_dequantised_pixels_learns_with_new_noise_each_epoch():
    pixels = (prototype_data(n=120) * 200 + 20).astype(np.uint8)  # two levels, 20 and 220
    model = tiny_vae("gaussian")
    loader = DataLoader(pixels, batch_size=40, seed=0, transform=Dequantizer(seed=0))
    history = fit(model, loader, tg.optim.Adam(model.parameters(), lr=1e-2), epochs=12,
                  progress=False)
    losses = history["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 5.0  # nats per image; a Gaussian NLL can go below zero


def test_bits_per_dim_of_a_uniform_density_is_eight_and_follows_the_formula():
    assert bits_per_dim(0.0, 784) == pytest.approx(8.0)  # p(x) = 1 on [0, 1]^D: log2 256 bits
    assert bits_per_dim(-784 * math.log(2), 784) == pytest.approx(7.0)
    assert bits_per_dim(100.0, 10, levels=2) == pytest.approx((10.0 + math.log(2)) / math.log(2))


@pytest.mark.parametrize("sigma", [0.3, 0.02, 0.001])
def test_bits_per_dim_of_a_dequantised_density_bound_the_discrete_codelength(sigma):
    # A Gaussian density on x; the discrete model it implies gives level k the mass of its bin.
    from statistics import NormalDist
    mean, levels = 0.4, np.arange(256)
    density = NormalDist(mean, sigma)
    lo, hi = levels / 256, (levels + 1) / 256
    mass = np.array([density.cdf(b) - density.cdf(a) for a, b in zip(lo, hi)])
    # E_u[-log p(x)] over each bin in closed form: E[(x - m)^2] for x uniform on [lo, hi].
    second_moment = ((hi - mean) ** 3 - (lo - mean) ** 3) / (3 * (hi - lo))
    nll = 0.5 * math.log(2 * math.pi * sigma**2) + second_moment / (2 * sigma**2)
    for k in (0, 100, 102, 255):
        if mass[k] > 1e-300:
            assert bits_per_dim(nll[k], 1) >= -math.log2(mass[k]) - 1e-9
    if sigma == 0.3:  # nearly flat across a bin: the bound is tight
        np.testing.assert_allclose(bits_per_dim(nll[100], 1), -math.log2(mass[100]), atol=1e-5)


def test_gaussian_samples_drawn_from_p_x_given_z_are_the_mean_plus_sigma_noise():
    model = tiny_vae("gaussian", sigma_min=0.01)
    tg.manual_seed(0)
    drawn = model.sample(5, mean=False).data
    tg.manual_seed(0)
    with tg.no_grad():
        mean, logvar = model.decode(tg.randn(5, L))
        noise = tg.randn(5, D).data
    np.testing.assert_allclose(drawn, mean.data + np.exp(logvar.data / 2) * noise, rtol=1e-6)
    tg.manual_seed(0)
    np.testing.assert_array_equal(model.sample(5).data, mean.data)  # the default: the means


def test_bernoulli_samples_drawn_from_p_x_given_z_are_zeros_and_ones_at_the_right_rate():
    model = tiny_vae()
    model.decoder[-1].weight.data[:] = 0.0
    model.decoder[-1].bias.data[:] = np.log(0.3 / 0.7)  # every pixel on with probability 0.3
    tg.manual_seed(0)
    drawn = model.sample(4000, mean=False).data
    assert set(np.unique(drawn)) <= {0.0, 1.0}
    p = drawn.mean()
    assert abs(p - 0.3) < 4 * math.sqrt(0.3 * 0.7 / drawn.size)
