"""checkpoint.save / load: nested round trips, dtypes, the exact path, atomic replace, errors."""
import os
import re

import numpy as np
import pytest

import tinygen as tg
from tinygen import checkpoint, optim


def assert_same(got, want):
    """Equal values of the same types all the way down (arrays: same dtype, shape and values)."""
    if isinstance(want, tg.Tensor):
        want = want.data  # a Tensor comes back as its array
    assert type(got) is type(want), (got, want)
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    elif isinstance(want, dict):
        assert list(got) == list(want)  # same keys (int stays int), same order
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == want


def nested_state(rng):
    return {
        "model": {
            "encoder.0.weight": tg.tensor(rng.standard_normal((4, 3))),
            "encoder.0.bias": rng.standard_normal(4).astype(np.float32),
            "bn.running_mean": np.zeros(4),
            "bn.num_batches_tracked": np.array(7),
        },
        "optim": {
            "state": {0: {"step": 3, "exp_avg": np.ones((4, 3), np.float32)}, 1: {"step": 3}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "epoch": 12,
        "best_loss": 0.125,
        "losses": [1.5, 0.75, float("nan"), float("inf")],
        "finished": False,
        "note": None,
        "name": "vae / mnist, β=1",
        "shape": (1, 28, 28),
        "empty": {"list": [], "tuple": (), "dict": {}},
        "nested_tuples": ((1, "a"), [(), (2.5,)]),
    }


def test_nested_state_round_trips_with_types(tmp_path, rng):
    state = nested_state(rng)
    checkpoint.save(state, tmp_path / "run.ckpt")
    assert_same(checkpoint.load(tmp_path / "run.ckpt"), state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int32, np.int64,
                                   np.uint8, np.bool_, np.float16])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3, 4)])
def test_arrays_keep_dtype_shape_and_values(tmp_path, rng, dtype, shape):
    array = np.asarray(rng.standard_normal(shape) * 10).astype(dtype)
    checkpoint.save({"a": array, "list": [array]}, tmp_path / "a.npz")
    loaded = checkpoint.load(tmp_path / "a.npz")
    assert_same(loaded, {"a": array, "list": [array]})


def test_non_contiguous_and_fortran_arrays_round_trip(tmp_path):
    base = np.arange(24.0).reshape(4, 6)
    state = {"strided": base[::2, ::3], "transposed": base.T, "fortran": np.asfortranarray(base)}
    checkpoint.save(state, tmp_path / "c")
    assert_same(checkpoint.load(tmp_path / "c"), {k: np.array(v) for k, v in state.items()})


def test_the_exact_path_is_used_with_no_suffix_added(tmp_path):
    for name in ["model", "model.ckpt", "model.pt"]:
        checkpoint.save({"x": np.ones(2)}, str(tmp_path / name))
        assert (tmp_path / name).exists()
    assert sorted(os.listdir(tmp_path)) == ["model", "model.ckpt", "model.pt"]


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "c.npz"
    checkpoint.save({"epoch": 1}, path)
    checkpoint.save({"epoch": 2}, path)
    assert checkpoint.load(path) == {"epoch": 2}
    assert os.listdir(tmp_path) == ["c.npz"]


def test_a_checkpoint_is_a_plain_npz_readable_without_pickle(tmp_path):
    checkpoint.save({"w": np.arange(3)}, tmp_path / "c")
    with np.load(tmp_path / "c", allow_pickle=False) as npz:
        arrays = [npz[name] for name in npz.files]
    assert any(np.array_equal(a, np.arange(3)) for a in arrays)


def test_optimizer_state_survives_a_checkpoint_and_training_continues_identically(tmp_path, rng):
    p0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(5)]
    p = tg.tensor(p0, requires_grad=True, dtype=tg.float64)
    opt = optim.Adam([p], lr=0.1, betas=(0.8, 0.9))
    for g in grads[:2]:
        p.grad = tg.tensor(g, dtype=tg.float64)
        opt.step()
    checkpoint.save({"param": p, "optim": opt.state_dict()}, tmp_path / "c")

    state = checkpoint.load(tmp_path / "c")
    q = tg.tensor(state["param"], requires_grad=True, dtype=tg.float64)
    resumed = optim.Adam([q], lr=0.5)
    resumed.load_state_dict(state["optim"])
    assert resumed.param_groups[0]["betas"] == (0.8, 0.9)
    for g in grads[2:]:
        for t, o in ((p, opt), (q, resumed)):
            t.grad = tg.tensor(g, dtype=tg.float64)
            o.step()
        np.testing.assert_array_equal(p.data, q.data)


# ---- an interrupted save leaves the previous checkpoint -------------------------------------
@pytest.mark.parametrize("failing", ["savez", "fsync", "replace"])
def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                       failing):
    path = tmp_path / "c.npz"
    checkpoint.save({"epoch": 1, "w": np.ones(3)}, path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("interrupted")  # not an Exception: cleanup must still run

    target = {"savez": (np, "savez"), "fsync": (os, "fsync"), "replace": (os, "replace")}[failing]
    monkeypatch.setattr(*target, fail)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"epoch": 2, "w": np.zeros(3)}, path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]
    assert checkpoint.load(path)["epoch"] == 1


def test_a_save_that_fails_half_way_through_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    checkpoint.save({"epoch": 1}, path)
    real_savez = np.savez

    def write_half_then_fail(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(file.tell() // 2)
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save({"epoch": 2, "big": np.zeros(1000)}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["c.npz"]


def test_an_unsupported_value_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        checkpoint.save({"bad": {1, 2}}, tmp_path / "c")
    assert os.listdir(tmp_path) == []


# ---- errors ----------------------------------------------------------------------------------
def test_loading_a_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"no such file: '{path}'")):
        checkpoint.load(path)


def test_saving_into_a_missing_folder_names_the_folder(tmp_path):
    folder = tmp_path / "runs"
    with pytest.raises(FileNotFoundError, match=re.escape(f"the folder '{folder}' does not exist")):
        checkpoint.save({"x": 1}, folder / "c.npz")


def write_with(save, path, *args, **kwargs):
    """np.save / np.savez to exactly `path` (given a file name they would add a suffix)."""
    with open(path, "wb") as f:
        save(f, *args, **kwargs)


OTHER_JSON = '{"format": "something-else", "root": 1}'
MISSING_ARRAY = '{"format": "tinygen-checkpoint", "version": 1, "root": {"array": "array_7"}}'


def corrupt_files(tmp_path, rng):
    """Writers, by name, of files that are not tinygen checkpoints."""
    good = tmp_path / "good.npz"
    checkpoint.save({"w": np.ones(100)}, good)
    return {
        "random_bytes": lambda p: p.write_bytes(rng.bytes(300)),
        "empty": lambda p: p.write_bytes(b""),
        "truncated": lambda p: p.write_bytes(good.read_bytes()[:200]),
        "text": lambda p: p.write_text("epoch = 3\n"),
        "npy": lambda p: write_with(np.save, p, np.ones(3)),
        "npz_without_structure": lambda p: write_with(np.savez, p, w=np.ones(3)),
        "npz_with_other_json": lambda p: write_with(np.savez, p, structure=np.array(OTHER_JSON)),
        "structure_not_json": lambda p: write_with(np.savez, p, structure=np.array("{nope")),
        "missing_array": lambda p: write_with(np.savez, p, structure=np.array(MISSING_ARRAY)),
    }


@pytest.mark.parametrize("kind", ["random_bytes", "empty", "truncated", "text", "npy",
                                  "npz_without_structure", "npz_with_other_json",
                                  "structure_not_json", "missing_array"])
def test_a_file_that_is_not_a_checkpoint_is_a_value_error_naming_the_path(tmp_path, rng, kind):
    path = tmp_path / "bad.ckpt"
    corrupt_files(tmp_path, rng)[kind](path)
    with pytest.raises(ValueError, match=re.escape(f"'{path}' is not a tinygen checkpoint")):
        checkpoint.load(path)


@pytest.mark.parametrize("state, where, what", [
    ({"model": {"layer.weight": {1, 2}}}, "'model/layer.weight'", "unsupported type set"),
    ({"optim": {"state": {0: {"step": np.int64(3)}}}}, "'optim/state/0/step'", "numpy.int64"),
    ({"losses": [1.0, np.float32(0.5)]}, "'losses/1'", "numpy.float32"),
    ({"fn": (1, print)}, "'fn/1'", "unsupported type builtin_function_or_method"),
    ({"objs": np.array([{}, []], dtype=object)}, "'objs'", "is an array of Python objects"),
    ({"model": {(1, 2): np.ones(1)}}, "'model'", "has a key (1, 2) of type tuple"),
    ({"flags": {True: 1}}, "'flags'", "has a key True of type bool"),
    (b"bytes", "the state itself", "unsupported type bytes"),
])
def test_unsupported_values_are_a_type_error_naming_the_key_path(tmp_path, state, where, what):
    with pytest.raises(TypeError, match=re.escape(where) + ".*" + re.escape(what)):
        checkpoint.save(state, tmp_path / "c")
