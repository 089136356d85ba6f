"""Losses for the generative models, composed from differentiable Tensor ops.

No loss here has a backward of its own: each is written with ops whose backwards are Tensor ops,
so every loss can be differentiated to any order (create_graph=True).

Conventions shared by every loss:
    reduction   "mean": over all elements (as PyTorch); "sum"; "none": the elementwise loss;
                "batchmean": sum / size of the first axis (a per-sample loss, as a VAE's ELBO
                wants).
    shapes      input and target must have the same shape: unlike PyTorch (which warns), losses
                never broadcast them silently. Weights and variances may broadcast as documented.
    targets     plain NumPy arrays (and numbers) are accepted and wrapped in a Tensor of the input's
                dtype; a Tensor of another dtype (bool or uint8 pixels, say) is cast to it.
"""
import math

import numpy as np

from .. import ops
from ..devices import is_device_array, to_device
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none", "batchmean")
LOG_2PI = math.log(2 * math.pi)
BCE_LOG_FLOOR = -100.0  # PyTorch clamps each log term of BCE here: p = 0 costs 100 nats, not inf


# ---- argument checks and conversions -------------------------------------------------------------
def _check_reduction(name, reduction):
    if reduction not in REDUCTIONS:
        options = ", ".join(repr(r) for r in REDUCTIONS)
        raise ValueError(f"{name}: reduction must be one of {options}; got {reduction!r}")


def _check_input(name, x, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name}: {what} must be floating-point, got {x.dtype}")


def _like(value, like):
    """value as a Tensor of like's dtype: arrays and numbers are wrapped (a number on like's
    device, an array where it is), other dtypes are cast."""
    if not isinstance(value, Tensor):
        device = like.device if np.ndim(value) == 0 and not is_device_array(value) else None
        return Tensor(value, dtype=like.dtype, device=device)
    return value if value.dtype == like.dtype else value.astype(like.dtype)


def _check_same_shape(name, a, b, a_name="input", b_name="target"):
    if a.shape != b.shape:
        raise ValueError(
            f"{name}: {a_name} shape {a.shape} and {b_name} shape {b.shape} differ "
            "(losses do not broadcast them)"
        )


def _check_broadcasts_to(name, value, shape, what):
    """A weight may broadcast to the input's shape (per-class weights, say) but not enlarge it."""
    try:
        fits = np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: {what} of shape {value.shape} does not broadcast to the input's shape {shape}"
        )


def _reduce(loss, reduction):
    """Apply a reduction (already checked) to an elementwise loss."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if loss.ndim == 0:  # batchmean of a 0-d loss: a batch of one (as torch's kl_div)
        return loss.sum()
    return loss.sum() * (1.0 / loss.shape[0])  # batchmean


def _weighted(name, loss, weight):
    """loss * weight, with weight (Tensor, array or number) broadcast to the loss's shape."""
    if weight is None:
        return loss
    weight = _like(weight, loss)
    _check_broadcasts_to(name, weight, loss.shape, "weight")
    return loss * weight


# ---- regression --------------------------------------------------------------------------------
def mse_loss(input, target, reduction="mean"):
    """Squared error (input - target)^2, reduced. input, target: (*) of the same shape."""
    _check_reduction("mse_loss", reduction)
    _check_input("mse_loss", input)
    target = _like(target, input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    """Absolute error |input - target|, reduced (gradient sign(0) = 0 at a tie, as PyTorch).

    input, target: (*) of the same shape.
    """
    _check_reduction("l1_loss", reduction)
    _check_input("l1_loss", input)
    target = _like(target, input)
    _check_same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


# ---- binary cross-entropy ------------------------------------------------------------------------
def _log_floored(p):
    """max(log p, -100), PyTorch's BCE clamp; its gradient is that of the clamped function.

    Where the floor is active the gradient is 0, so p = 0 needs care: log(0) = -inf, and log's
    backward would give 0 / 0 = nan there. So where p = 0, log is taken of 1 and replaced by -100.
    """
    positive = p.data > 0
    if not positive.all():
        safe = ops.where(positive, p, 1.0)
        return ops.where(positive, safe.log().clip(min=BCE_LOG_FLOOR), BCE_LOG_FLOOR)
    return p.log().clip(min=BCE_LOG_FLOOR)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Cross-entropy of probabilities: -w [y log p + (1 - y) log(1 - p)], each log floored at -100.

    input: probabilities p in [0, 1], shape (*); target: y of the same shape (soft labels allowed);
    weight: broadcast to (*). The floor makes a confident wrong answer (p = 0, y = 1) cost 100
    nats, not inf. The gradient is the exact derivative of this floored loss: 0 from a floored log
    term (PyTorch instead divides by max(p (1 - p), 1e-12) in its hand-written backward). On
    logits, binary_cross_entropy_with_logits is more stable and gives the gradient sigmoid(x) - y.
    """
    name = "binary_cross_entropy"
    _check_reduction(name, reduction)
    _check_input(name, input)
    inside = (input.data >= 0) & (input.data <= 1)  # nan is outside too
    if not inside.all():
        example = input.data[~inside].flat[0]
        raise ValueError(
            f"{name}: input must hold probabilities in [0, 1], but {np.sum(~inside)} value(s) "
            f"lie outside (e.g. {example}); for logits use binary_cross_entropy_with_logits"
        )
    target = _like(target, input)
    _check_same_shape(name, input, target)
    loss = -(target * _log_floored(input) + (1 - target) * _log_floored(1 - input))
    return _reduce(_weighted(name, loss, weight), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Cross-entropy of logits x: -w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))].

    input: logits x, shape (*); target: y of the same shape; weight and pos_weight (pw, the weight
    of positive examples, e.g. per class (C,)): broadcast to (*). Stable for any |x|:
    log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x) never overflow, and
    without pos_weight the gradient is w (sigmoid(x) - y), with no nan or inf even at x = +-1000.
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    _check_input(name, input)
    target = _like(target, input)
    _check_same_shape(name, input, target)
    if pos_weight is None:
        # y softplus(-x) + (1 - y) softplus(x) = softplus(x) - x y; d/dx = sigmoid(x) - y
        loss = ops.softplus(input) - input * target
    else:
        pos_weight = _like(pos_weight, input)
        _check_broadcasts_to(name, pos_weight, input.shape, "pos_weight")
        loss = pos_weight * target * ops.softplus(-input) + (1 - target) * ops.softplus(input)
    return _reduce(_weighted(name, loss, weight), reduction)


# ---- Gaussian likelihoods and the VAE's KL term --------------------------------------------------
def _var_for(name, var, input):
    """var as a Tensor that broadcasts against input, following torch's gaussian_nll_loss rules."""
    var = _like(var, input)  # a number or a 0-d var: one variance for every element
    if var.ndim > 0 and var.shape == input.shape[:-1]:
        var = var.unsqueeze(-1)  # one variance per row of the last axis: (B, D) -> (B, D, 1)
    elif var.ndim > 0 and var.shape != input.shape:
        differ = [i for i, (n, m) in enumerate(zip(input.shape, var.shape)) if n != m]
        if var.ndim != input.ndim or len(differ) != 1 or var.shape[differ[0]] != 1:
            raise ValueError(
                f"{name}: var of shape {var.shape} does not fit the input's shape {input.shape}: "
                "give that shape, that shape without its last axis, that shape with one axis of "
                "length 1, or a number"
            )
    if np.any(var.data < 0):
        raise ValueError(f"{name}: var has negative entries")
    return var


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood with variance, as torch.nn.functional.gaussian_nll_loss.

    0.5 (log v + (input - target)^2 / v) [+ 0.5 log(2 pi) if full], where v = max(var, eps).
    input (the mean), target: (*) of the same shape; var: (*), (*) without its last axis, (*) with
    one axis of length 1, or a number; var >= 0. As torch, the clamp at eps is invisible to the
    gradient (torch clamps a copy under no_grad): var below eps gets the gradient of the loss at
    v = eps, so it is still pushed up when the residual is large.
    """
    name = "gaussian_nll_loss"
    _check_reduction(name, reduction)
    _check_input(name, input)
    target = _like(target, input)
    _check_same_shape(name, input, target)
    var = _var_for(name, var, input)
    # Forward value max(var, eps), gradient as if unclamped: the shift is a constant.
    var = var + (var.clip(min=eps) - var).detach()
    diff = input - target
    loss = 0.5 * (var.log() + diff * diff / var)
    if full:
        loss = loss + 0.5 * LOG_2PI
    return _reduce(loss, reduction)


def gaussian_nll(target, mean, logvar, reduction="mean"):
    """-log N(target; mean, exp(logvar)) in nats, elementwise: the VAE's Gaussian decoder.

    0.5 (log(2 pi) + logvar + (target - mean)^2 exp(-logvar)). target, mean: (*) of the same shape;
    logvar: broadcast to (*) (per element, per feature, or one learned number). Exact: no clamp,
    and the variance never appears in a denominator.
    """
    name = "gaussian_nll"
    _check_reduction(name, reduction)
    _check_input(name, mean, "mean")
    target = _like(target, mean)
    _check_same_shape(name, target, mean, "target", "mean")
    logvar = _like(logvar, mean)
    _check_broadcasts_to(name, logvar, mean.shape, "logvar")
    diff = target - mean
    loss = 0.5 * (LOG_2PI + logvar + diff * diff * (-logvar).exp())
    return _reduce(loss, reduction)


def kl_normal(mu, logvar, reduction="mean"):
    """KL( N(mu, exp(logvar)) || N(0, I) ) per element, reduced: the VAE's prior term.

    mu, logvar: (*) of the same shape; reduction="batchmean" on (B, latent) gives the KL summed over
    latent dimensions and averaged over the batch.
    """
    name = "kl_normal"
    _check_reduction(name, reduction)
    _check_input(name, mu, "mu")
    logvar = _like(logvar, mu)
    _check_same_shape(name, mu, logvar, "mu", "logvar")
    # Kingma & Welling 2014, appendix B: -KL = 0.5 (1 + log s^2 - mu^2 - s^2)
    loss = -0.5 * (1 + logvar - mu * mu - logvar.exp())
    return _reduce(loss, reduction)


# ---- classification ------------------------------------------------------------------------------
def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of logits (N, C) Tensor for integer labels (N,) -> scalar Tensor.

    Differentiable to any order (Tensor ops only); the gradient per row is softmax(logits) - onehot.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"cross_entropy: logits must be a Tensor, got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
    labels = getattr(labels, "data", labels)
    if not is_device_array(labels):  # a list or NumPy array: copied to the logits' device
        labels = to_device(np.asarray(labels), logits.device)
    n, c = logits.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"cross_entropy: labels must be {n} integers for logits {logits.shape}, "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if n and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {c}), got [{labels.min()}, {labels.max()}]"
        )
    # -log softmax(l)_y = logsumexp(l) - l_y
    picked = logits[np.arange(n), labels]
    return (logits.logsumexp(axis=1) - picked).mean()
