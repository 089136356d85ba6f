"""Module, Parameter, Sequential, ModuleList: registration, traversal, modes, state dicts, repr."""
import numpy as np
import pytest

import tinygen
from tinygen import nn


class TwoLayer(nn.Module):
    """A small model with a nested Sequential, a buffer and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        self.head = nn.Linear(3, 2, bias=False)
        self.register_buffer("counter", np.zeros(1, dtype=np.float32))
        self.note = "not a parameter"

    def forward(self, x):
        return self.head(self.encoder(x))


def test_named_parameters_use_pytorch_dotted_names_in_definition_order():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["encoder.0.weight", "encoder.0.bias", "head.weight"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())


def test_shared_parameter_is_listed_once():
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = nn.Linear(2, 2)
    model.b.weight = model.a.weight
    assert len(list(model.parameters())) == 3  # a.weight, a.bias, b.bias


def test_children_modules_and_buffers():
    model = TwoLayer()
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "Linear"]
    assert [name for name, _ in model.named_modules()] == [
        "", "encoder", "encoder.0", "encoder.1", "head",
    ]
    assert [name for name, _ in model.named_buffers()] == ["counter"]
    assert model.note == "not a parameter"


def test_train_and_eval_propagate_to_every_submodule():
    model = TwoLayer()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_sets_none_by_default_and_zeros_on_request():
    model = TwoLayer()
    model(tinygen.randn(5, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.data == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_holds_copies_of_parameters_and_buffers():
    model = TwoLayer()
    state = model.state_dict()
    assert list(state) == ["counter", "encoder.0.weight", "encoder.0.bias", "head.weight"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["head.weight"][...] = 7
    assert not np.any(model.head.weight.data == 7)


def test_load_state_dict_round_trip_copies_in_place():
    source, target = TwoLayer(), TwoLayer()
    weight_array = target.head.weight.data
    target.load_state_dict(source.state_dict())
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert target.head.weight.data is weight_array  # optimizers holding the array still see it
    x = tinygen.randn(3, 4)
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_load_state_dict_shape_mismatch_names_key_and_both_shapes():
    model = TwoLayer()
    state = model.state_dict()
    state["head.weight"] = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"head\.weight.*\(3, 2\).*\(2, 3\)"):
        model.load_state_dict(state)


def test_load_state_dict_strict_reports_missing_and_unexpected_keys():
    model = TwoLayer()
    state = model.state_dict()
    del state["encoder.0.bias"]
    state["extra.weight"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"missing keys: \['encoder\.0\.bias'\]"):
        model.load_state_dict(state)
    with pytest.raises(ValueError, match=r"unexpected keys: \['extra\.weight'\]"):
        model.load_state_dict(state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["encoder.0.bias"] and unexpected == ["extra.weight"]


def test_load_state_dict_accepts_tensors_and_keeps_dtype():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": tinygen.ones(2, 2, dtype="float64"), "bias": [1.0, 2.0]})
    assert model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.bias.data, [1.0, 2.0])


def test_repr_is_an_indented_tree_like_pytorch():
    expected = (
        "TwoLayer(\n"
        "  (encoder): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=2, bias=False)\n"
        ")"
    )
    assert repr(TwoLayer()) == expected


def test_sequential_indexing_slicing_append_and_forward_order():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Tanh)
    assert len(seq[:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3
    x = tinygen.randn(4, 2)
    manual = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).data, manual.data)
    assert [name for name, _ in seq.named_parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias",
    ]


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3
    assert len(list(layers.parameters())) == 6
    assert "2.bias" in layers.state_dict()


def test_assigning_a_plain_tensor_to_a_parameter_name_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = tinygen.ones(2, 2)


def test_attribute_before_super_init_gives_a_clear_error():
    class Forgot(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Forgot()


def test_module_without_forward_says_so():
    with pytest.raises(TypeError, match="no forward method"):
        nn.Module()(tinygen.ones(1))


def test_double_converts_parameters_and_buffers_in_place():
    model = TwoLayer()
    params_before = list(model.parameters())
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.counter.dtype == np.float64
    assert all(a is b for a, b in zip(params_before, model.parameters()))
    assert model(tinygen.randn(2, 4, dtype="float64")).dtype == np.float64


def test_apply_visits_children_before_parent():
    visited = []
    TwoLayer().apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "ReLU", "Sequential", "Linear", "TwoLayer"]


def test_requires_grad_false_freezes_parameters():
    model = TwoLayer().requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    out = model(tinygen.randn(2, 4))
    assert not out.requires_grad


def test_delattr_removes_a_registered_module():
    model = TwoLayer()
    del model.head
    assert [name for name, _ in model.named_children()] == ["encoder"]
