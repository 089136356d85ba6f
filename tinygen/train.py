"""The training loop: fit(model, loader, optimizer, epochs) for every model of the course.

A model says how to compute its own loss: `model.loss(*batch) -> (loss, metrics)`, where loss is a
scalar Tensor and metrics a dict of named numbers (each term of the loss, say). fit does the rest:
the optimizer step, a progress bar with running means, one line of metrics per epoch, validation, a
history, one checkpoint per epoch (atomic, resumable), and a clear error when the loss stops being
finite. The bar is drawn only where someone watches it: when stderr is a terminal (or a notebook),
so that `tinygen train ae > log 2>&1` writes the epoch lines to the log but no bar updates.

A model whose step is not "one loss, one optimizer" (a GAN: k discriminator updates, then one
generator update) defines `model.train_step(batch, optimizer) -> metrics` and fit calls that
instead; `optimizer` is then whatever the model expects (for a GAN, a dict of two optimizers).
"""
import math
import os
import time

import numpy as np
from tqdm.auto import tqdm

from .autograd import no_grad
from .checkpoint import load, save
from .tensor import Tensor


class TrainingDiverged(FloatingPointError):
    """The loss (or a metric) became nan or inf."""


def _as_args(batch):
    """A loader yields one Tensor or a tuple of them; the model's loss takes them as arguments."""
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _batch_size(batch):
    return len(_as_args(batch)[0])


def _number(value):
    """A metric (Tensor, array or number) as a float."""
    if isinstance(value, Tensor):
        value = value.data
    return float(np.asarray(value))


def _as_floats(metrics):
    """A dict of named metrics (Tensors, arrays or numbers) as a dict of floats."""
    return {name: _number(value) for name, value in metrics.items()}


def _loss_and_metrics_as_floats(loss, metrics):
    """What model.loss returns, (loss, metrics), as one dict of floats with the loss first."""
    return {"loss": _number(loss), **_as_floats(metrics)}


def _optimizer_state(optimizer):
    if isinstance(optimizer, dict):
        return {name: opt.state_dict() for name, opt in optimizer.items()}
    return optimizer.state_dict()


def _load_optimizer_state(optimizer, state):
    if isinstance(optimizer, dict):
        for name, opt in optimizer.items():
            opt.load_state_dict(state[name])
    else:
        optimizer.load_state_dict(state)


class _RunningMeans:
    """Means of named metrics over the samples seen so far (weighted by batch size)."""

    def __init__(self):
        self.sums = {}
        self.count = 0

    def add(self, metrics, n):
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + value * n
        self.count += n

    def means(self):
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


def _check_finite(metrics, epoch, step, checkpoint):
    for name, value in metrics.items():
        if not math.isfinite(value):
            kept = (f"; the last good checkpoint is kept at {checkpoint}"
                    if checkpoint and os.path.exists(checkpoint) else "")
            raise TrainingDiverged(
                f"fit: {name} became {value} at epoch {epoch}, step {step}{kept} "
                "(try a smaller learning rate)"
            )


def evaluate(model, loader):
    """Mean loss and metrics of model over loader, in eval mode with no graph recorded."""
    was_training = model.training
    model.eval()
    means = _RunningMeans()
    try:
        with no_grad():
            for batch in loader:
                loss, metrics = model.loss(*_as_args(batch))
                means.add(_loss_and_metrics_as_floats(loss, metrics), _batch_size(batch))
    finally:
        model.train(was_training)  # also when the loss raises: the caller's mode is kept
    return means.means()


def _epoch_line(epoch, epochs, record):
    """One epoch's metrics as one line: 'epoch 3/20: loss 97.5, recon 97.5, seconds 4.1, ...'."""
    summary = ", ".join(f"{name} {value:.4g}" for name, value in record.items())
    return f"epoch {epoch}/{epochs}: {summary}"


def fit(model, loader, optimizer, epochs, val_loader=None, checkpoint=None, resume=None,
        progress=None, on_epoch_end=None, checkpoint_extra=None, epoch_lines=None):
    """Train model for `epochs` epochs; returns the history {metric name: [one value per epoch]}.

    loader / val_loader: iterables of batches (a Tensor or a tuple of Tensors), e.g. DataLoader.
    checkpoint: a path written after every epoch (model, optimizer, epoch, history), atomically.
    resume: a checkpoint path to continue from (its epochs count towards `epochs`).
    on_epoch_end: called as on_epoch_end(epoch, history) after each epoch (sample grids, say).
    checkpoint_extra: a dict of more entries for the checkpoint (e.g. how to rebuild the model).
    progress: a progress bar on stderr: None (the default) draws it only when stderr is a terminal
        (or in a notebook), never into a log file or pipe; True or False forces it on or off.
    epoch_lines: print one line of metrics per epoch on stdout; None (the default) prints them
        unless progress is False, so that progress=False is silent.
    Validation metrics are stored as "val_<name>"; "seconds" holds each epoch's training time.
    """
    history = {}
    start_epoch = 1
    if resume is not None:
        state = load(resume)
        model.load_state_dict(state["model"])
        _load_optimizer_state(optimizer, state["optimizer"])
        history = {name: list(values) for name, values in state["history"].items()}
        start_epoch = state["epoch"] + 1
    step_fn = getattr(model, "train_step", None)
    if epoch_lines is None:
        epoch_lines = progress is not False
    for epoch in range(start_epoch, epochs + 1):
        model.train()
        means = _RunningMeans()
        started = time.perf_counter()
        # iter() once here: tqdm.auto's asyncio part calls iter() on what it wraps as well, which
        # would start a second pass over a loader whose __iter__ is not a generator.
        batches = iter(loader)
        total = len(loader) if hasattr(loader, "__len__") else None
        # disable=None: tqdm's own test, no bar when stderr is not a terminal (a file, a pipe).
        bar = tqdm(batches, total=total, desc=f"epoch {epoch}/{epochs}", leave=False,
                   disable=None if progress is None else not progress)
        for step, batch in enumerate(bar, start=1):
            if step_fn is not None:
                values = _as_floats(step_fn(batch, optimizer))
                _check_finite(values, epoch, step, checkpoint)
            else:
                loss, metrics = model.loss(*_as_args(batch))
                values = _loss_and_metrics_as_floats(loss, metrics)
                _check_finite(values, epoch, step, checkpoint)  # before a bad step spoils weights
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            means.add(values, _batch_size(batch))
            # refresh=False: tqdm redraws at its own pace, not once per step
            bar.set_postfix({name: f"{v:.4g}" for name, v in means.means().items()}, refresh=False)
        record = means.means()
        record["seconds"] = time.perf_counter() - started
        if val_loader is not None:
            record.update({f"val_{name}": v for name, v in evaluate(model, val_loader).items()})
        for name, value in record.items():
            history.setdefault(name, []).append(value)
        if epoch_lines:
            with tqdm.external_write_mode():  # lifts a drawn bar out of the way, then redraws it
                print(_epoch_line(epoch, epochs, record), flush=True)  # into a log file at once
        if checkpoint is not None:
            save({**(checkpoint_extra or {}), "model": model.state_dict(),
                  "optimizer": _optimizer_state(optimizer), "epoch": epoch, "history": history},
                 checkpoint)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history
