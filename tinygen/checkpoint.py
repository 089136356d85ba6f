"""Save and load nested training state (model and optimizer state_dicts, metadata) in one .npz file.

    tinygen.checkpoint.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3},
                            "runs/vae.ckpt")
    state = tinygen.checkpoint.load("runs/vae.ckpt")

Arrays (and Tensors, saved as their arrays) become entries of the .npz archive; everything around
them (dicts with str or int keys, lists, tuples, str, int, float, bool, None) is described by one
JSON entry. Nothing is pickled, so loading a checkpoint never runs code from the file.
"""
import json
import os
import secrets
import zipfile

import numpy as np

from . import devices
from .tensor import Tensor

_FORMAT = "tinygen-checkpoint"
_VERSION = 1
_STRUCTURE = "structure"  # the npz entry holding the JSON description


def save(state, path):
    """Write `state` (a nested structure of arrays, Tensors and plain values) to the file `path`.

    The file is written beside `path` under a temporary name and then renamed onto it, so an
    interrupted save leaves the previous checkpoint intact.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"checkpoint.save: the folder '{folder}' does not exist")
    arrays = {}
    structure = {"format": _FORMAT, "version": _VERSION, "root": _encode(state, arrays, "")}
    arrays[_STRUCTURE] = np.array(json.dumps(structure))
    write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path, write):
    """Call write(f) on a new file beside `path`, flush it to disk, then rename it onto `path`:
    an interrupted or failed write (Ctrl-C, a full disk) leaves `path` as it was and no temporary
    file behind."""
    tmp = f"{path}.tmp-{secrets.token_hex(4)}"
    f = open(tmp, "xb")  # "x": never take over a file that is not ours
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename gives it the name
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path):
    """Read a checkpoint written by `save`; Tensors come back as NumPy arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint.load: no such file: '{path}'")
    # We open the file ourselves: np.load leaves its own file open when a damaged zip fails.
    with open(path, "rb") as f:
        try:
            contents = np.load(f, allow_pickle=False)
        except (ValueError, EOFError, zipfile.BadZipFile) as e:  # random bytes look like a pickle
            raise _not_a_checkpoint(path, "it is not an .npz archive") from e
        if not isinstance(contents, np.lib.npyio.NpzFile):
            raise _not_a_checkpoint(path, "it holds a single array, not an .npz archive")
        with contents as npz:
            if _STRUCTURE not in npz.files:
                raise _not_a_checkpoint(path, f"it has no '{_STRUCTURE}' entry")
            try:
                arrays = {name: npz[name] for name in npz.files}
                structure = json.loads(str(arrays.pop(_STRUCTURE)))
                if structure["format"] != _FORMAT:
                    raise ValueError(f"format {structure['format']!r}")
                return _decode(structure["root"], arrays)
            except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
                why = f"{type(e).__name__} while reading it: {e}"
                raise _not_a_checkpoint(path, why) from e


def _not_a_checkpoint(path, why):
    return ValueError(f"checkpoint.load: '{path}' is not a tinygen checkpoint ({why})")


def _encode(value, arrays, key_path):
    """JSON-ready description of value; its arrays are collected in `arrays` and named in the JSON.

    Containers are one-key objects: {"dict": [[key, value], ...]}, {"list": [...]},
    {"tuple": [...]}, {"array": name}; plain values are themselves. Dict entries are pairs, so int
    keys stay ints.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        value = value.data
    if devices.is_device_array(value):
        value = devices.to_host(value)  # a checkpoint holds host arrays, wherever they were
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint.save: {_where(key_path)} is an array of Python objects")
        name = f"array_{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(
                    f"checkpoint.save: {_where(key_path)} has a key {key!r} of type "
                    f"{type(key).__name__} (keys must be str or int)"
                )
            items.append([key, _encode(item, arrays, _join(key_path, key))])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, arrays, _join(key_path, i)) for i, item in enumerate(value)]}
    type_name = type(value).__qualname__
    if type(value).__module__ != "builtins":
        type_name = f"{type(value).__module__}.{type_name}"
    raise TypeError(
        f"checkpoint.save: {_where(key_path)} has unsupported type {type_name} (use arrays, "
        "Tensors, dicts, lists, tuples, str, int, float, bool or None; for a NumPy scalar, .item())"
    )


def _join(key_path, key):
    return f"{key_path}/{key}" if key_path else str(key)


def _where(key_path):
    return f"'{key_path}'" if key_path else "the state itself"


def _decode(node, arrays):
    """The value that `_encode` described."""
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise ValueError(f"malformed entry {node!r}")
    kind = next(iter(node))
    body = node[kind]
    if kind == "array":
        return arrays[body]
    if kind == "dict":
        return {key: _decode(item, arrays) for key, item in body}
    if kind == "list":
        return [_decode(item, arrays) for item in body]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in body)
    raise ValueError(f"unknown entry {kind!r}")
