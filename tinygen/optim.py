"""Optimizers: SGD (with momentum) and Adam, with PyTorch's update rules, groups and state_dict.

    opt = tinygen.optim.Adam(model.parameters(), lr=1e-3)
    for x in batches:
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()

An optimizer updates each parameter's `.data` array in place, so every reference to the parameter
sees the new values. Its per-parameter state (momentum buffers, Adam's moments) has the parameter's
dtype and shape.
"""
import copy
import math

import numpy as np

from . import devices
from .autograd import enable_grad, no_grad
from .backend import kernel
from .tensor import Tensor, as_tensor


class Optimizer:
    """Base class: holds param_groups and per-parameter state; subclasses define `_update`.

    params: an iterable of Tensors, or of dicts {"params": [...], "lr": ...} whose options override
    `defaults` for that group (PyTorch's param_groups).
    """

    _state_keys = ()  # the entries of a parameter's state, checked by load_state_dict

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            # A Tensor is iterable (over its rows), so it would otherwise be taken for a list.
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got a Tensor of shape {params.shape}; pass [tensor]"
            )
        self.defaults = defaults
        self.state = {}  # parameter -> dict of its state (Tensors hash by identity)
        self.param_groups = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict {"params": [...], option: value, ...}; missing options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(
                f"a parameter group must be a dict, but got a {type(param_group).__name__}"
            )
        group_index = len(self.param_groups)
        unknown = sorted(set(param_group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(
                f"parameter group {group_index} has unknown option(s) {unknown}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )
        params = param_group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif params is None:
            raise ValueError(f"parameter group {group_index} has no 'params' entry")
        params = list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        first_index = len(seen)
        for i, p in enumerate(params, start=first_index):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, "
                    f"but parameter {i} is a {type(p).__name__}"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"optimizer can only optimize Tensors that require grad, but parameter {i} "
                    f"(shape {p.shape}) has requires_grad=False"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (parameter {i}, shape {p.shape})"
                )
            if id(p) in seen:
                raise ValueError(f"parameter {i} (shape {p.shape}) appears more than once")
            seen.add(id(p))
        group = dict(self.defaults)
        group.update(param_group)
        group["params"] = params
        self._check_options(group)
        self.param_groups.append(group)

    def _check_options(self, group):
        """Raise ValueError for an invalid hyper-parameter of a group (subclasses extend this)."""
        if group["lr"] < 0:
            raise ValueError(f"Invalid learning rate: {group['lr']} (must be >= 0)")
        if group["weight_decay"] < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']} (must be >= 0)")

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set .grad to None (the default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    # A fresh array rather than filling in place: a grad array may be a read-only
                    # broadcast view, or shared with another tensor's grad.
                    p.grad = as_tensor(np.zeros_like(p.grad.data))

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure() if one is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.shape != p.shape:
                        raise ValueError(
                            f"step: a parameter of shape {p.shape} "
                            f"has a grad of shape {p.grad.shape}"
                        )
                    grad = p.grad.data.astype(p.dtype, copy=False)
                    self._update(p, grad, self.state.setdefault(p, {}), group)
        return loss

    def state_dict(self):
        """{"state": {param index: {...}}, "param_groups": [{options..., "params": [indices]}]}.

        Parameters are numbered 0, 1, ... across the groups in order; arrays are copies.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for p, p_state in self.state.items():
            if p_state:
                state[index[id(p)]] = {k: _copy_value(v) for k, v in p_state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Take the options and state of `state_dict` (from state_dict()) after checking it fits."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: the state dict has {len(saved_groups)} parameter group(s), "
                f"this optimizer has {len(self.param_groups)}"
            )
        # Saved parameter indices map to this optimizer's parameters by position, as in PyTorch.
        params_by_index = {}
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: parameter group {g} has {len(saved['params'])} parameter(s) "
                    f"in the state dict and {len(group['params'])} in this optimizer"
                )
            if set(saved) != set(group):
                raise ValueError(
                    f"load_state_dict: parameter group {g} has options {sorted(saved)} in the "
                    f"state dict, but {type(self).__name__} has {sorted(group)}"
                )
            params_by_index.update(zip(saved["params"], group["params"]))

        new_state = {}
        for index, saved_state in state_dict["state"].items():
            if index not in params_by_index:
                raise ValueError(
                    f"load_state_dict: state for parameter {index}, which is in no parameter group"
                )
            p = params_by_index[index]
            if not saved_state:
                continue
            if set(saved_state) != set(self._state_keys):
                raise ValueError(
                    f"load_state_dict: state of parameter {index} has entries "
                    f"{sorted(saved_state)}, {type(self).__name__} needs {sorted(self._state_keys)}"
                )
            new_state[p] = {}
            for key, value in saved_state.items():
                if isinstance(value, Tensor):
                    value = value.data
                if isinstance(value, np.ndarray) or devices.is_device_array(value):
                    if value.shape != p.shape:
                        raise ValueError(
                            f"load_state_dict: state '{key}' of parameter {index} has shape "
                            f"{value.shape}, but the parameter has shape {p.shape}"
                        )
                    # a copy, in the parameter's dtype, on the parameter's device (as PyTorch)
                    value = devices.to_device(value.astype(p.dtype, copy=True), p.device)
                new_state[p][key] = value

        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new_group["params"] = group["params"]
            self._check_options(new_group)
            new_groups.append(new_group)
        self.param_groups = new_groups
        self.state = new_state


def _copy_value(value):
    """A state entry for state_dict: arrays as host copies (wherever they live), numbers as they
    are."""
    if isinstance(value, np.ndarray) or devices.is_device_array(value):
        return devices.host_copy(value)
    return copy.deepcopy(value)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay."""

    _state_keys = ("momentum_buffer",)  # only with momentum; otherwise SGD keeps no state

    def __init__(self, params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, group):
        super()._check_options(group)
        if group["momentum"] < 0:
            raise ValueError(f"Invalid momentum value: {group['momentum']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening "
                f"(got momentum={group['momentum']}, dampening={group['dampening']})"
            )

    def _update(self, p, grad, state, group):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data  # g <- g + wd * p  (L2 penalty wd/2 |p|^2)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.copy()  # b_1 = g_1
            else:
                buf *= momentum  # b_t = momentum * b_{t-1} + (1 - dampening) * g_t
                buf += (1 - dampening) * grad
            state["momentum_buffer"] = buf
            # Nesterov looks ahead along the momentum: g <- g + momentum * b_t; otherwise g <- b_t
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= lr * grad  # p <- p - lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1); weight_decay adds wd * p to the grad (not AdamW)."""

    _state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, group):
        super()._check_options(group)
        if group["eps"] < 0:
            raise ValueError(f"Invalid epsilon value: {group['eps']} (must be >= 0)")
        for i, beta in enumerate(group["betas"]):
            if not 0 <= beta < 1:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta} (must be in [0, 1))")

    def _update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        step_size = group["lr"] / (1 - beta1**t)
        adam_update = kernel("adam_update", p.data)  # one pass (kernels/numba_optim.py), or None
        if adam_update is not None and one_contiguous_layout(p.data, m, v):
            # the same formula in one pass (kernels/numba_optim.py). A gradient in another
            # order (the backward of a transpose, say) is copied into C order first; the layers'
            # gradients arrive in order (nn.Linear's included: ops/linear.py), uncopied.
            grad = np.ascontiguousarray(grad)
            adam_update(p.data, grad, m, v, beta1, beta2, step_size,
                              math.sqrt(1 - beta2**t), group["eps"], group["weight_decay"])
            return
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data  # g <- g + wd * p
        m *= beta1  # m <- b1 m + (1 - b1) g
        m += (1 - beta1) * grad
        v *= beta2  # v <- b2 v + (1 - b2) g^2
        v += (1 - beta2) * np.square(grad)
        # p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
        step = np.sqrt(v)  # one temporary, updated in place (this runs for every parameter)
        step /= math.sqrt(1 - beta2**t)
        step += group["eps"]
        np.divide(m, step, out=step)
        step *= step_size
        p.data -= step


def one_contiguous_layout(*arrays):
    """True when the arrays are NumPy arrays of one shape and dtype, all C-contiguous (a fused
    kernel may then walk them as flat vectors in step; the moments are made like the parameter)."""
    first = arrays[0]
    return all(type(a) is np.ndarray and a.shape == first.shape and a.dtype == first.dtype
               and a.flags.c_contiguous for a in arrays)
