"""An exponential moving average of a model's weights, the copy a GAN samples from.

After every optimizer step of the model it follows,
    ema <- decay * ema + (1 - decay) * w,
so the average weighs the last ~1 / (1 - decay) steps (1000 for decay 0.999) and smooths out the
oscillation of adversarial training: samples from the average are usually better than from the
last weights (Yazici et al. 2019; Karras et al. 2018).

It is a Module holding a copy of the model (`module`) and a counter `n_averaged`, so it travels
in the state_dict of whatever holds it, and its keys are those of PyTorch's
torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay)), whose update
rule it follows:
- the warm start: the copy starts equal to the model, and the first update copies the model again
  (as AveragedModel does), so the average starts from the trained weights, never from zeros (no
  bias correction needed, unlike Adam's moments) nor from weights set after the copy was made;
- buffers (BatchNorm's running statistics and counters) are copied, not averaged, as
  AveragedModel does by default (batch_norm="copy"): they are themselves running averages of the
  live model's activations. But the averaged weights make activations of their own, so
  batch_norm="recompute" instead measures them: recompute_batch_norm(batches) runs the copy in
  training mode over some inputs and keeps the cumulative average of their batch statistics
  (update_batch_norm below, PyTorch's torch.optim.swa_utils.update_bn). Until that has been done
  for the current weights, statistics_stale() says so (tinygen.models.GAN recomputes them
  before it samples);
- warmup=True ramps the decay up, decay_t = min(decay, (1 + t) / (10 + t)) after t updates
  (TensorFlow's ExponentialMovingAverage with num_updates), so a short run is not dominated by its
  first weights: 0.18 at the second update, 0.5 at the ninth, 0.9 at the eighty-first.

It lives beside the optimizers, not among them: it reads weights, never gradients, and its state
is the model's (state_dict, checkpoints), not an optimizer's.
"""
import copy

import numpy as np

from .autograd import no_grad
from .backend import kernel
from .checks import one_of
from .nn.layers import BatchNorm1d, BatchNorm2d
from .nn.module import Module
from .optim import one_contiguous_layout


class ExponentialMovingAverage(Module):
    """A copy of `model` (as `self.module`) whose weights follow the model's moving average.

    decay: in [0, 1]; call update(model) after each optimizer step of the model. Calling it runs
    the averaged copy: ema(x) = ema.module(x).
    """

    def __init__(self, model, decay=0.999, warmup=False, batch_norm="copy"):
        super().__init__()
        if not 0 <= decay <= 1:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1], got {decay}")
        one_of(batch_norm, BATCH_NORM_RULES, "batch_norm", "ExponentialMovingAverage")
        self.decay = decay
        self.warmup = warmup
        self.batch_norm = batch_norm
        self.module = copy.deepcopy(model).requires_grad_(False)  # never learned directly
        self.register_buffer("n_averaged", np.array(0, dtype=np.int64))  # updates so far
        # n_averaged when the batch norm statistics were last recomputed (None: never, or since
        # a load_state_dict); not saved, so a loaded copy recomputes them before it samples
        self._statistics_for = None

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def current_decay(self):
        """The decay the next update uses: decay, or min(decay, (1 + t) / (10 + t)) with warmup."""
        t = int(self.n_averaged.data)
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @no_grad()
    def update(self, model):
        """Average model's parameters in (the first update copies them); copy its buffers."""
        first = int(self.n_averaged.data) == 0
        decay = self.current_decay()
        pairs = list(_pairs(self.module.parameters(), model.parameters(), "parameters"))
        # the same rule in one pass (kernels/numba_optim.py), where the backend has it; one
        # backend runs all of a model's parameters, so it is asked once per update
        ema_update = kernel("ema_update", pairs[0][0].data) if pairs else None
        for averaged, current in pairs:
            if first:
                averaged.data[...] = current.data
            elif ema_update is not None and one_contiguous_layout(averaged.data, current.data):
                ema_update(averaged.data, current.data, decay)
            else:
                averaged.data *= decay  # ema <- decay * ema + (1 - decay) * w
                averaged.data += (1 - decay) * current.data
        buffers = _pairs(self.module.buffers(), model.buffers(), "buffers")
        if self.batch_norm == "copy":
            for averaged, current in buffers:
                averaged.data[...] = current.data
        self.n_averaged.data += 1  # in place: the 0-d array keeps its dtype

    def statistics_stale(self):
        """True when batch_norm="recompute" and the batch norm statistics were not recomputed
        for the current averaged weights."""
        measured_for = int(self.n_averaged.data)
        return self.batch_norm == "recompute" and self._statistics_for != measured_for

    def recompute_batch_norm(self, batches):
        """Set the copy's batch norm statistics to those of its own activations on `batches`
        (an iterable of inputs): update_batch_norm(self.module, batches)."""
        update_batch_norm(self.module, batches)
        self._statistics_for = int(self.n_averaged.data)

    def forget_statistics(self):
        """Mark the batch norm statistics stale (the weights were replaced, as by a load)."""
        self._statistics_for = None

    def load_state_dict(self, state_dict, strict=True):
        self.forget_statistics()  # other weights: their statistics are still to be measured
        return super().load_state_dict(state_dict, strict)

    def extra_repr(self):
        return f"decay={self.decay}, warmup={self.warmup}, batch_norm={self.batch_norm!r}"


BATCH_NORM_RULES = ("copy", "recompute")


@no_grad()
def update_batch_norm(module, batches):
    """Recompute the running statistics of every batch norm layer in `module` from its own
    activations on `batches`, as torch.optim.swa_utils.update_bn does.

    Each layer's running mean and variance are reset (0 and 1, no batches tracked), then the
    module runs in training mode over the batches with momentum None, so that each ends as the
    plain average of the batch statistics: running_mean = (1/B) sum_b mean_b, running_var =
    (1/B) sum_b var_b (unbiased). The momenta and the training mode are put back afterwards;
    parameters do not change. A module without batch norm is left alone.
    """
    norms = [m for m in module.modules() if isinstance(m, (BatchNorm1d, BatchNorm2d))]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    was_training = module.training
    for m in norms:
        m.running_mean.data[...] = 0
        m.running_var.data[...] = 1
        m.num_batches_tracked.data[...] = 0
        m.momentum = None  # the cumulative average of the batch statistics
    module.train()
    try:
        for batch in batches:
            module(batch)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        module.train(was_training)


def _pairs(averaged, current, kind):
    """zip of the copy's and the model's tensors, checking they match one to one."""
    averaged, current = list(averaged), list(current)
    if len(averaged) != len(current) or any(a.shape != c.shape for a, c in zip(averaged, current)):
        raise ValueError(f"ExponentialMovingAverage.update: the model's {kind} do not match the "
                         f"averaged copy's ({len(current)} vs {len(averaged)}, or other shapes)")
    return zip(averaged, current)
