#!/usr/bin/env bash
# The GPU check of tinygen's cuda backend in one command, from the repository root:
#
#     bash bench/gpu_check.sh
#
# Written for a machine with an NVIDIA GPU (an H200) that has numba, numba-cuda, numpy, torch (a
# CUDA build) and pytest installed, no internet, and tinygen not installed: every step runs this
# checkout through PYTHONPATH. It took 144 s on an H200 (2026-11-28, steps of 8, 18, 7, 28, 32 and
# 51 s); each step runs under `timeout` and no step starts or runs past
# DEADLINE seconds, so the whole script ends within 5 minutes. A failing step does not stop the
# next one. At the end one summary line per step (ok / FAILED / TIMED OUT / SKIPPED, with its
# seconds); the exit status is 1 when any step did not pass, 0 otherwise. Everything printed also
# goes to "${OUT:-/tmp}/gpu_check.log".
#
# The steps:
#   1. environment: nvidia-smi -L, the versions of python, numpy, numba, numba-cuda, torch (its
#      CUDA and cuDNN), pytest, hypothesis; numba.cuda.is_available() and a tiny kernel compiled
#      and run with numba.cuda (a missing libNVVM shows up here, not in a traceback later);
#      torch.cuda.is_available(); tinygen.backend.available(). Fails when numba or torch sees no
#      GPU.
#   2. pytest -q tests/test_cuda_conv.py tests/test_backends.py. What these do on a real GPU:
#      test_cuda_conv.py checks the cuda kernels in numba's CUDA *simulator*, in a child process
#      that it starts with NUMBA_ENABLE_CUDASIM=1 (the simulator has to be on before numba is
#      imported), so that test passes on the CPU whether or not a GPU is here; its other test
#      (the fallback when there is no GPU) is skipped where numba.cuda.is_available().
#      test_backends.py checks the CPU backends, and on a GPU that TINYGEN_BACKEND=cuda is
#      honoured (numba stays the default: measured faster than cuda on the whole DCGAN step).
#      Neither file runs the kernels on the GPU.
#   3. the cuda kernels on the real GPU: step 3 imports tests/test_cuda_conv.py's case grid and
#      helpers (importing runs no test) and runs them here, without the simulator: the three
#      kernels against numpy_conv on every case of GRID (strides 1-3, paddings 0-2, non-square,
#      float32 and float64) at the module's TILE (16), and gradcheck of conv2d and
#      conv_transpose2d with the cuda backend in use.
#   4. python bench/conv.py --torch-device cuda --batch 64 128 --blocks 5 --no-cold-start: every
#      backend's three kernels on the four DCGAN layers, checked against numpy, timed against
#      torch's cuDNN.
#   5. python bench/dcgan_step.py --torch-device cuda --blocks 5 --batch 64: one DCGAN training
#      step per backend, losses checked against numpy, timed against torch on the GPU;
#   6. the same at --batch 256.
# numba-cuda 0.30.4 cannot compile a kernel with numpy 2.5 (it looks up np.row_stack, which numpy
# 2.5 removed): step 1 then reports the error and the cuda backend is unavailable. That machine's
# image had numpy 2.5.2; the check passed with numpy 2.4.6 installed over it from a carried wheel
# (pip install --target /tmp/site, PYTHONPATH=/tmp/site; see the device tool's README).
# NUMBA_ENABLE_CUDASIM is unset for every step: steps 3-6 must run on the GPU (step 2's test sets
# it for its own child process). PYTHON=... chooses the interpreter (default: python, else
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
for dist in ("numpy", "numba", "numba-cuda", "torch", "pytest", "hypothesis"):
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

import test_cuda_conv as cases  # the grid and the helpers of the simulator test

failures = []
for case in cases.GRID:
    failures += cases._compare_with_numpy(cuda_conv, numpy_conv, case)
try:
    cases._gradcheck_ops_on_cuda(tg)
except AssertionError as error:  # GradcheckError is an AssertionError
    failures.append(f"gradcheck on the cuda backend: {error}")
for failure in failures:
    print(failure)
print(f"{len(cases.GRID)} cases x 3 kernels vs numpy_conv at TILE={cuda_conv.TILE}, then "
      f"gradcheck of conv2d and conv_transpose2d on the cuda backend: "
      f"{len(failures)} failures")
sys.exit(1 if failures else 0)
EOF

# If hypothesis is missing, tests/conftest.py (which imports it to set hypothesis's profile, and
# defines an rng fixture that these two test files do not use) cannot load: skip it rather than
# fail the collection.
PYTEST_ARGS=(-q -p no:cacheprovider)
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
    run_step "2 pytest cuda + backends" 75 \
        "$PYTHON" -m pytest "${PYTEST_ARGS[@]}" tests/test_cuda_conv.py tests/test_backends.py
    run_step "3 cuda kernels on the GPU" 60 "$PYTHON" -c "$KERNELS_ON_GPU_PY"
    run_step "4 bench/conv.py" 100 \
        "$PYTHON" bench/conv.py --torch-device cuda --batch 64 128 --blocks 5 --no-cold-start
    run_step "5 bench/dcgan_step.py batch 64" 60 \
        "$PYTHON" bench/dcgan_step.py --torch-device cuda --blocks 5 --batch 64
    run_step "6 bench/dcgan_step.py batch 256" 100 \
        "$PYTHON" bench/dcgan_step.py --torch-device cuda --blocks 5 --batch 256

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
