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
  AveragedModel does by default: they are themselves running averages of the live model's
  activations, which is what the copy's BatchNorm has to normalise by;
- warmup=True ramps the decay up, decay_t = min(decay, (1 + t) / (10 + t)) after t updates
  (TensorFlow's ExponentialMovingAverage with num_updates), so a short run is not dominated by its
  first weights: 0.18 at the second update, 0.5 at the ninth, 0.9 at the eighty-first.

It lives beside the optimizers, not among them: it reads weights, never gradients, and its state
is the model's (state_dict, checkpoints), not an optimizer's.
"""
import copy

import numpy as np

from .autograd import no_grad
from .nn.module import Module


class ExponentialMovingAverage(Module):
    """A copy of `model` (as `self.module`) whose weights follow the model's moving average.

    decay: in [0, 1]; call update(model) after each optimizer step of the model. Calling it runs
    the averaged copy: ema(x) = ema.module(x).
    """

    def __init__(self, model, decay=0.999, warmup=False):
        super().__init__()
        if not 0 <= decay <= 1:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.module = copy.deepcopy(model).requires_grad_(False)  # never learned directly
        self.register_buffer("n_averaged", np.array(0, dtype=np.int64))  # updates so far

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
        for averaged, current in _pairs(self.module.parameters(), model.parameters(), "parameters"):
            if first:
                averaged.data[...] = current.data
            else:
                averaged.data *= decay  # ema <- decay * ema + (1 - decay) * w
                averaged.data += (1 - decay) * current.data
        for averaged, current in _pairs(self.module.buffers(), model.buffers(), "buffers"):
            averaged.data[...] = current.data
        self.n_averaged.data += 1  # in place: the 0-d array keeps its dtype

    def extra_repr(self):
        return f"decay={self.decay}, warmup={self.warmup}"


def _pairs(averaged, current, kind):
    """zip of the copy's and the model's tensors, checking they match one to one."""
    averaged, current = list(averaged), list(current)
    if len(averaged) != len(current) or any(a.shape != c.shape for a, c in zip(averaged, current)):
        raise ValueError(f"ExponentialMovingAverage.update: the model's {kind} do not match the "
                         f"averaged copy's ({len(current)} vs {len(averaged)}, or other shapes)")
    return zip(averaged, current)
