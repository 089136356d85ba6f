"""What `import tinygen` loads: the engine, nn and optim at once; data, models, metrics, plot and
train on first use, PyTorch-style (`tg.data.load_mnist` after `import tinygen as tg`); never
matplotlib or numba, so importing compiles nothing."""
import json
import os
import subprocess
import sys

import pytest

import tinygen as tg

LOADED_ON_FIRST_USE = ["data", "models", "metrics", "plot", "train"]


def _modules_after(code):
    """The sys.modules names among a few heavy ones after running code in a fresh process."""
    watched = ["matplotlib", "numba", "tqdm"] + [f"tinygen.{m}" for m in LOADED_ON_FIRST_USE]
    script = f"import sys\n{code}\nimport json\n" \
             f"print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_tinygen_loads_neither_matplotlib_nor_numba_nor_the_large_submodules():
    assert _modules_after("import tinygen") == []


def test_a_submodule_loads_when_first_named_and_alone():
    loaded = _modules_after("import tinygen as tg\ntg.data")
    assert "tinygen.data" in loaded
    assert not {"matplotlib", "numba", "tinygen.models", "tinygen.plot"} & set(loaded)


def test_the_submodules_are_reachable_as_pytorch_users_expect():
    assert tg.data.load_mnist.__module__ == "tinygen.data.mnist"
    assert tg.models.VAE.__name__ == "VAE"
    assert callable(tg.metrics.fid)
    assert callable(tg.plot.image_grid)
    assert callable(tg.train.fit)
    assert set(LOADED_ON_FIRST_USE) <= set(dir(tg)) and set(LOADED_ON_FIRST_USE) <= set(tg.__all__)


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'tinygen' has no attribute 'tensorflow'"):
        tg.tensorflow


def test_omp_num_threads_caps_numbas_threads():
    code = "from tinygen.kernels import numba_conv; import numba; print(numba.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], env=dict(env, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "1", done.stderr
