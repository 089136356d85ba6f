"""tinygen.mnist_classifier: the shipped weights against the labels, FID's matrix square root
against a brute-force eigendecomposition and closed forms, the MNIST score at its two extremes,
and the quiz's answer key against the images it drew."""
import os
from pathlib import Path

import numpy as np
import pytest

import tinygen as tg
from tinygen import mnist_classifier as mc
from tinygen import plot
from tinygen.data import flatten, load_mnist, mnist, to_symmetric, to_unit

# The real files: $TINYGEN_DATA if set, else the shared folder beside the repository (CI, dev).
DATA = Path(os.environ.get("TINYGEN_DATA") or Path(__file__).parents[2] / "shared/data/mnist")
needs_data = pytest.mark.skipif(
    not all((DATA / f"{name}.gz").is_file() or (DATA / name).is_file() for name in mnist.SHA256),
    reason=f"the full MNIST files are not in {DATA} (set TINYGEN_DATA to a folder holding them)")


@pytest.fixture(scope="module")
def bundled_test():
    """The bundled subset's 2,000 test digits: (x (2000, 784) in [0, 1], labels (2000,))."""
    images, labels = load_mnist("test", subset="bundled")
    return flatten(to_unit(images)), labels.astype(np.int64)


@pytest.fixture(scope="module")
def test_features(bundled_test):
    return mc.features(bundled_test[0])


# ---- the shipped classifier ----------------------------------------------------------------------
def test_load_classifier_is_cached_in_eval_mode_with_metadata():
    model = mc.load_classifier()
    assert model is mc.load_classifier()
    assert not model.training
    assert model.metadata["test_accuracy"] >= 0.99
    assert all(p.data.dtype == np.float32 for p in model.parameters())


def test_load_classifier_missing_file_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/train_mnist_classifier.py"):
        mc.load_classifier(tmp_path / "nothing.npz")


def test_classifier_accepts_flat_and_image_shaped_inputs(bundled_test):
    x = bundled_test[0][:5]
    model = mc.load_classifier()
    with tg.no_grad():
        flat = model(tg.tensor(x)).data
        square = model(tg.tensor(x.reshape(5, 1, 28, 28))).data
        feats = model.features(tg.tensor(x)).data
    assert flat.shape == (5, 10) and feats.shape == (5, 128)
    np.testing.assert_array_equal(flat, square)


def test_shipped_classifier_at_least_98_5_percent_on_bundled_test_digits(bundled_test):
    x, labels = bundled_test
    assert np.mean(mc.predict(x) == labels) >= 0.985


@needs_data
def test_shipped_classifier_at_least_99_percent_on_2000_real_test_digits():
    images, labels = load_mnist("test", root=DATA, download=False)
    picked = np.random.default_rng(1).choice(len(images), size=2000, replace=False)
    assert np.mean(mc.predict(images[picked]) == labels[picked]) >= 0.99


def test_loss_returns_cross_entropy_and_accuracy(bundled_test):
    x, y = bundled_test
    loss, metrics = mc.load_classifier().loss(tg.tensor(x[:100]), y[:100])
    assert 0 < float(loss.data) < 0.2
    assert metrics["accuracy"] >= 0.95


# ---- FID -----------------------------------------------------------------------------------------
def random_spd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T + (0 if rank else 0.1 * np.eye(d))


@pytest.mark.parametrize("d", [1, 3, 8])
def test_trace_sqrt_product_matches_eigenvalues_of_the_product(rng, d):
    # Brute force: S_a S_b has real eigenvalues >= 0 (similar to a PSD matrix); sum their roots.
    sa, sb = random_spd(rng, d), random_spd(rng, d)
    brute = np.sum(np.sqrt(np.clip(np.linalg.eigvals(sa @ sb).real, 0, None)))
    assert mc.trace_sqrt_product(sa, sb) == pytest.approx(brute, rel=1e-9)


def test_trace_sqrt_product_of_singular_covariances_matches_brute_force(rng):
    sa, sb = random_spd(rng, 6, rank=2), random_spd(rng, 6, rank=3)
    brute = np.sum(np.sqrt(np.clip(np.linalg.eigvals(sa @ sb).real, 0, None)))
    assert mc.trace_sqrt_product(sa, sb) == pytest.approx(brute, rel=1e-6, abs=1e-6)


def test_frechet_distance_of_1d_gaussians_is_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    d = mc.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx(3.0 ** 2 + (2.0 - 3.0) ** 2, rel=1e-12)


def test_frechet_distance_of_commuting_covariances_is_closed_form(rng):
    # Diagonal covariances commute: Tr((S_a S_b)^(1/2)) = sum sqrt(a_i b_i)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    mu_a, mu_b = rng.standard_normal(5), rng.standard_normal(5)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert mc.frechet_distance(mu_a, np.diag(a), mu_b, np.diag(b)) == pytest.approx(expected)


def test_fid_of_a_set_with_itself_is_zero(bundled_test):
    x = bundled_test[0][:500]
    assert mc.fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_is_symmetric(test_features):
    a, b = test_features[:1000], test_features[1000:]
    ga, gb = mc._gaussian(a), mc._gaussian(b)
    assert mc.frechet_distance(*ga, *gb) == pytest.approx(mc.frechet_distance(*gb, *ga), rel=1e-6)


def test_fid_grows_with_noise(bundled_test, test_features):
    # Digits 0..999 (noised more and more) against digits 1000..1999 of the same test set.
    x = bundled_test[0][:1000]
    reference = mc._gaussian(test_features[1000:])
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    scores = [mc.frechet_distance(*mc._gaussian(test_features[:1000]), *reference)]
    for scale in (0.2, 0.5):
        noised = mc.features(np.clip(x + scale * noise, 0, 1))
        scores.append(mc.frechet_distance(*mc._gaussian(noised), *reference))
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] > 10 * scores[0]


def test_fid_value_range_maps_tanh_images_to_unit(bundled_test):
    x = bundled_test[0][:300]
    y = bundled_test[0][300:600]
    symmetric = 2 * y - 1
    assert mc.fid(x, symmetric, value_range_b=(-1, 1)) == pytest.approx(mc.fid(x, y), rel=1e-5)


# ---- MNIST score ---------------------------------------------------------------------------------
def test_mnist_score_of_real_test_digits_is_high(bundled_test):
    mean, std = mc.mnist_score(bundled_test[0])
    assert 8 < mean <= 10 and std >= 0


def test_mnist_score_of_one_repeated_image_is_one(bundled_test):
    repeated = np.repeat(bundled_test[0][:1], 100, axis=0)
    mean, std = mc.mnist_score(repeated)
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_mnist_score_accepts_uint8_and_tanh_ranges():
    images, _ = load_mnist("test", subset="bundled")
    images = images[:500]
    unit = mc.mnist_score(flatten(to_unit(images)), splits=5)
    assert mc.mnist_score(images, splits=5) == pytest.approx(unit, rel=1e-6)
    tanh = mc.mnist_score(to_symmetric(images), splits=5, value_range=(-1, 1))
    assert tanh == pytest.approx(unit, rel=1e-5)


# ---- quiz ----------------------------------------------------------------------------------------
def test_real_floor_on_the_bundled_subset_searches_nothing(monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("real_floor(subset='bundled') searched for the full MNIST")

    monkeypatch.setattr(mnist, "find_mnist", no_search)
    floor = mc.real_floor(n=500, subset="bundled")
    assert floor["n_train"] == 500 and floor["n_test"] == 2000
    assert 0 < floor["fid"] < 100 and floor["mnist_score"][0] > 8


def test_quiz_writes_the_picture_and_the_answer_key(tmp_path, bundled_test):
    real = bundled_test[0][:16]
    fake = np.random.default_rng(0).uniform(size=(16, 784))
    path = tmp_path / "quiz.png"
    key = mc.quiz(real, fake, path, n=16, seed=0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    answers = tmp_path / "quiz.answers.txt"
    assert answers.is_file()
    assert len(key) == 16 and len(set(key)) == 16 and all(0 <= i < 32 for i in key)
    assert all(f"{i} (row" in answers.read_text() for i in key)


def test_quiz_key_names_the_generated_cells_and_is_reproducible(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plot, "image_grid", lambda images, path, **kw: drawn.append(images))
    real = np.zeros((10, 784), np.float32)
    fake = np.ones((10, 784), np.float32)
    key = mc.quiz(real, fake, tmp_path / "a.png", n=10, seed=3)
    shown = drawn[0].reshape(20, -1).mean(axis=1)
    assert sorted(np.flatnonzero(shown == 1).tolist()) == key
    assert mc.quiz(real, fake, tmp_path / "b.png", n=10, seed=3) == key
    assert mc.quiz(real, fake, tmp_path / "c.png", n=10, seed=4) != key
