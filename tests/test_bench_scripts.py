"""The benchmark scripts run in quick mode and their built-in correctness checks pass.

Each bench script first asserts that the implementations it compares compute the same numbers;
timings are printed, never asserted (the machines are noisy).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _quick(script):
    env = dict(os.environ, TINYGEN_QUICK="1")
    return subprocess.run([sys.executable, str(BENCH / script)], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("script", [
    "engine_overhead.py",
    "conv_numpy.py",
    "conv.py",
    "conv_thin.py",
    "fused_ops.py",
    "dcgan_step.py",
    "first_step.py",
    "dcgan_memory.py",
    "autoencoders.py",
    "vae.py",
    "gan_toy.py",
    "dcgan.py",
    "gan.py",
    "dcgan_recipe.py",
    "concurrent_runs.py",
])
def test_bench_script_runs_in_quick_mode(script):
    result = _quick(script)
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout


def test_the_numba_and_numpy_backends_train_a_dcgan_to_the_same_parameters():
    # issue 25's correctness target, 5 steps; float64, where only the order of sums differs
    result = _quick("backends_same_numbers.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "float64: numba vs numpy" in result.stdout and ": ok (bound" in result.stdout


def test_the_step_profile_runs_in_quick_mode():
    result = _quick("profile_step.py")
    assert result.returncode == 0, result.stderr
    assert "by tottime" in result.stdout and "by cumtime" in result.stdout


def test_torch_recipe_screen_runs_in_quick_mode_with_its_classifier_check():
    pytest.importorskip("torch")
    env = dict(os.environ, TINYGEN_QUICK="1")
    result = subprocess.run(
        [sys.executable, str(BENCH / "dcgan_recipe_torch.py"), "--variants", "baseline",
         "emawarm+smooth+sn+dropout+wide+lr2x+b32"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "check: the torch copy of tinygen's classifier gives its features" in result.stdout
    for kind in ("live", "ema", "ema+bn"):
        assert f" {kind} " in result.stdout


def test_torch_recipe_screen_trains_the_architectures_by_tinygens_minutes():
    pytest.importorskip("torch")
    env = dict(os.environ, TINYGEN_QUICK="1")
    result = subprocess.run(
        [sys.executable, str(BENCH / "dcgan_recipe_torch.py"), "--variants", "deep+infolr",
         "infogan+lr4x+b128+emawarm", "--minutes", "1", "2", "--ms-per-step", "500"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for variant in ("deep+infolr", "infogan+lr4x+b128+emawarm"):
        for mark, steps in (("1 min", 4), ("2 min", 8)):  # quick: 4 steps a minute
            assert f"{variant:28s} seed 0    {mark} ({steps:5d} steps)" in result.stdout


@pytest.mark.parametrize("architecture", ["classic", "deep", "infogan"])
def test_the_torch_copies_of_the_architectures_compute_what_tinygens_do(architecture):
    """bench/dcgan_recipe_torch.py's networks take tinygen's state_dict as it is (strict) and
    give the same images and logits, so its screen measures tinygen's models."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(BENCH))
    try:
        import dcgan_recipe_torch
    finally:
        sys.path.remove(str(BENCH))
    import numpy as np

    import tinygen as tg
    from tinygen import models
    tg.manual_seed(0)
    ours = models.dcgan(100, architecture=architecture)
    variant = "baseline" if architecture == "classic" else architecture
    G, D = dcgan_recipe_torch.build(torch, dcgan_recipe_torch.options(variant))
    G.load_state_dict({k: torch.from_numpy(np.array(v))
                       for k, v in ours.generator.state_dict().items()})
    D.load_state_dict({k: torch.from_numpy(np.array(v))
                       for k, v in ours.discriminator.state_dict().items()})
    ours.eval()
    G.eval()
    D.eval()
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    with tg.no_grad(), torch.no_grad():
        images = ours.generator(tg.tensor(z)).numpy()
        np.testing.assert_allclose(G(torch.from_numpy(z)).numpy(), images, rtol=1e-4, atol=1e-5)
        logits = ours.discriminator(tg.tensor(images)).numpy()
        np.testing.assert_allclose(D(torch.from_numpy(images)).numpy(), logits, rtol=1e-4,
                                   atol=1e-5)
