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
])
def test_bench_script_runs_in_quick_mode(script):
    env = dict(os.environ, TINYGEN_QUICK="1")
    result = subprocess.run(
        [sys.executable, str(BENCH / script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout


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
