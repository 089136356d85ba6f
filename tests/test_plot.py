"""plot: every function writes a valid image atomically, accepts Tensors, and names bad inputs."""
import json
import os
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

import tinygen as tg
from tinygen import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_png(path):
    """The pixels (H, W, 4) of a file that must be a PNG."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    return imread(path)


def blob_decoder(seen):
    """decode(z): (k, 2) -> (k, 784) images of a blob at z; records each z it is given in seen."""
    def decode(z):
        seen.append(z)
        xx, yy = np.meshgrid(np.linspace(-3, 3, 28), np.linspace(3, -3, 28))
        sq = (xx - z[:, 0, None, None]) ** 2 + (yy - z[:, 1, None, None]) ** 2  # (k, 28, 28)
        return np.exp(-2.0 * sq).reshape(len(z), 28 * 28)
    return decode


class Ring:
    """Four Gaussian modes (std 0.1) on the unit circle; log_density as in tinygen.data.toy."""
    modes = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])

    def log_density(self, x):
        sq = np.sum((x[:, None, :] - self.modes) ** 2, axis=-1)  # (k, 4)
        return np.log(np.mean(np.exp(-0.5 * sq / 0.01), axis=1) / (2 * np.pi * 0.01))


def every_plot(rng, folder):
    """Call each plot function once, with Tensors where it takes arrays; returns the paths."""
    history = {"loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.7]}
    codes = rng.standard_normal((100, 2))
    x_grid = np.linspace(-4, 4, 50)
    return [
        plot.image_grid(tg.tensor(rng.random((16, 784))), os.path.join(folder, "grid.png")),
        plot.curves(history, os.path.join(folder, "curves.png")),
        plot.latent_scatter(tg.tensor(codes), tg.tensor(rng.integers(0, 10, 100)),
                            os.path.join(folder, "scatter.png")),
        plot.latent_manifold(blob_decoder([]), os.path.join(folder, "manifold.png"), n=5),
        plot.density_1d(tg.tensor(x_grid), os.path.join(folder, "gan1d.png"),
                        data_density=np.exp(-0.5 * x_grid**2), discriminator=lambda x: 0 * x + 0.5,
                        samples=tg.tensor(rng.standard_normal(200))),
        plot.samples_2d(tg.tensor(codes), os.path.join(folder, "gan2d.png"),
                        data_density=Ring().log_density, modes=tg.tensor(Ring.modes)),
    ]


# ---------------------------------------------------------------- every function

def test_every_function_writes_a_png_into_new_folders_and_leaves_no_temp_file(rng, tmp_path):
    folder = tmp_path / "runs" / "new"  # neither folder exists yet
    paths = every_plot(rng, str(folder))
    names = ["grid.png", "curves.png", "scatter.png", "manifold.png", "gan1d.png", "gan2d.png"]
    assert paths == [str(folder / name) for name in names]
    for path in paths:
        assert read_png(path).shape[2] == 4
    assert sorted(os.listdir(folder)) == sorted(names)  # no .tmp files left over


def test_save_overwrites_atomically_and_a_failed_save_keeps_the_old_file(rng, tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "grid.png"
    plot.image_grid(rng.random((4, 28, 28)), path)
    before = path.read_bytes()

    def broken_savefig(self, f, **kwargs):
        f.write(b"half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot.image_grid(rng.random((9, 28, 28)), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["grid.png"]


def test_format_follows_the_suffix_and_an_unknown_suffix_is_named(rng, tmp_path):
    plot.image_grid(rng.random((4, 28, 28)), tmp_path / "grid")  # no suffix: PNG
    assert read_png(tmp_path / "grid").ndim == 3
    svg = plot.curves({"loss": [1.0, 0.5]}, tmp_path / "curves.svg")
    assert b"<svg" in open(svg, "rb").read(1000)
    with pytest.raises(ValueError, match=r"'\.xyz'.*\.png"):
        plot.curves({"loss": [1.0]}, tmp_path / "curves.xyz")
    assert sorted(os.listdir(tmp_path)) == ["curves.svg", "grid"]


# ---------------------------------------------------------------- image_grid

def test_image_grid_4x4_of_28x28_is_square_and_2x8_is_four_times_wider(rng, tmp_path):
    square = read_png(plot.image_grid(rng.random((16, 28, 28)), tmp_path / "a.png", dpi=100))
    assert square.shape[0] == square.shape[1]
    assert 400 <= square.shape[0] <= 520  # about an inch per image at dpi 100
    wide = read_png(plot.image_grid(rng.random((16, 28, 28)), tmp_path / "b.png", nrow=8, dpi=100))
    assert wide.shape[1] / wide.shape[0] == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("layout", ["(N, H, W)", "(N, 1, H, W)", "(N, 784)", "Tensor"])
def test_image_grid_draws_every_layout_of_the_same_images_identically(rng, tmp_path, layout):
    images = rng.random((6, 28, 28))
    reference = read_png(plot.image_grid(images, tmp_path / "reference.png"))
    given = {"(N, H, W)": images, "(N, 1, H, W)": images[:, None],
             "(N, 784)": images.reshape(6, -1), "Tensor": tg.tensor(images[:, None])}[layout]
    np.testing.assert_array_equal(read_png(plot.image_grid(given, tmp_path / "x.png")), reference)


def cell_centres(pixels, n):
    """The grey value at the centre of each of n images laid out in one row."""
    h, w = pixels.shape[:2]
    return [pixels[h // 2, int((i + 0.5) * w / n), 0] for i in range(n)]


def test_image_grid_value_range_auto_detects_minus_one_to_one_and_clips(tmp_path):
    images = np.stack([np.full((28, 28), v) for v in (-1.0, 0.0, 1.0)])  # (3, 28, 28)
    auto = read_png(plot.image_grid(images, tmp_path / "auto.png", nrow=3))
    np.testing.assert_allclose(cell_centres(auto, 3), [0.0, 0.5, 1.0], atol=0.01)
    given = read_png(plot.image_grid(images, tmp_path / "given.png", nrow=3, value_range=(0, 2)))
    np.testing.assert_allclose(cell_centres(given, 3), [0.0, 0.0, 0.5], atol=0.01)


def test_image_grid_titles_add_a_band_above_each_row(rng, tmp_path):
    images = rng.random((4, 28, 28))
    plain = read_png(plot.image_grid(images, tmp_path / "plain.png", nrow=4))
    titled = read_png(plot.image_grid(images, tmp_path / "titled.png", nrow=4,
                                      titles=["0", "1", "2", "3"]))
    assert titled.shape[1] == plain.shape[1] and titled.shape[0] > plain.shape[0]


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((4, 100)), {}, r"flat images of length 100 .*784"),
    (np.zeros((2, 2, 3, 28, 28)), {}, r"expected images of shape .*got \(2, 2, 3, 28, 28\)"),
    (np.zeros((4, 2, 28, 28)), {}, r"2 channels"),
    (np.zeros((0, 28, 28)), {}, r"no images"),
    (np.zeros((4, 28, 28)), {"titles": ["a", "b"]}, r"2 titles for 4 images"),
    (np.zeros((4, 28, 28)), {"nrow": 0}, r"nrow .* positive integer"),
    (np.zeros((4, 28, 28)), {"value_range": (1, 0)}, r"lo < hi"),
    (np.zeros((4, 28, 28)), {"value_range": (0, 1, 2)}, r"value_range must be \(lo, hi\)"),
])
def test_image_grid_errors_name_the_problem(tmp_path, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot.image_grid(images, tmp_path / "g.png", **kwargs)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- curves

def test_curves_reads_both_history_forms_with_1_based_epochs():
    as_dict = plot._history_columns({"loss": [3.0, 2.0, 1.0]}, "curves")
    epochs, values = as_dict["loss"]
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_array_equal(values, [3.0, 2.0, 1.0])
    per_epoch = [{"loss": 3.0}, {"loss": 2.0, "val_loss": tg.tensor(2.5)}, {"loss": 1.0}]
    columns = plot._history_columns(per_epoch, "curves")
    np.testing.assert_array_equal(columns["loss"][0], [1, 2, 3])
    np.testing.assert_array_equal(columns["val_loss"][0], [2])  # only where it was measured
    np.testing.assert_array_equal(columns["val_loss"][1], [2.5])


def test_curves_draws_chosen_keys_on_a_log_axis(tmp_path):
    history = [{"loss": 1.0, "val_loss": 1.5, "kl": 0.1}, {"loss": 0.5, "val_loss": 0.9, "kl": 0.2}]
    path = plot.curves(history, tmp_path / "c.png", keys=["loss", "val_loss"], title="VAE",
                       logy=True)
    assert read_png(path).shape[:2] == (400, 640)  # 6.4 x 4 inches at dpi 100


@pytest.mark.parametrize("history, kwargs, error, message", [
    ({"loss": [1.0]}, {"keys": ["kl"]}, KeyError, r"no metric named 'kl'.*'loss'"),
    ({"loss": [1.0, -2.0]}, {"logy": True}, ValueError, r"logy needs positive.*'loss'.*-2"),
    ({}, {}, ValueError, r"nothing to draw"),
    ([1.0, 2.0], {}, TypeError, r"history must be a dict"),
])
def test_curves_errors_name_the_problem(tmp_path, history, kwargs, error, message):
    with pytest.raises(error, match=message):
        plot.curves(history, tmp_path / "c.png", **kwargs)


# ---------------------------------------------------------------- latent codes

@pytest.mark.parametrize("n_classes", [None, 10, 25])  # no labels, a legend, a colour bar
def test_latent_scatter_colours_by_label(rng, tmp_path, n_classes):
    labels = None if n_classes is None else rng.integers(0, n_classes, 200)
    path = plot.latent_scatter(rng.standard_normal((200, 2)), labels, tmp_path / "s.png",
                               title="codes")
    assert read_png(path).shape[:2] == (500, 600)


@pytest.mark.parametrize("codes, labels, message", [
    (np.zeros((10, 3)), None, r"codes must have shape \(N, 2\), got \(10, 3\)"),
    (np.zeros(10), None, r"codes must have shape \(N, 2\), got \(10,\)"),
    (np.zeros((10, 2)), np.zeros(9, int), r"labels must have shape \(10,\).*got \(9,\)"),
])
def test_latent_scatter_errors_name_the_problem(tmp_path, codes, labels, message):
    with pytest.raises(ValueError, match=message):
        plot.latent_scatter(codes, labels, tmp_path / "s.png")


def test_latent_manifold_uniform_grid_spans_the_square_with_z2_rising_upwards(tmp_path):
    seen = []
    plot.latent_manifold(blob_decoder(seen), tmp_path / "m.png", n=4, span=2.0, grid="uniform")
    (z,) = seen  # decoded in one batch
    assert z.shape == (16, 2) and z.dtype == np.float32
    np.testing.assert_allclose(z[:4, 0], [-2.0, -2 / 3, 2 / 3, 2.0], rtol=1e-6)  # top row: z1
    np.testing.assert_allclose(z[::4, 1], [2.0, 2 / 3, -2 / 3, -2.0], rtol=1e-6)  # z2 falls down


def test_latent_manifold_normal_grid_is_gaussian_quantiles_of_midpoints(tmp_path):
    seen = []
    path = plot.latent_manifold(blob_decoder(seen), tmp_path / "m.png", n=5)
    want = [NormalDist().inv_cdf(p) for p in (0.1, 0.3, 0.5, 0.7, 0.9)]
    np.testing.assert_allclose(seen[0][:5, 0], want, rtol=1e-6, atol=1e-7)
    pixels = read_png(path)
    assert pixels.shape[0] == pixels.shape[1]


def test_latent_manifold_accepts_a_tensor_decoder_of_any_image_layout(tmp_path):
    def decode(z):  # (k, 2) -> Tensor (k, 1, 8, 6)
        return tg.tensor(np.tile(z[:, :1, None, None], (1, 1, 8, 6)))

    pixels = read_png(plot.latent_manifold(decode, tmp_path / "m.png", n=3, image_shape=(8, 6)))
    assert pixels.shape[1] / pixels.shape[0] == pytest.approx(6 / 8, rel=0.05)


@pytest.mark.parametrize("kwargs, message", [
    ({"image_shape": (20, 20)}, r"decode returned shape \(9, 784\).*image_shape \(20, 20\)"),
    ({"grid": "polar"}, r"grid must be 'normal' or 'uniform'"),
    ({"n": 0}, r"n must be a positive integer"),
])
def test_latent_manifold_errors_name_the_problem(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot.latent_manifold(blob_decoder([]), tmp_path / "m.png", **{"n": 3, **kwargs})


# ---------------------------------------------------------------- GAN pictures

def test_density_1d_draws_callables_arrays_and_density_objects(rng, tmp_path):
    x = np.linspace(-3, 3, 40)

    class Normal:
        def log_density(self, x):
            return -0.5 * x**2 - 0.5 * np.log(2 * np.pi)

    path = plot.density_1d(x, tmp_path / "d.png", data_density=Normal(),
                           model_density=lambda x: tg.tensor(np.exp(-x**2)),
                           discriminator=np.full(40, 0.5), title="step 0")
    assert read_png(path).shape[:2] == (400, 640)


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"nothing to draw"),
    ({"data_density": np.ones(7)}, r"data_density gives shape \(7,\) on x_grid \(40,\)"),
    ({"x_grid": np.zeros((40, 2)), "samples": np.zeros(3)}, r"x_grid must have shape \(K,\)"),
    ({"samples": np.zeros(0)}, r"samples is empty"),
])
def test_density_1d_errors_name_the_problem(tmp_path, kwargs, message):
    kwargs = {"x_grid": np.linspace(-1, 1, 40), **kwargs}
    with pytest.raises(ValueError, match=message):
        plot.density_1d(path=tmp_path / "d.png", **kwargs)


def test_samples_2d_evaluates_the_log_density_once_on_the_extent_grid(rng, tmp_path):
    calls = []

    def log_density(x):
        calls.append(x)
        return Ring().log_density(x)

    path = plot.samples_2d(rng.standard_normal((50, 2)), tmp_path / "s.png",
                           data_density=log_density, extent=(-2, 2, -1, 1), modes=Ring.modes,
                           resolution=30)
    (grid,) = calls
    assert grid.shape == (900, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(grid.min(axis=0), [-2, -1])
    np.testing.assert_allclose(grid.max(axis=0), [2, 1])
    assert read_png(path).shape[:2] == (500, 550)
    plot.samples_2d(rng.standard_normal((50, 2)), tmp_path / "ring.png", data_density=Ring())


@pytest.mark.parametrize("kwargs, message", [
    ({"samples": np.zeros((5, 3))}, r"samples must have shape \(N, 2\), got \(5, 3\)"),
    ({"modes": np.zeros(4)}, r"modes must have shape \(K, 2\), got \(4,\)"),
    ({"extent": (1, -1, 0, 1)}, r"extent must be \(xmin, xmax, ymin, ymax\)"),
    ({"data_density": lambda x: np.zeros(3)}, r"data_density gives shape \(3,\)"),
    ({"data_density": lambda x: np.full(len(x), -np.inf)}, r"not finite anywhere"),
])
def test_samples_2d_errors_name_the_problem(tmp_path, kwargs, message):
    kwargs = {"samples": np.zeros((5, 2)), **kwargs}
    with pytest.raises(ValueError, match=message):
        plot.samples_2d(path=tmp_path / "s.png", **kwargs)


# ---------------------------------------------------------------- no display, no pyplot

HEADLESS_SCRIPT = """
import json, sys
import matplotlib
if sys.argv[1] != "auto":
    matplotlib.use(sys.argv[1])  # the backend a user chose before importing tinygen.plot


def chosen():  # the backend set so far, or None; calling get_backend() would resolve the choice
    try:
        return matplotlib.rcParams._get_backend_or_none()
    except AttributeError:  # matplotlib < 3.7
        backend = dict.__getitem__(matplotlib.rcParams, "backend")
        return None if backend is matplotlib.rcsetup._auto_backend_sentinel else backend


before = chosen()
import numpy as np
from tinygen import plot
path = plot.image_grid(np.zeros((4, 28, 28)), sys.argv[2])
print(json.dumps({"before": before, "after": chosen(),
                  "pyplot": "matplotlib.pyplot" in sys.modules, "path": path,
                  "get_backend": matplotlib.get_backend()}))
"""


@pytest.fixture(scope="module")
def headless(tmp_path_factory):
    """Run HEADLESS_SCRIPT with no display and no MPLBACKEND: auto backend, then one chosen."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    folder = tmp_path_factory.mktemp("headless")
    results = {}
    for backend in ("auto", "svg"):
        out = subprocess.run([sys.executable, "-c", HEADLESS_SCRIPT, backend,
                              str(folder / f"{backend}.png")],
                             env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        results[backend] = json.loads(out.stdout.splitlines()[-1])
    return results


def test_plots_work_with_no_display_and_no_mplbackend_without_importing_pyplot(headless):
    for backend in ("auto", "svg"):
        assert read_png(headless[backend]["path"]).shape[2] == 4
        assert headless[backend]["pyplot"] is False


def test_importing_and_using_plot_leaves_the_chosen_backend_alone(headless):
    assert headless["auto"]["before"] is None and headless["auto"]["after"] is None  # unresolved
    assert headless["svg"]["before"] == headless["svg"]["after"] == "svg"
    assert headless["svg"]["get_backend"] == "svg"


def test_importing_plot_keeps_matplotlib_get_backend():
    import importlib

    import matplotlib
    before = matplotlib.get_backend()
    importlib.reload(plot)
    assert matplotlib.get_backend() == before


def test_a_figure_of_your_own_is_saved_atomically_as_png(tmp_path):
    fig = plot.new_figure(3, 2)
    fig.add_subplot().hist(np.arange(10))
    path = plot.save(fig, tmp_path / "sub" / "hist.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["hist.png"]  # no temporary left
    with pytest.raises(ValueError, match="cannot write '.xyz'"):
        plot.save(fig, tmp_path / "hist.xyz")
