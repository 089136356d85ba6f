"""What every benchmark prints about the machine it ran on (shared by bench/*.py).

Importing it also makes Ctrl-C end a bench with one line: benches do not checkpoint, because a
bench times one run from the start in interleaved blocks, and a resumed one would mix the
machine's states of two sessions into one ratio.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from tinygen.interrupt import exit_quietly_on_ctrl_c

STOPPED = "bench interrupted (Ctrl-C): nothing saved; a bench times one run from the start"
exit_quietly_on_ctrl_c(STOPPED)


def machine_report(backend_names, load_start, torch=None, compares_with_torch=True):
    """Lines on CPU count and load, numba's and torch's threads, and thread-related settings.

    backend_names: the tinygen backends timed; load_start: os.getloadavg()[0] before timing;
    torch: the torch module, or None when it is not installed; compares_with_torch=False for a
    bench with no torch baseline (then nothing is said about torch).
    """
    lines = [f"CPU count {os.cpu_count()}; load average (1 min) {load_start:.2f} at the start, "
             f"{os.getloadavg()[0]:.2f} after the timings (other work may share this machine)"]
    threads = []
    if "numba" in backend_names:
        import numba
        threads.append(f"numba {numba.__version__}: numba.get_num_threads() = "
                       f"{numba.get_num_threads()}, numba.threading_layer() = "
                       f"{numba.threading_layer()!r}")
    if torch is not None:
        threads.append(f"torch {torch.__version__}: torch.get_num_threads() = "
                       f"{torch.get_num_threads()}")
    elif compares_with_torch:
        threads.append("torch not installed: no baseline")
    if threads:
        lines.append("; ".join(threads))
    settings = {key: os.environ[key] for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                 "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                 "NUMBA_THREADING_LAYER") if key in os.environ}
    if settings:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    return lines


def prepare_torch_device(parser, device, torch):
    """Check that torch can run the baseline on `device` ('cpu' or 'cuda'), before any slow work.

    For cuda: exit with a one-line error (status 2) when torch finds no GPU, and switch TF32 off
    in cuDNN and cuBLAS, so that the GPU computes in full float32 as tinygen does (TF32 keeps 10
    mantissa bits: about 1e-3 relative error, beyond the benches' 1e-4 checks)."""
    if device != "cuda":
        return
    if torch is None:
        reason = "torch is not installed"
    elif not torch.cuda.is_available():
        reason = (f"torch {torch.__version__} finds no CUDA GPU "
                  "(torch.cuda.is_available() is False)")
    else:
        reason = None
    if reason:
        parser.exit(2, f"{parser.prog}: error: --torch-device cuda: {reason}\n")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def torch_device_report(device, torch, how_timed):
    """One line saying where the torch baseline runs, and (on a GPU) how it is timed there."""
    if device == "cpu":
        return f"torch baseline device: cpu ({torch.get_num_threads()} threads)"
    cudnn = torch.backends.cudnn
    return (f"torch baseline device: cuda, {torch.cuda.get_device_name()} (torch CUDA "
            f"{torch.version.cuda}, cuDNN {cudnn.version()}, enabled {cudnn.enabled}, "
            f"benchmark {cudnn.benchmark}, TF32 {cudnn.allow_tf32}); {how_timed}")


def interleaved_medians(calls, blocks, repeats):
    """{name: median seconds} of calls {name: call with no arguments}, timed in `blocks` rounds
    that take each call `repeats` times in turn (the machine's speed drifts: interleaving lets
    every call see the same drift, so their ratio holds)."""
    times = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def json_from_subprocess(code, what, env=None, timeout=1800):
    """Run `python -c code` in a fresh process and return the JSON its last line prints; exit
    with its stderr, naming `what`, if it fails."""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
