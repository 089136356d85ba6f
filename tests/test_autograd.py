"""The engine: backward, accumulation, grad(), create_graph, no_grad, hooks, the graph dump."""
import numpy as np
import pytest

import tinygen as tg


def test_backward_matches_hand_derivation():
    # L = sum(w * x + w^2): dL/dw = x + 2w, dL/dx = w
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, -1.0], requires_grad=True)
    (w * x + w ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.data, [7.0, 0.0])
    np.testing.assert_allclose(x.grad.data, [3.0, -1.0])


def test_backward_accumulates_into_grad_until_reset():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0, 6.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_a_tensor_used_twice_gets_both_contributions():
    x = tg.tensor([2.0], requires_grad=True)
    y = x * 3
    (y * y + y).sum().backward()  # d/dx (9x^2 + 3x) = 18x + 3
    np.testing.assert_allclose(x.grad.data, [39.0])


def test_backward_on_non_scalar_without_gradient_is_refused():
    y = tg.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="scalar outputs.*shape \\(2,\\)"):
        y.backward()


def test_backward_with_explicit_gradient_is_a_vector_jacobian_product():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.backward(gradient=tg.tensor([10.0, 1.0]))
    np.testing.assert_allclose(x.grad.data, [20.0, 4.0])


def test_backward_gradient_of_wrong_shape_is_refused():
    y = tg.tensor([1.0, 2.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match="gradient has shape"):
        y.backward(tg.ones(3))


def test_backward_without_graph_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tg.tensor([1.0]) * 2).sum().backward()


def test_grad_returns_a_tuple_and_writes_no_grad_attribute():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    gx, gw = tg.grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.data, [3.0, 4.0])
    np.testing.assert_allclose(gw.data, [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_grad_of_unused_input_raises_unless_allowed():
    x = tg.tensor([1.0], requires_grad=True)
    unused = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        tg.grad((x * 2).sum(), [x, unused])
    gx, gu = tg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_grad_with_respect_to_an_intermediate_tensor():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    (gh,) = tg.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_without_create_graph_gradients_are_constants():
    x = tg.tensor([1.0], requires_grad=True)
    (g,) = tg.grad((x * x).sum(), x)
    assert not g.requires_grad and g.is_leaf
    x.grad = None
    (x * x).sum().backward()
    assert not x.grad.requires_grad


def test_create_graph_makes_the_gradient_differentiable_double_backprop():
    # The contractive penalty pattern: penalty = ||dz/dx||^2, then d penalty / dw.
    # z = sigmoid(w x): dz/dx = s(1-s) w; penalty = (s(1-s) w)^2
    x = tg.tensor([0.3], dtype="float64", requires_grad=True)
    w = tg.tensor([1.7], dtype="float64", requires_grad=True)
    z = (w * x).sigmoid()
    (dz_dx,) = tg.grad(z.sum(), x, create_graph=True)
    penalty = (dz_dx * dz_dx).sum()
    penalty.backward()

    def closed_form(wv):
        s = 1 / (1 + np.exp(-wv * 0.3))
        return (s * (1 - s) * wv) ** 2

    eps = 1e-6
    numeric = (closed_form(1.7 + eps) - closed_form(1.7 - eps)) / (2 * eps)
    np.testing.assert_allclose(w.grad.data, [numeric], rtol=1e-6)


def test_backward_create_graph_keeps_grad_in_graph():
    x = tg.tensor([2.0], dtype="float64", requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    gx = x.grad  # 3 x^2, still in the graph
    assert gx.requires_grad
    (g2,) = tg.grad(gx.sum(), x)
    np.testing.assert_allclose(g2.data, [12.0])


def test_no_grad_context_and_decorator_build_no_graph():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y._ctx is None

    @tg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    with tg.no_grad():
        with tg.enable_grad():
            assert (x * 2).requires_grad


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_intermediate_grad_is_kept_only_with_retain_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    kept = x * 2
    kept.retain_grad()
    (h * kept).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(kept.grad.data, h.data)


def test_hook_sees_and_can_replace_the_gradient():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))
    handle = x.register_hook(lambda g: g * 10)
    h.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.data, [30.0, 30.0])
    handle.remove()
    x.grad = None
    h = x * 3
    h.sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tg.tensor([1.0], dtype="float64", requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001 ** 5000], rtol=1e-9)


def test_graph_dump_names_ops_shapes_and_grad_flags():
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    x.name = "x"
    w = tg.tensor(np.ones((3, 1)))
    loss = (x @ w).relu().sum()
    text = str(tg.graph(loss))
    lines = text.splitlines()
    assert lines[0] == "#1 Sum (), requires_grad"
    assert "ReLU (2, 1), requires_grad" in lines[1]
    assert "MatMul (2, 1), requires_grad" in lines[2]
    assert "leaf 'x' (2, 3), requires_grad" in lines[3]
    assert lines[4].endswith("leaf (3, 1)")


def test_graph_dump_draws_a_shared_tensor_once():
    x = tg.tensor([1.0], requires_grad=True)
    text = str(tg.graph((x * x).sum()))
    assert text.count("(see #") == 1


def test_gradient_of_float32_input_mixed_with_float64_is_float32():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], dtype="float64", requires_grad=True)
    (x * w).sum().backward()
    assert x.grad.dtype == np.float32
    assert w.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.data, [3.0, 4.0])


def test_leaf_grads_are_writable_arrays_of_their_own():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # both gradients come from one broadcast of the same 1
    assert a.grad.data is not b.grad.data
    a.grad.data *= 2  # in place, as gradient clipping does
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


# ---- the graph is freed by backward unless retain_graph=True (PyTorch's rule) ----------------
def test_a_second_backward_through_a_freed_graph_is_refused_with_a_hint():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()


def test_retain_graph_keeps_the_graph_for_another_backward():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()  # d/dx sum x^2 = 2x, twice
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])
    (gx,) = tg.grad((x * x).sum(), x, retain_graph=True)
    np.testing.assert_allclose(gx.data, [2.0, 4.0])


def test_grad_frees_the_graph_unless_asked_and_create_graph_keeps_it():
    x = tg.tensor([3.0], requires_grad=True)
    y = x * x
    tg.grad(y.sum(), x)
    with pytest.raises(RuntimeError, match="second time"):
        tg.grad(y.sum(), x)
    z = x * x * x
    (gz,) = tg.grad(z.sum(), x, create_graph=True)  # keeps the graph, as PyTorch does
    (gz2,) = tg.grad(z.sum(), x)
    np.testing.assert_allclose([gz.item(), gz2.item()], [27.0, 27.0])


def test_backward_frees_activations_as_it_passes_them():
    import weakref

    x = tg.tensor(np.ones((4, 3)), requires_grad=True)
    hidden = (x * 2).relu()
    hidden_ref = weakref.ref(hidden)
    loss = (hidden * 3).sum()
    del hidden  # only the graph holds the activation now
    assert hidden_ref() is not None
    loss.backward(retain_graph=True)
    assert hidden_ref() is not None  # kept for another backward
    loss.backward()
    assert hidden_ref() is None  # the Mul that held it forgot it
    np.testing.assert_allclose(x.grad.data, np.full((4, 3), 12.0))


def test_graph_dump_after_backward_says_the_graph_was_freed():
    x = tg.tensor([1.0], requires_grad=True)
    loss = (x * 2).sum()
    loss.backward()
    assert "freed by backward" in str(tg.graph(loss))
