"""The training loop: fit(model, loader, optimizer, epochs) for every model of the course.

A model says how to compute its own loss: `model.loss(*batch) -> (loss, metrics)`, where loss is a
scalar Tensor and metrics a dict of named numbers (each term of the loss, say). fit does the rest:
the optimizer step, a progress bar with running means, one line of metrics per epoch, validation, a
history, checkpoints at epoch ends and every N steps (atomic, and resumed exactly, mid-epoch too),
a stop at the next step boundary on Ctrl-C, and a clear error when the loss stops being finite.
The bar is drawn only where someone watches it: when stderr is a terminal (or a notebook), so
that `tinygen train ae > log 2>&1` writes the epoch lines to the log but no bar updates.

A model whose step is not "one loss, one optimizer" (a GAN: k discriminator updates, then one
generator update) defines `model.train_step(batch, optimizer) -> metrics` and fit calls that
instead; `optimizer` is then whatever the model expects (for a GAN, a dict of two optimizers).
"""
import math
import os
import time

from tqdm.auto import tqdm

from .autograd import no_grad
from .checkpoint import load, save
from .interrupt import StopRequests, TrainingInterrupted
from .random import get_rng_state, set_rng_state
from .tensor import Tensor


class TrainingDiverged(FloatingPointError):
    """The loss (or a metric) became nan or inf."""


def _as_args(batch):
    """A loader yields one Tensor or a tuple of them; the model's loss takes them as arguments."""
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _batch_size(batch):
    return len(_as_args(batch)[0])


def _number(value):
    """A metric (Tensor, array or number) as a float (read from the device, if it is there)."""
    if isinstance(value, Tensor):
        value = value.data
    return float(value)


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
        progress=None, on_epoch_end=None, checkpoint_extra=None, epoch_lines=None,
        checkpoint_every=None, on_checkpoint=None):
    """Train model for `epochs` epochs; returns the history {metric name: [one value per epoch]}.

    loader / val_loader: iterables of batches (a Tensor or a tuple of Tensors), e.g. DataLoader.
    checkpoint: a path written after every epoch (model, optimizer, epoch, history), atomically.
    checkpoint_every: also write it every that many steps within an epoch (a crash then loses at
        most that many steps).
    resume: a checkpoint path to continue from (its epochs count towards `epochs`). A checkpoint
        written within an epoch goes on from the next step. The continuation is the run that never
        stopped, to float precision, when the loader is a DataLoader (its order and transform noise
        are saved) or yields the same batches on every pass, and all other randomness comes from
        tinygen's global generator (saved too).
    on_epoch_end: called as on_epoch_end(epoch, history) after each epoch (sample grids, say).
    on_checkpoint: called as on_checkpoint(epochs_done, step, history) after each checkpoint.
    checkpoint_extra: a dict of more entries for the checkpoint (e.g. how to rebuild the model).
    progress: a progress bar on stderr: None (the default) draws it only when stderr is a terminal
        (or in a notebook), never into a log file or pipe; True or False forces it on or off.
    epoch_lines: print one line of metrics per epoch on stdout; None (the default) prints them
        unless progress is False, so that progress=False is silent.
    Ctrl-C stops at the next step boundary, writes the checkpoint there (if there is a path) and
    raises TrainingInterrupted (a KeyboardInterrupt); a second Ctrl-C stops at once, and the last
    checkpoint written stays whole.
    Validation metrics are stored as "val_<name>"; "seconds" holds each epoch's training time.
    """
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool)
                                         or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"fit: checkpoint_every must be a positive number of steps, "
                         f"got {checkpoint_every!r}")
    run = _Run(model, optimizer, loader, checkpoint, checkpoint_extra, on_checkpoint)
    if resume is not None:
        run.restore(load(resume))
    step_fn = getattr(model, "train_step", None)
    if epoch_lines is None:
        epoch_lines = progress is not False
    total = len(loader) if hasattr(loader, "__len__") else None
    with StopRequests() as stop:
        for epoch in range(run.epochs_done + 1, epochs + 1):
            model.train()
            first_step = run.step
            started = time.perf_counter()
            # iter() once here: tqdm.auto's asyncio part calls iter() on what it wraps as well,
            # which would start a second pass over a loader whose __iter__ is not a generator.
            batches = run.remaining_batches(iter(loader))
            # disable=None: tqdm's own test, no bar when stderr is not a terminal (a file, a pipe).
            bar = tqdm(batches, total=total, initial=first_step, desc=f"epoch {epoch}/{epochs}",
                       leave=False, disable=None if progress is None else not progress)
            for step, batch in enumerate(bar, start=first_step + 1):
                if step_fn is not None:
                    values = _as_floats(step_fn(batch, optimizer))
                    _check_finite(values, epoch, step, checkpoint)
                else:
                    loss, metrics = model.loss(*_as_args(batch))
                    values = _loss_and_metrics_as_floats(loss, metrics)
                    _check_finite(values, epoch, step, checkpoint)  # before a bad step spoils it
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                run.means.add(values, _batch_size(batch))
                run.step = step
                # refresh=False: tqdm redraws at its own pace, not once per step
                bar.set_postfix({name: f"{v:.4g}" for name, v in run.means.means().items()},
                                refresh=False)
                due = checkpoint_every is not None and step % checkpoint_every == 0 \
                    and step != total  # at an epoch's last step the epoch's checkpoint follows
                if stop.requested or due:
                    run.save(run.seconds + time.perf_counter() - started)
                if stop.requested:
                    bar.close()
                    raise TrainingInterrupted(epoch, step, checkpoint)
            record = run.means.means()
            record["seconds"] = run.seconds + time.perf_counter() - started
            if val_loader is not None:
                record.update({f"val_{name}": v for name, v in evaluate(model, val_loader).items()})
            run.end_epoch(record)
            if epoch_lines:
                with tqdm.external_write_mode():  # lifts a drawn bar out of the way, redraws it
                    print(_epoch_line(epoch, epochs, record), flush=True)  # into a log at once
            run.save()
            if on_epoch_end is not None:
                on_epoch_end(epoch, run.history)
    return run.history


# What a checkpoint of fit holds. 1: epoch ends only. 2: also "step" within the next epoch, the
# partial epoch's running means, the global generator's state and the loader's state.
CHECKPOINT_FORMAT = 2


class _Run:
    """How far a fit has got, and how to write that to a checkpoint and read it back."""

    def __init__(self, model, optimizer, loader, checkpoint, extra, on_checkpoint):
        self.model, self.optimizer, self.loader = model, optimizer, loader
        self.checkpoint, self.extra, self.on_checkpoint = checkpoint, extra or {}, on_checkpoint
        self.history = {}
        self.epochs_done = 0
        self.step = 0  # steps done in the epoch in progress
        self.means = _RunningMeans()
        self.seconds = 0.0  # training seconds of the epoch in progress before this process
        self.skip_by_hand = 0  # batches to drop from a loader that cannot skip them itself

    def end_epoch(self, record):
        for name, value in record.items():
            self.history.setdefault(name, []).append(value)
        self.epochs_done += 1
        self.step, self.means, self.seconds = 0, _RunningMeans(), 0.0

    def save(self, seconds=None):
        """Write the checkpoint (if there is a path): between epochs, or within one (seconds: the
        epoch's training time so far); then tell on_checkpoint."""
        if self.checkpoint is None:
            return
        state = {**self.extra, "fit_format": CHECKPOINT_FORMAT, "model": self.model.state_dict(),
                 "optimizer": _optimizer_state(self.optimizer), "epoch": self.epochs_done,
                 "step": self.step, "history": self.history, "rng": get_rng_state()}
        if self.step:
            state["partial"] = {"sums": self.means.sums, "count": self.means.count,
                                "seconds": seconds}
        if hasattr(self.loader, "state_dict"):
            state["loader"] = self.loader.state_dict()
        save(state, self.checkpoint)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.epochs_done, self.step, self.history)

    def restore(self, state):
        """Take model, optimizer, history, position and random state from a checkpoint."""
        version = state.get("fit_format", 1)
        if version > CHECKPOINT_FORMAT:
            raise ValueError(f"fit: the checkpoint has format {version}, written by a newer "
                             f"tinygen; this one reads formats up to {CHECKPOINT_FORMAT}")
        self.model.load_state_dict(state["model"])
        _load_optimizer_state(self.optimizer, state["optimizer"])
        self.history = {name: list(values) for name, values in state["history"].items()}
        self.epochs_done = state["epoch"]
        self.step = state.get("step", 0)
        if "rng" in state:
            set_rng_state(state["rng"])
        if "partial" in state:
            self.means.sums = dict(state["partial"]["sums"])
            self.means.count = state["partial"]["count"]
            self.seconds = state["partial"]["seconds"]
        if "loader" in state and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(state["loader"])  # it goes on from the next batch
        else:
            self.skip_by_hand = self.step

    def remaining_batches(self, batches):
        """The batches of this epoch still to train on (after a resumed checkpoint's step)."""
        skip, self.skip_by_hand = self.skip_by_hand, 0
        for _ in range(skip):
            next(batches, None)
        return batches
