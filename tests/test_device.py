"""Tensors on a device, checked without a GPU: "cuda" arrays are the strict stand-in of
tests/strict_device.py, which raises on any silent copy to the host. Every op's forward, first
and second derivatives must give the CPU's numbers there; errors name what is wrong."""
import sys
from pathlib import Path

import numpy as np
import pytest
from strict_device import STRICT, HostCopyError, StrictArray
from test_ops_gradients import CASES

import tinygen as tg
from tinygen import cli, devices


@pytest.fixture
def cuda():
    """'cuda' tensors are StrictArrays inside the test."""
    with devices.use_library("cuda", STRICT):
        yield "cuda"


def _derivatives(fn, arrays, device):
    """fn's value, its gradient and the gradient of the gradient's sum of squares, as host
    arrays: the forward, backward and double backward of every op fn uses."""
    inputs = [tg.tensor(a, dtype="float64", requires_grad=True, device=device) for a in arrays]
    y = fn(*inputs)
    weights = tg.tensor(np.linspace(-1, 1, y.numel()).reshape(y.shape), dtype="float64",
                        device=device)
    grads = tg.grad((y * weights).sum(), inputs, create_graph=True)
    squares = sum((g * g).sum() for g in grads)
    second = []  # none where the gradient is a constant (a linear fn)
    if squares.requires_grad:
        second = tg.grad(squares, inputs, allow_unused=True)
    results = [y] + list(grads) + [s for s in second if s is not None]
    for t in results:
        assert t.device == devices.device(device), (t.device, device)
    return [t.cpu().numpy() for t in results]


@pytest.mark.parametrize("fn, arrays", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_op_gives_the_cpus_derivatives_on_the_device(cuda, fn, arrays):
    expected = _derivatives(fn, arrays, "cpu")
    got = _derivatives(fn, arrays, cuda)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def _labels(device):
    return tg.tensor([2, 0, 1], device=device)


# The layers' functions and the losses, beyond the primitive ops above (float64)
F = tg.nn.functional
LAYER_CASES = [
    ("conv2d", lambda x, w: F.conv2d(x, w, stride=2, padding=1),
     (np.random.default_rng(0).standard_normal((2, 3, 5, 5)),
      np.random.default_rng(1).standard_normal((4, 3, 3, 3)))),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
     (np.random.default_rng(2).standard_normal((2, 3, 3, 3)),
      np.random.default_rng(3).standard_normal((3, 2, 4, 4)))),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), (np.random.default_rng(4).random((1, 2, 4, 4)),)),
    ("avg_pool2d_overlapping", lambda x: F.avg_pool2d(x, 3, stride=1),
     (np.random.default_rng(5).random((1, 2, 4, 4)),)),
    ("upsample_nearest", lambda x: F.interpolate(x, 2),
     (np.random.default_rng(6).random((1, 2, 2, 3)),)),
    ("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     (np.random.default_rng(7).standard_normal((4, 3, 2, 2)), np.ones(3), np.zeros(3))),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), (np.random.default_rng(8).standard_normal(7),)),
    ("linear", lambda x, w, b: F.linear(x, w, b), tuple(np.random.default_rng(9).standard_normal(s)
                                                     for s in ((2, 3), (4, 3), (4,)))),
    ("mse", lambda a, b: F.mse_loss(a, b), (np.arange(6.0), np.ones(6))),
    ("bce_with_logits", lambda a, b: F.binary_cross_entropy_with_logits(a, b),
     (np.linspace(-3, 3, 6), np.linspace(0, 1, 6))),
    ("cross_entropy", lambda a: F.cross_entropy(a, _labels(a.device)),
     (np.random.default_rng(10).standard_normal((3, 4)),)),
    ("cross_entropy_host_labels", lambda a: F.cross_entropy(a, [2, 0, 1]),
     (np.random.default_rng(11).standard_normal((3, 4)),)),
    ("kl_normal", lambda mu, logvar: F.kl_normal(mu, logvar).sum(),
     (np.random.default_rng(12).standard_normal((2, 3)),
      np.random.default_rng(13).standard_normal((2, 3)))),
]


@pytest.mark.parametrize("fn, arrays", [c[1:] for c in LAYER_CASES],
                         ids=[c[0] for c in LAYER_CASES])
def test_every_layer_and_loss_gives_the_cpus_derivatives_on_the_device(cuda, fn, arrays):
    with tg.backend.use("numpy"):  # the stand-in runs the numpy kernels: compare like with like
        expected = _derivatives(fn, arrays, "cpu")
    got = _derivatives(fn, arrays, cuda)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_the_stand_in_refuses_host_copies(cuda):
    x = tg.randn(3, device=cuda)
    assert isinstance(x.data, StrictArray)
    with pytest.raises(HostCopyError):
        np.asarray(x.data)
    with pytest.raises(HostCopyError):
        np.add(x.data, np.ones(3))  # a host array mixed in


# ---- the Tensor's device API ------------------------------------------------------------------
def test_the_default_device_is_the_cpu():
    assert tg.tensor([1.0]).device == devices.CPU
    assert str(tg.zeros(2).device) == "cpu"


def test_to_cpu_and_back_keeps_the_values_and_the_gradient_flows_home(cuda):
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.to(cuda)
    assert str(y.device) == "cuda:0" and isinstance(y.data, StrictArray)
    assert y.to("cuda:0") is y and x.cpu() is x
    (y * y).sum().backward()  # the gradient comes back to the host leaf
    assert x.grad.device == devices.CPU
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())


def test_to_takes_a_dtype_and_a_device_together(cuda):
    y = tg.tensor([1.5]).to(cuda, tg.float64)
    assert y.dtype == np.float64 and y.device.type == "cuda"


def test_creation_functions_take_device(cuda):
    tg.manual_seed(3)
    on_host = tg.randn(2, 3)
    tg.manual_seed(3)
    on_device = tg.randn(2, 3, device=cuda)  # the same draws, wherever they go
    np.testing.assert_array_equal(on_device.cpu().numpy(), on_host.numpy())
    for made in (tg.zeros(2, device=cuda), tg.ones(2, device=cuda), tg.rand(2, device=cuda),
                 tg.arange(3, device=cuda), tg.tensor([1, 2], device=cuda),
                 tg.zeros_like(on_device), tg.ones_like(on_device)):
        assert made.device.type == "cuda", made


def test_numpy_on_a_device_tensor_names_cpu(cuda):
    x = tg.ones(2, device=cuda)
    with pytest.raises(TypeError, match=r"cuda:0.*\.cpu\(\)"):
        x.numpy()
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        np.asarray(x)


def test_item_printing_and_the_graph_work_on_the_device(cuda):
    x = tg.tensor([2.0, 3.0], device=cuda, requires_grad=True)
    y = (x * x).sum()
    assert y.item() == 13.0
    assert "device='cuda:0'" in repr(y) and "13." in repr(y)
    assert "Sum" in tg.graph(y)


def test_an_op_that_mixes_devices_names_both(cuda):
    a = tg.ones(2, device=cuda)
    b = tg.ones(2)
    for mixed in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: tg.where(b > 0, a, a)):
        with pytest.raises(RuntimeError, match=r"same device.*(cuda:0 and cpu|cpu and cuda:0)"):
            mixed()
    assert (a + 1).device.type == "cuda"  # a number goes where the tensor is


def test_a_device_without_its_library_is_a_one_line_error():
    # CI has no CuPy: asking for "cuda" says what is missing; on a GPU machine it just works
    if devices.is_available("cuda"):
        assert tg.ones(2, device="cuda").device.type == "cuda"
        assert devices.why_unavailable("cuda") == ""
        return
    with pytest.raises(devices.DeviceUnavailable, match=r"'cuda' is not available here: .*CuPy"):
        tg.ones(2, device="cuda")
    assert "CuPy" in devices.why_unavailable("cuda")


def test_device_names_are_checked():
    assert devices.device("cuda") == devices.device("cuda:0")
    for bad in ("gpu", "cuda:1", "cpu:3"):
        with pytest.raises(ValueError, match="device"):
            devices.device(bad)


# ---- whole training steps: the same numbers as the CPU, and nothing falls back to the host ------
def _gan_run(device, steps=2):
    """A DCGAN (with G's moving average) after `steps` training steps on 28x28 images."""
    tg.manual_seed(0)
    gan = tg.models.dcgan(latent_dim=8, ema_decay=0.5)
    if device != "cpu":
        gan.to(device)
    optimizers = tg.models.gan_optimizers(gan, lr=1e-3)
    images = np.random.default_rng(0).random((steps, 4, 1, 28, 28)).astype(np.float32) * 2 - 1
    metrics = None
    for batch in images:
        metrics = gan.train_step(tg.tensor(batch, device=device), optimizers)
    return gan, optimizers, metrics


def _assert_same_state(a, b, rtol=1e-5):
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert isinstance(state_b[key], np.ndarray), key  # state_dicts hold host arrays
        np.testing.assert_allclose(state_b[key], state_a[key], rtol=rtol, atol=1e-6, err_msg=key)


def test_a_dcgan_step_on_the_device_gives_the_cpus_parameters(cuda):
    with tg.backend.use("numpy"):  # the kernels the stand-in runs
        on_cpu, _, cpu_metrics = _gan_run("cpu")
    on_device, optimizers, metrics = _gan_run(cuda)
    for p in on_device.parameters():
        assert isinstance(p.data, StrictArray)
    for state in optimizers["generator"].state.values():
        assert isinstance(state["exp_avg"], StrictArray)  # Adam's moments live there too
    _assert_same_state(on_cpu, on_device)
    assert tg.train._as_floats(metrics).keys() == tg.train._as_floats(cpu_metrics).keys()
    samples = on_device.sample(3)  # from the moving average
    assert samples.device.type == "cuda" and samples.shape == (3, 1, 28, 28)


def test_a_vae_step_on_the_device_gives_the_cpus_parameters(cuda):
    runs = []
    for device in ("cpu", cuda):
        tg.manual_seed(0)
        vae = tg.models.conv_vae(latent_dim=4).to(device)
        optimizer = tg.optim.Adam(vae.parameters(), lr=1e-3)
        x = tg.tensor(np.random.default_rng(1).random((3, 784)), device=device)
        for _ in range(2):
            optimizer.zero_grad()
            loss, _ = vae.loss(x)
            loss.backward()
            optimizer.step()
        runs.append(vae)
    _assert_same_state(runs[0], runs[1], rtol=1e-4)


def test_sgd_adam_and_the_moving_average_update_in_place_on_the_device(cuda):
    results = []
    for device in ("cpu", cuda):
        tg.manual_seed(1)
        model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.BatchNorm1d(4)).to(device)
        average = tg.ema.ExponentialMovingAverage(model, decay=0.8, warmup=True)
        x = tg.tensor([[1.0, 2, 3], [0, 1, -1], [2, 0, 1]], device=device)
        with tg.backend.use("numpy"):  # NumPy's passes on both devices (numba's round otherwise)
            for optimizer in (tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                              tg.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.01)):
                for _ in range(2):
                    optimizer.zero_grad()
                    (model(x) * x[:, :1]).sum().backward()
                    optimizer.step()
                    average.update(model)
        results.append((model, average))
    _assert_same_state(results[0][0], results[1][0])
    _assert_same_state(results[0][1], results[1][1])


def test_checkpoints_hold_host_arrays_and_load_onto_the_models_device(cuda, tmp_path):
    gan, optimizers, _ = _gan_run(cuda, steps=1)
    path = tmp_path / "gan.npz"
    tg.save({"model": gan.state_dict(), "optim": optimizers["generator"].state_dict()}, path)
    state = tg.load(path)
    fresh = tg.models.dcgan(latent_dim=8, ema_decay=0.5).to(cuda)
    fresh.load_state_dict(state["model"])
    _assert_same_state(gan, fresh, rtol=0)
    assert all(isinstance(p.data, StrictArray) for p in fresh.parameters())
    adam = tg.models.gan_optimizers(fresh)["generator"]
    adam.load_state_dict(state["optim"])  # Adam's moments go to each parameter's device
    for moments in adam.state.values():
        assert isinstance(moments["exp_avg_sq"], StrictArray)
    on_cpu = tg.models.dcgan(latent_dim=8, ema_decay=0.5)
    on_cpu.load_state_dict(fresh.state_dict())  # and back to a CPU model
    _assert_same_state(gan, on_cpu, rtol=0)


def test_fit_checkpoints_and_resumes_on_the_device(cuda, tmp_path):
    from tinygen.data import DataLoader
    from tinygen.train import fit

    data = np.random.default_rng(2).random((24, 6)).astype(np.float32)

    def setup():
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(6, 3), tg.nn.Dropout(0.2), tg.nn.Linear(3, 6))
        model.to(cuda)
        model.loss = lambda x: (((model(x) - x) ** 2).mean(), {})
        optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)
        return model, optimizer, DataLoader(data, 8, seed=1, device=cuda)

    assert next(iter(setup()[2])).device.type == "cuda"  # the loader's batches go there
    straight, optimizer, loader = setup()
    fit(straight, loader, optimizer, epochs=3, progress=False)
    path = str(tmp_path / "run.npz")
    first, optimizer, loader = setup()
    fit(first, loader, optimizer, epochs=1, checkpoint=path, progress=False)
    resumed, optimizer, loader = setup()
    fit(resumed, loader, optimizer, epochs=3, resume=path, progress=False)
    assert all(isinstance(p.data, StrictArray) for p in resumed.parameters())
    _assert_same_state(straight, resumed)


# ---- the command line ---------------------------------------------------------------------------
# dcgan (InfoGAN's network) trains as dcgan-classic does, ~3x slower on the stand-in: left out
CLI_RECIPES = sorted(set(cli.RECIPES) - {"dcgan"})


@pytest.mark.parametrize("name", CLI_RECIPES)
def test_every_recipe_trains_on_the_device_from_the_command_line(cuda, name, tmp_path, capsys):
    out = tmp_path / name
    assert cli.main(["train", name, "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress", "--device", cuda]) == 0
    assert "on cuda:0 (strict stand-in arrays, numpy kernels)" in capsys.readouterr().out
    state = tg.load(out / "checkpoint.npz")
    assert all(isinstance(v, np.ndarray) for v in state["model"].values())


def test_sample_and_score_run_on_the_device(cuda, tmp_path, capsys):
    out = tmp_path / "gan"
    assert cli.main(["train", "gan", "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress"]) == 0  # trained on the CPU, sampled on the device
    samples = tmp_path / "samples.npz"
    assert cli.main(["sample", str(out / "checkpoint.npz"), "--n", "150", "--out", str(samples),
                     "--device", cuda]) == 0
    with np.load(samples) as saved:
        assert saved["samples"].shape == (150, 1, 28, 28)
    capsys.readouterr()
    assert cli.main(["score", str(samples), "--data", "bundled", "--device", cuda]) == 0
    printed = capsys.readouterr().out
    assert "FID" in printed and "MNIST score" in printed


def test_device_cuda_without_a_gpu_is_a_one_line_error(tmp_path, capsys):
    if devices.is_available("cuda"):
        return  # a GPU machine runs it (gpu_check.sh does)
    for argv in (["train", "ae", "--quick", "--data", "bundled", "--out", str(tmp_path / "a")],
                 ["sample", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "s.png")],
                 ["score", str(tmp_path / "missing.npz")]):
        capsys.readouterr()
        assert cli.main(argv + ["--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--device cuda: not available here: CuPy" in err, err


def test_info_lists_the_devices(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "  cpu    available" in printed
    assert "  cuda   " in printed


# ---- the GPU benches' own logic, on the stand-in ----------------------------------------------
def test_the_same_numbers_bench_runs_on_the_stand_in(cuda, monkeypatch, capsys):
    bench = str(Path(__file__).resolve().parent.parent / "bench")
    monkeypatch.syspath_prepend(bench)
    import device_same_numbers

    # the stand-in has one way to run convolutions (numpy's), not the cuda backend's two
    monkeypatch.setattr(device_same_numbers, "DEVICE_CONV_METHODS", (None,))
    monkeypatch.setattr(sys, "argv", ["device_same_numbers.py", "--steps", "2", "--batch", "4"])
    assert device_same_numbers.main() == 0
    printed = capsys.readouterr().out
    assert "2 steps: gpu:None vs numba on the CPU: relative difference of the parameters" in printed
    assert ": ok (worst tensor" in printed


def test_cupy_without_a_gpu_is_named_as_such(monkeypatch):
    """CuPy installed on a machine with no GPU (or no driver): the reason says so."""
    import types

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    runtime = types.SimpleNamespace(getDeviceCount=no_device)
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(devices, "_libraries", {})  # forget what was found before
    assert devices.why_unavailable("cuda") == (
        "CuPy finds no usable GPU (cudaErrorNoDevice: no CUDA-capable device is detected)")
    with pytest.raises(devices.DeviceUnavailable, match="'cuda' is not available here: CuPy "
                                                        "finds no usable GPU"):
        tg.zeros(1, device="cuda")


def test_a_run_resumes_on_the_device_from_the_command_line(cuda, tmp_path):
    out = tmp_path / "ae"
    common = ["--quick", "--data", "bundled", "--no-progress", "--device", cuda]
    assert cli.main(["train", "ae", "--epochs", "1", "--out", str(out)] + common) == 0
    assert cli.main(["train", "ae", "--epochs", "2", "--resume", str(out / "checkpoint.npz")]
                    + common) == 0
    state = tg.load(out / "checkpoint.npz")
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2


def test_the_resume_command_a_run_prints_names_its_device():
    from tinygen.cli.train import _resume_command

    on_gpu = _resume_command("dcgan", "runs/a b/checkpoint.npz", devices.device("cuda"))
    assert on_gpu == "tinygen train dcgan --resume 'runs/a b/checkpoint.npz' --device cuda"
    assert _resume_command("ae", "c.npz", devices.CPU) == "tinygen train ae --resume c.npz"
