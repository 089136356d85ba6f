"""DataLoader: mini-batches of NumPy arrays as tinygen Tensors, reshuffled every epoch.

    loader = DataLoader((images, labels), batch_size=128, seed=0)
    for epoch in range(10):
        for x, y in loader:        # x (128, 784) float32 Tensor, y (128,) int Tensor
            ...

Each pass over the loader is one epoch with a fresh permutation, drawn from the loader's own
generator: the same seed gives the same sequence of epochs. With seed=None that generator is
seeded once, when the loader is made, from tinygen's global generator, so tinygen.manual_seed makes
the whole run repeatable.
"""
import copy
import math

import numpy as np

from .. import devices
from .. import random as _random
from ..tensor import Tensor


class DataLoader:
    """Iterate over arrays in mini-batches of batch_size rows, as Tensors.

    arrays: one array (N, ...) or a tuple/list of arrays with the same first dimension N; each
        batch is then one Tensor (B, ...) or a tuple of Tensors, one per array.
    shuffle: a new random order every epoch; otherwise rows come in order.
    drop_last: leave out the last batch when it has fewer than batch_size rows.
    seed: seeds the shuffling (None: drawn from tinygen's global generator).
    transform: a callable applied to each batch of the first array (a NumPy array (B, ...)) before
        it is wrapped, e.g. transforms.Binarizer for dynamic binarisation.
    device: where the batches' Tensors go ("cuda"): each batch is gathered (and transformed) on
        the host, then copied to the device in one piece. Default: the CPU.

    Batches follow tinygen.tensor's dtypes: floating data becomes float32, integers and bools
    (labels) keep their dtype. Each Tensor owns its data (a copy of the rows).
    """

    def __init__(self, arrays, batch_size, shuffle=True, drop_last=False, seed=None,
                 transform=None, device=None):
        self._single = not isinstance(arrays, (tuple, list))
        self.arrays = self._check_arrays([arrays] if self._single else list(arrays))
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(
                f"DataLoader: batch_size must be a positive integer, got {batch_size!r}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(
                f"DataLoader: transform must be callable, got {type(transform).__name__}"
            )
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.device = None if device is None else devices.device(device)
        self.n_samples = len(self.arrays[0])
        if seed is None:
            seed = int(_random.generator().integers(2**63))
        self._rng = np.random.default_rng(seed)
        self._epoch_start = None  # the generator's state when the epoch in progress began
        self._batches_done = 0  # batches handed out in the epoch in progress
        self._resume_at = 0  # batches the next epoch skips (set by load_state_dict)

    @staticmethod
    def _check_arrays(arrays):
        if not arrays:
            raise ValueError("DataLoader: got an empty list of arrays")
        out = []
        for i, a in enumerate(arrays):
            a = np.asarray(a)
            if a.ndim == 0:
                raise ValueError(
                    f"DataLoader: array {i} is a scalar; each array needs rows (N, ...)"
                )
            out.append(a)
        lengths = [len(a) for a in out]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"DataLoader: all arrays must have the same first dimension, got lengths {lengths}"
            )
        return out

    def __len__(self):
        """The number of batches in one epoch."""
        if self.drop_last:
            return self.n_samples // self.batch_size
        return math.ceil(self.n_samples / self.batch_size)

    def __iter__(self):
        """One epoch: yields a Tensor (or a tuple of Tensors) per batch."""
        self._epoch_start = copy.deepcopy(self._rng.bit_generator.state)
        first, self._resume_at = self._resume_at, 0
        if self.shuffle:
            order = self._rng.permutation(self.n_samples)
        else:
            order = np.arange(self.n_samples)
        for b in range(first, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = [a[index] for a in self.arrays]
            if self.transform is not None:
                batch[0] = self.transform(batch[0])
            tensors = tuple(Tensor(x, device=self.device) for x in batch)
            self._batches_done = b + 1
            yield tensors[0] if self._single else tensors
        self._epoch_start = None  # the epoch is over: the next one starts from the state as it is
        self._batches_done = 0

    # ---- saving and resuming -------------------------------------------------------------------
    def state_dict(self):
        """Where the loader is: the shuffling generator's state when this epoch began and how many
        of its batches were handed out (0 between epochs), and its transform's own state.

        load_state_dict(state) on a loader over the same arrays makes its next epoch draw the same
        order and go on from the next batch, with the same transform noise: the rest of the epoch
        is what it would have been without the interruption.
        """
        in_epoch = self._epoch_start is not None
        state = {
            "rng": copy.deepcopy(self._epoch_start if in_epoch else self._rng.bit_generator.state),
            "batches_done": self._batches_done if in_epoch else 0,
        }
        if hasattr(self.transform, "state_dict"):
            state["transform"] = self.transform.state_dict()
        return state

    def load_state_dict(self, state):
        """Go back to where state_dict(state) was taken (see there)."""
        if not 0 <= state["batches_done"] <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: {state['batches_done']} batches done, "
                             f"but an epoch has {len(self)}")
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._resume_at = int(state["batches_done"])
        self._epoch_start = None
        self._batches_done = 0
        if "transform" in state:
            self.transform.load_state_dict(state["transform"])

    def __repr__(self):
        shapes = ", ".join(str(a.shape) for a in self.arrays)
        return (
            f"DataLoader([{shapes}], batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, batches={len(self)}"
            + ("" if self.device is None else f", device='{self.device}'") + ")"
        )
