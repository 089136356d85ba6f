"""Module, Parameter, Sequential and ModuleList:
how models hold their weights (PyTorch's vocabulary).

A Module keeps three kinds of attributes, found by assignment (`self.fc = Linear(2, 3)`):
parameters (learnable Tensors), buffers (state such as BatchNorm's running mean, saved but not
learned) and sub-modules. Everything else walks that tree: parameters(), state_dict(), train().
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import devices
from ..tensor import Tensor, as_tensor


class Parameter(Tensor):
    """A Tensor that a Module learns: requires_grad=True unless told otherwise."""

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model.
    Subclasses set attributes in __init__ and define forward."""

    def __init__(self):
        # object.__setattr__ because our own __setattr__ needs these dicts to exist.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registering attributes ----------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign '{name}' before Module.__init__() call "
                f"(call super().__init__() first in {type(self).__name__}.__init__)"
            )
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter '{name}' "
                    "(wrap it in tinygen.nn.Parameter, or assign None)"
                )
            self._parameters[name] = None
        elif name in self._buffers:
            self._buffers[name] = None if value is None else _as_tensor(value)
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}'")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Called only when normal lookup fails: look in the three registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name):
        """Remove name from every registry; True if it was in one."""
        found = False
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                found = True
        if name in self.__dict__:
            object.__delattr__(self, name)
        return found

    def register_parameter(self, name, param):
        """Add a Parameter (or None, for an absent one such as bias=False) under name."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor):
        """Add a buffer: state saved in state_dict but not learned (e.g. running statistics)."""
        self._forget(name)
        self._buffers[name] = None if tensor is None else _as_tensor(tensor)

    # ---- calling ---------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if getattr(type(self), "forward", None) is None:
            raise TypeError(f"{type(self).__name__} has no forward method: define forward(...)")
        return self.forward(*args, **kwargs)

    # ---- walking the tree -----------------------------------------------------------------------
    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix="", remove_duplicate=True, _seen=None):
        """This module and every module below it, with dotted names ("" for this one): each once,
        or under every name it has with remove_duplicate=False (what state_dict lists)."""
        seen = set() if _seen is None else _seen
        if remove_duplicate:
            if id(self) in seen:
                return
            seen.add(id(self))
        yield prefix, self
        for name, module in self.named_children():
            yield from module.named_modules(_join(prefix, name), remove_duplicate, seen)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_members(self, registry_name, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry_name).items():
                if value is None or id(value) in seen:
                    continue  # shared weights are listed once
                seen.add(id(value))
                yield _join(module_prefix, name), value

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs, e.g. ("0.weight", ...), each shared parameter once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call fn(module) on every sub-module, then on this one (e.g. a custom initialisation)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients --------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: dropout is the identity, batch norm uses its running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter (set to None, or to zeros)."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad = as_tensor(np.zeros_like(param.data))

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze (True) every parameter; returns self."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, *args, device=None, dtype=None):
        """Move parameters and buffers to a device and/or convert the floating ones to a dtype, in
        place; returns self. As in PyTorch: model.to("cuda"), model.to(np.float64), or both.

        Moving keeps each parameter's identity (an optimizer made before still holds it), and
        moves its gradient along; create optimizers after the move, as PyTorch advises, or load
        their state_dict afterwards (it goes to each parameter's device)."""
        device, dtype = devices.device_and_dtype("Module.to", args, device, dtype)
        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for value in registry.values():
                    if value is None:
                        continue
                    if dtype is not None and np.issubdtype(value.dtype, np.floating):
                        value.data = value.data.astype(dtype)
                        value.grad = None
                    if device is not None:
                        value.data = devices.to_device(value.data, device)
                        if value.grad is not None:
                            value.grad = as_tensor(devices.to_device(value.grad.data, device))
        return self

    def cpu(self):
        return self.to(devices.CPU)

    def cuda(self):
        return self.to("cuda")

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ---- saving and loading ---------------------------------------------------------------------
    def state_dict(self):
        """{dotted name: NumPy array (a copy, on the host)} of every parameter and buffer, PyTorch's
        names."""
        return OrderedDict((key, devices.host_copy(value.data))
                           for key, value in self._state_tensors())

    def _state_tensors(self):
        """(dotted name, Tensor) for every parameter and buffer, module by module, as saved.
        A module used twice is listed under both names, as PyTorch saves it."""
        for module_prefix, module in self.named_modules(remove_duplicate=False):
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        yield _join(module_prefix, name), value

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from state_dict into the parameters and buffers, in place.

        The values may be NumPy arrays, tinygen Tensors or PyTorch tensors (what torch's
        state_dict() gives); each is converted to the dtype of the tensor it fills, as PyTorch's
        copy_ does (float32 weights into a float64 model, int64 counters into int64 buffers).
        Shapes must match. With strict=True, missing and unexpected keys are errors; otherwise
        they are returned as (missing_keys, unexpected_keys).
        """
        own = OrderedDict(self._state_tensors())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        sources = {key: _as_array(state_dict[key]) for key in own if key in state_dict}
        problems = []
        for key, source in sources.items():
            if source.shape != own[key].shape:
                problems.append(
                    f"size mismatch for {key}: the state has shape {source.shape}, "
                    f"the model has shape {own[key].shape}"
                )
        if strict and missing:
            problems.append(f"missing keys: {missing}" + _missing_counter_hint(missing))
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if problems:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for key, source in sources.items():
            # into the model's arrays, on the model's device (converted to their dtype there)
            own[key].data[...] = devices.to_device(source, own[key].device)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------------------------
    def extra_repr(self):
        """The settings shown inside the parentheses, e.g. "in_features=2, out_features=3"."""
        return ""

    def __repr__(self):
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n" + "\n".join(lines) + "\n)"


def parameter_device(module):
    """The device of a module's parameters: cpu, or cuda after module.to("cuda")."""
    for param in module.parameters():
        return param.device
    raise ValueError(f"{type(module).__name__} has no parameters, so no device to follow")


def parameter_dtype(module):
    """The dtype of a module's parameters: float32, or float64 after module.double()."""
    for param in module.parameters():
        return param.dtype
    raise ValueError(f"{type(module).__name__} has no parameters, so no dtype to follow")


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _as_tensor(value):
    return value if isinstance(value, Tensor) else Tensor(value, dtype=np.asarray(value).dtype)


def _as_array(value):
    """The NumPy array behind a state_dict value: an array, a tinygen Tensor or a torch.Tensor."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, maybe on a GPU
        value = value.detach().cpu()
        try:
            return value.numpy()
        except TypeError:  # bfloat16 and float8 have no NumPy dtype: through float32
            return value.float().numpy()
    return np.asarray(value)


def _missing_counter_hint(missing):
    """A hint when only BatchNorm counters are missing: a checkpoint from before they were saved."""
    if all(key.endswith("num_batches_tracked") for key in missing):
        return (" (BatchNorm's num_batches_tracked: the state was saved before tinygen kept the "
                "counter; load it with strict=False to keep the model's counters)")
    return ""


class Sequential(Module):
    """Modules applied one after the other: Sequential(Linear(2, 3), ReLU())."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                setattr(self, name, module)
        else:
            for index, module in enumerate(modules):
                setattr(self, str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        setattr(self, str(len(self)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
