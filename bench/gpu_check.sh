#!/usr/bin/env bash
# The GPU check of tinygen's cuda backend in one command, from the repository root:
#
#     bash bench/gpu_check.sh
#
# Written for a machine with an NVIDIA GPU (an H200) that has numba, numba-cuda, numpy, torch (a
# CUDA build) and pytest installed, no internet, and tinygen not installed: every step runs this
# checkout through PYTHONPATH. Its earlier six steps took 144 s on an H200 (2026-11-28); the
# device-tensor steps (2026-12-07) have not run on a GPU yet. Each step runs under `timeout` and
# no step starts or runs past DEADLINE seconds, so the whole script ends within 5 minutes. A failing step does not stop the
# next one. At the end one summary line per step (ok / FAILED / TIMED OUT / SKIPPED, with its
# seconds); the exit status is 1 when any step did not pass, 0 otherwise. Everything printed also
# goes to "${OUT:-/tmp}/gpu_check.log".
#
# The steps:
#   1. environment: nvidia-smi -L, the versions of python, numpy, numba, numba-cuda, cupy, torch
#      (its CUDA and cuDNN), pytest, hypothesis; numba.cuda.is_available() and a tiny kernel
#      compiled and run with numba.cuda (a missing libNVVM shows up here, not in a traceback later);
#      torch.cuda.is_available(); tinygen.backend.available() and tinygen.devices' answer for
#      "cuda" (CuPy). Fails when numba, CuPy or torch sees no GPU.
#   2. pytest -q tests/test_cuda_conv.py tests/test_cuda_fused.py tests/test_backends.py
#      tests/test_device.py. The first two run the kernels in numba's CUDA *simulator*, in a child
#      process started with NUMBA_ENABLE_CUDASIM=1, so they pass on the CPU whether or not a GPU is
#      here; test_device.py runs device tensors on the strict stand-in (tests/strict_device.py)
#      and, here, its GPU branches (tensors on "cuda", --device cuda accepted).
#   3. the cuda kernels on the real GPU: tests/test_cuda_conv.py's case grid against numpy_conv,
#      on host arrays (the copying path) and on device arrays (CuPy) by both methods (im2col with
#      cuBLAS, implicit_gemm), the fused batch-norm and leaky-relu kernels on device arrays against
#      numba_fused's, and gradcheck of conv2d and conv_transpose2d with the cuda backend in use.
#   4. python bench/conv.py --torch-device cuda --device cuda --batch 64 --blocks 5
#      --no-cold-start: the kernels on the four DCGAN layers, on device arrays per method, beside
#      cuDNN (target: forward + both gradients within 3x cuDNN on D2 and G1).
#   5. python bench/dcgan_step.py --torch-device cuda --device cuda --batch 64: one DCGAN training
#      step per backend and on device tensors per method, losses checked, timed against torch on
#      the GPU (target: the device step at least 3x faster than numba on this machine's CPU);
#   6. the same at --batch 256 (target: at least 10x).
#   7. python bench/device_same_numbers.py: the parameters after 5 DCGAN steps on the GPU against
#      numba's on the CPU (target: within 1e-4 relative).
#   8. python bench/device_train.py: `tinygen train dcgan --device cuda` on the full MNIST (from
#      TINYGEN_DATA, else ../shared/data/mnist or shared/data/mnist beside this checkout), then
#      sample 10,000 and score them on the GPU (targets: each epoch at most 15 s; FID and MNIST
#      score within seed noise of the CPU runs).
# numba-cuda 0.30.4 cannot compile a kernel with numpy 2.5 (it looks up np.row_stack, which numpy
# 2.5 removed): step 1 then reports the error and the cuda backend is unavailable. That machine's
# image had numpy 2.5.2; the check passed with numpy 2.4.6 installed over it from a carried wheel
# (pip install --target /tmp/site, PYTHONPATH=/tmp/site; see the device tool's README).
# NUMBA_ENABLE_CUDASIM is unset for every step: steps 3-8 must run on the GPU (step 2's tests set
# it for their own child processes). PYTHON=... chooses the interpreter (default: python, else
# python3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1  # through the pipe to tee, output of a step cut short by timeout too
unset NUMBA_ENABLE_CUDASIM
if [[ -z "${PYTHON:-}" ]]; then
    if command -v python >/dev/null 2>&1; then
        PYTHON=python
    else
        PYTHON=python3
    fi
fi
LOG_DIR=${OUT:-/tmp}
LOG="$LOG_DIR/gpu_check.log"
DEADLINE=285  # seconds after the start; leaves room under 5 minutes for the summary
KILL_AFTER=5  # seconds between timeout's TERM and its KILL, for a process that ignores TERM

SUMMARY=()
FAILED=0

# run_step NAME LIMIT COMMAND...: COMMAND under timeout, at most LIMIT seconds and never past
# DEADLINE; records a summary line and counts the failure, never stops the script.
run_step() {
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - SECONDS - KILL_AFTER))
    if ((left < limit)); then
        limit=$left
    fi
    # The command as it runs, with an inline script (python -c) shown by its name only.
    local shown="" arg
    for arg in "$@"; do
        if [[ $arg == *$'\n'* ]]; then
            arg="<the step's inline script in bench/gpu_check.sh>"
        fi
        shown+=" $arg"
    done
    echo
    if ((limit < 10)); then
        echo "==== $name: not started, $((DEADLINE - SECONDS)) s left before the deadline"
        echo "\$$shown"
        SUMMARY+=("$(printf '%-34s SKIPPED (no time left)' "$name")")
        FAILED=$((FAILED + 1))
        return
    fi
    echo "==== $name (limit ${limit} s)"
    echo "\$$shown"
    local start=$SECONDS
    timeout --kill-after="$KILL_AFTER" "$limit" "$@"
    local status=$?
    local took=$((SECONDS - start))
    local result
    if ((status == 0)); then
        result="ok"
    elif ((status == 124 || status == 137)); then
        result="TIMED OUT (limit ${limit} s)"
        FAILED=$((FAILED + 1))
    else
        result="FAILED (exit status $status)"
        FAILED=$((FAILED + 1))
    fi
    SUMMARY+=("$(printf '%-34s %-40s %4d s' "$name" "$result" "$took")")
    echo "---- $name: $result, $took s"
}

# Step 1. Each import is guarded: this step reports what is missing rather than stopping there.
read -r -d '' ENVIRONMENT_PY <<'EOF'
import importlib.metadata
import shutil
import subprocess
import sys
import warnings

# A one-block launch is meant here: numba's low-occupancy warning would only be noise.
warnings.filterwarnings("ignore", message="Grid size")

print("python", sys.version.split()[0], sys.executable)
if shutil.which("nvidia-smi"):
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        print(listed.stdout.strip() or listed.stderr.strip())
    except subprocess.TimeoutExpired:
        print("nvidia-smi -L: no answer in 20 s")
else:
    print("nvidia-smi: not found")
for dist in ("numpy", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "torch", "pytest",
             "hypothesis"):
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    print(f"  {dist:12}{version}")

problems = []
try:
    import numpy as np
    from numba import cuda
    numba_gpu = cuda.is_available()
    print("numba.cuda.is_available():", numba_gpu)
    if numba_gpu:
        device = cuda.get_current_device()
        print(f"  numba device: {device.name}, compute capability {device.compute_capability}")

        @cuda.jit
        def add_one(a):
            i = cuda.grid(1)
            if i < a.size:
                a[i] += 1

        a = cuda.to_device(np.zeros(64, dtype=np.float32))
        add_one[1, 64](a)
        print("  a numba.cuda kernel compiles and runs:", bool((a.copy_to_host() == 1).all()))
    else:
        problems.append("numba.cuda.is_available() is False")
except Exception as error:  # report every failure, keep going to the next question
    problems.append(f"numba.cuda: {type(error).__name__}: {error}")

try:
    import torch
    print(f"torch CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"torch.cuda.is_available(): {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        print("  torch device:", torch.cuda.get_device_name())
    else:
        problems.append("torch.cuda.is_available() is False")
except Exception as error:
    problems.append(f"torch: {type(error).__name__}: {error}")

try:
    import tinygen
    from tinygen import kernels
    print(f"tinygen from {tinygen.__file__}")
    print(f"  backends available: {tinygen.backend.available()}, cuda simulated: "
          f"{kernels.is_simulated()}, default: {tinygen.backend.current()}")
    why_not = tinygen.devices.why_unavailable("cuda")
    print(f"  device cuda (CuPy arrays): {'available' if not why_not else why_not}")
    if why_not:
        problems.append(f"tinygen.devices: cuda not available: {why_not}")
except Exception as error:
    problems.append(f"tinygen: {type(error).__name__}: {error}")

for problem in problems:
    print("PROBLEM:", problem)
sys.exit(1 if problems else 0)
EOF

# Step 3. The case grid and the gradcheck of tests/test_cuda_conv.py, on the GPU.
read -r -d '' KERNELS_ON_GPU_PY <<'EOF'
import sys

sys.path.insert(0, "tests")
import tinygen as tg
from tinygen import kernels

if kernels.is_simulated():
    sys.exit("numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM): not a GPU check")
try:
    cuda_conv = kernels.load("cuda")
except kernels.BackendUnavailable as reason:
    sys.exit(f"the cuda backend cannot run here: {reason}")
from tinygen.kernels import numpy_conv

import numpy as np

import test_cuda_conv as cases  # the grid and the helpers of the simulator test
from tinygen.kernels import numba_fused


class OnDevice:
    """cuda_conv's kernels called on CuPy copies of the inputs by one method; results to host."""

    def __init__(self, method):
        self.method, self.TILE = method, cuda_conv.TILE

    def __getattr__(self, name):
        kernel = getattr(cuda_conv, name)

        def call(*args):
            cuda_conv.use_conv_method(self.method)
            moved = [tg.devices.to_device(a, "cuda") if isinstance(a, np.ndarray) else a
                     for a in args]
            result = kernel(*moved)
            assert tg.devices.is_device_array(result), f"{name} returned {type(result)}"
            return tg.devices.to_host(result)
        return call


def compare_fused(failures):
    """The fused kernels on device arrays against numba_fused's, float32 and float64."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        for shape in ((37, 5), (6, 3, 7, 9)):
            x, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
            c = shape[1]
            weight, bias = (rng.standard_normal(c).astype(dtype) for _ in range(2))
            on = [tg.devices.to_device(a, "cuda") for a in (x, g, weight, bias)]
            got = cuda_conv.batch_norm_train(on[0], on[2], on[3], 1e-5)
            want = numba_fused.batch_norm_train(x, weight, bias, 1e-5)
            got_back = cuda_conv.batch_norm_train_backward(on[1], on[0], got[1], got[2], on[2],
                                                           1e-5)
            want_back = numba_fused.batch_norm_train_backward(g, x, want[1], want[2], weight,
                                                              1e-5)
            pairs = list(zip(got, want)) + list(zip(got_back, want_back)) + [
                (cuda_conv.leaky_relu(on[0], 0.2), numba_fused.leaky_relu(x, 0.2)),
                (cuda_conv.leaky_relu_backward(on[1], on[0], 0.2),
                 numba_fused.leaky_relu_backward(g, x, 0.2)),
                (cuda_conv.scale_shift(on[0], on[2], on[3]),
                 numba_fused.scale_shift(x, weight, bias))]
            rtol = 1e-4 if dtype == np.float32 else 1e-10
            for i, (a, b) in enumerate(pairs):
                try:
                    np.testing.assert_allclose(tg.devices.to_host(a), b, rtol=rtol, atol=rtol)
                except AssertionError as error:
                    failures.append(f"fused output {i}, {shape} {dtype.__name__}: {error}")


failures = []
for case in cases.GRID:
    failures += cases._compare_with_numpy(cuda_conv, numpy_conv, case)
    for method in cuda_conv.CONV_METHODS:
        failures += cases._compare_with_numpy(OnDevice(method), numpy_conv, case)
compare_fused(failures)
try:
    cases._gradcheck_ops_on_cuda(tg)
except AssertionError as error:  # GradcheckError is an AssertionError
    failures.append(f"gradcheck on the cuda backend: {error}")
for failure in failures:
    print(failure)
print(f"{len(cases.GRID)} cases x 3 kernels vs numpy_conv at TILE={cuda_conv.TILE}, on host "
      f"arrays and on device arrays by {', '.join(cuda_conv.CONV_METHODS)}; the fused kernels on "
      f"device arrays vs numba_fused; gradcheck of conv2d and conv_transpose2d on the cuda "
      f"backend: {len(failures)} failures")
sys.exit(1 if failures else 0)
EOF

# If hypothesis is missing, tests/conftest.py (which imports it to set hypothesis's profile, and
# defines an rng fixture that these two test files do not use) cannot load: skip it rather than
# fail the collection.
PYTEST_ARGS=(-q -p no:cacheprovider)
# The full MNIST for step 8: TINYGEN_DATA, else the shared folder beside or inside this checkout.
MNIST=${TINYGEN_DATA:-}
for candidate in "$ROOT/../shared/data/mnist" "$ROOT/shared/data/mnist"; do
    if [[ -z "$MNIST" && -d "$candidate" ]]; then
        MNIST=$(cd "$candidate" && pwd)
    fi
done
if ! "$PYTHON" -c "import hypothesis" >/dev/null 2>&1; then
    PYTEST_ARGS+=(--noconftest)
fi

main() {
    echo "tinygen GPU check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), in $ROOT"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        echo "git: commit $(git -C "$ROOT" rev-parse --short HEAD)," \
             "$(git -C "$ROOT" status --porcelain | wc -l) paths changed or untracked"
    else
        echo "git: not a git checkout"
    fi
    echo "PYTHON=$PYTHON, PYTHONPATH=$PYTHONPATH, log: $LOG"

    run_step "1 environment" 40 "$PYTHON" -c "$ENVIRONMENT_PY"
    run_step "2 pytest cuda + devices" 70 \
        "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" tests/test_cuda_conv.py tests/test_cuda_fused.py \
        tests/test_backends.py tests/test_device.py
    run_step "3 cuda kernels on the GPU" 40 "$PYTHON" -c "$KERNELS_ON_GPU_PY"
    run_step "4 bench/conv.py" 40 \
        "$PYTHON" bench/conv.py --torch-device cuda --device cuda --batch 64 --blocks 5 \
        --no-cold-start
    run_step "5 bench/dcgan_step.py batch 64" 35 \
        "$PYTHON" bench/dcgan_step.py --torch-device cuda --device cuda --blocks 3 --batch 64
    run_step "6 bench/dcgan_step.py batch 256" 50 \
        "$PYTHON" bench/dcgan_step.py --torch-device cuda --device cuda --blocks 3 --batch 256
    run_step "7 same numbers after 5 steps" 25 "$PYTHON" bench/device_same_numbers.py
    run_step "8 tinygen train dcgan on cuda" 110 env TINYGEN_DATA="$MNIST" \
        "$PYTHON" bench/device_train.py

    echo
    echo "==== summary ($SECONDS s in all)"
    local line
    for line in "${SUMMARY[@]}"; do
        echo "$line"
    done
    if ((FAILED > 0)); then
        echo "$FAILED step(s) did not pass"
        return 1
    fi
    echo "all steps passed"
    return 0
}

mkdir -p "$LOG_DIR"
main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
