"""SGD and Adam against their rules (re-stated in NumPy, worked by hand); groups, state, errors."""
import re

import numpy as np
import pytest

import tinygen as tg
from tinygen import optim

STEPS = 4


def grad_at(p, t):
    """A gradient that depends on the parameter and on the step, so that errors compound."""
    return np.sin(3.0 * p) + 0.1 * (t + 1) * np.cos(p)


def param(values, dtype=tg.float64):
    return tg.tensor(values, requires_grad=True, dtype=dtype)


def set_grad(p, g):
    p.grad = tg.tensor(g, dtype=p.dtype)


def run(opt, params, steps=STEPS):
    """Take `steps` optimizer steps with grad_at; the parameter values after each step."""
    history = []
    for t in range(steps):
        for p in params:
            set_grad(p, grad_at(p.data, t))
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


# ---- the update rules, re-stated in NumPy ----------------------------------------------------
def sgd_reference(p, steps, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0):
    p = p.copy()
    buf = None
    history = []
    for t in range(steps):
        g = grad_at(p, t) + weight_decay * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        history.append(p.copy())
    return history


def adam_reference(p, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
    p = p.copy()
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    history = []
    for t in range(1, steps + 1):
        g = grad_at(p, t - 1) + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(p.copy())
    return history


P0 = np.array([[0.5, -1.2, 2.0], [0.3, 0.0, -0.7]])

SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "momentum_dampening": dict(lr=0.05, momentum=0.8, dampening=0.3),
    "nesterov": dict(lr=0.1, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "everything": dict(lr=0.2, momentum=0.5, nesterov=True, weight_decay=0.1),
}

ADAM_CASES = {
    "defaults": dict(),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "betas": dict(lr=0.05, betas=(0.5, 0.9)),
    "large_eps": dict(lr=0.1, betas=(0.8, 0.99), eps=0.1, weight_decay=0.01),
}


@pytest.mark.parametrize("name", SGD_CASES)
def test_sgd_matches_numpy_restatement_over_several_steps(name):
    p = param(P0)
    history = run(optim.SGD([p], **SGD_CASES[name]), [p])
    for (got,), want in zip(history, sgd_reference(P0, STEPS, **SGD_CASES[name])):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.fixture
def adam_kernel_calls(monkeypatch):
    """The calls of the numba backend's fused Adam kernel, counted (it still runs)."""
    from tinygen.kernels import numba_conv
    calls = []
    fused = numba_conv.adam_update

    def counted(*args):
        calls.append(args[0].shape)
        return fused(*args)

    monkeypatch.setattr(numba_conv, "adam_update", counted)
    return calls


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", ADAM_CASES)
def test_adam_matches_numpy_restatement_over_several_steps(name, backend, adam_kernel_calls):
    """numpy: NumPy's ten passes; numba: the fused kernel (kernels/numba_optim.py)."""
    p = param(P0)
    with tg.backend.use(backend):
        history = run(optim.Adam([p], **ADAM_CASES[name]), [p])
    for (got,), want in zip(history, adam_reference(P0, STEPS, **ADAM_CASES[name])):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert len(adam_kernel_calls) == (STEPS if backend == "numba" else 0)


def test_the_fused_adam_equals_numpys_in_float32_and_skips_arrays_it_cannot_walk(
        adam_kernel_calls):
    """float32: the two paths round differently (float64 inside the kernel), by an ulp or so.
    A gradient in another order is copied into C order for the kernel; a parameter whose array
    is not C-contiguous goes through NumPy's passes."""
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((64, 33)).astype(np.float32)
    results = {}
    for backend in ("numpy", "numba"):
        p = param(p0, dtype=tg.float32)
        opt = optim.Adam([p], lr=1e-3, betas=(0.5, 0.999), weight_decay=0.01)
        with tg.backend.use(backend):
            for t in range(5):
                set_grad(p, grad_at(p.data, t).astype(np.float32))
                opt.step()
        assert p.dtype == np.float32 and opt.state[p]["exp_avg"].dtype == np.float32
        results[backend] = p.data.copy()
    assert len(adam_kernel_calls) == 5
    np.testing.assert_allclose(results["numba"], results["numpy"], rtol=1e-6, atol=1e-7)
    p = param(p0, dtype=tg.float32)  # a C-ordered parameter, its gradient in Fortran order (as a
    opt = optim.Adam([p], lr=1e-3)   # Linear layer's weight gradient arrives): the kernel runs
    p.grad = tg.tensor(np.asfortranarray(np.ones_like(p0)), dtype=tg.float32)
    with tg.backend.use("numba"):
        opt.step()
    assert len(adam_kernel_calls) == 6
    np.testing.assert_allclose(p.data, p0 - 1e-3, rtol=1e-5, atol=1e-7)  # step 1: lr * sign(g)
    transposed = param(p0.T, dtype=tg.float32)  # a view in Fortran order
    transposed.data = np.array(p0.T, order="F")  # a copy: p0 itself stays as it is
    opt = optim.Adam([transposed], lr=1e-3)
    set_grad(transposed, np.ones_like(p0.T))
    with tg.backend.use("numba"):
        opt.step()
    assert len(adam_kernel_calls) == 6  # not the kernel
    np.testing.assert_allclose(transposed.data, p0.T - 1e-3, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("size", [1, 4096, 100_003])
def test_the_fused_updates_give_the_same_bits_on_one_thread_and_in_parallel(size, monkeypatch):
    """kernels/numba_optim.py runs small parameters on one thread and large ones in parallel
    chunks (PARALLEL_MIN_SIZE): every element must get the same arithmetic either way."""
    from tinygen.kernels import numba_optim

    rng = np.random.default_rng(size)
    p0, g, m0, v0 = (rng.standard_normal(size).astype(np.float32) for _ in range(4))
    v0 = np.abs(v0)
    results = {}
    for threshold in (np.inf, 0):  # one thread; parallel chunks (several when size > 4096)
        monkeypatch.setattr(numba_optim, "PARALLEL_MIN_SIZE", threshold)
        p, m, v, averaged = p0.copy(), m0.copy(), v0.copy(), m0.copy()
        numba_optim.adam_update(p, g, m, v, 0.5, 0.999, 1e-3, 0.3, 1e-8, 0.01)
        numba_optim.ema_update(averaged, p0, 0.9)
        results[threshold] = (p, m, v, averaged)
    for one_thread, parallel in zip(results[np.inf], results[0]):
        np.testing.assert_array_equal(parallel, one_thread)
    m_expected = 0.5 * m0.astype(np.float64) + 0.5 * (g + 0.01 * p0.astype(np.float64))
    np.testing.assert_allclose(results[0][1], m_expected, rtol=1e-6)  # every element was updated
    np.testing.assert_allclose(results[0][3], 0.9 * m0 + 0.1 * p0, rtol=1e-5, atol=1e-6)


def test_float32_parameters_keep_float32_and_match_the_float64_restatement():
    p = param(P0, dtype=tg.float32)
    opt = optim.Adam([p], lr=0.01, weight_decay=0.1)
    history = run(opt, [p])
    assert p.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32
    assert opt.state[p]["exp_avg_sq"].dtype == np.float32
    p0 = P0.astype(np.float32).astype(np.float64)
    want = adam_reference(p0, STEPS, lr=0.01, weight_decay=0.1)
    np.testing.assert_allclose(history[-1][0], want[-1], rtol=1e-5, atol=1e-6)


# ---- small cases worked out by hand --------------------------------------------------------
def constant_grad_steps(opt, p, grads):
    values = []
    for g in grads:
        set_grad(p, [g])
        opt.step()
        values.append(p.data[0])
    return values


def test_sgd_momentum_worked_example():
    # lr = 0.1, momentum = 0.9, p = 1, g = 1 every step:
    # b = 1            p = 1    - 0.1 * 1    = 0.9
    # b = 0.9 + 1 = 1.9      p = 0.9  - 0.1 * 1.9  = 0.71
    # b = 1.71 + 1 = 2.71    p = 0.71 - 0.1 * 2.71 = 0.439
    p = param([1.0])
    values = constant_grad_steps(optim.SGD([p], lr=0.1, momentum=0.9), p, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(values, [0.9, 0.71, 0.439], rtol=1e-14)


def test_sgd_nesterov_worked_example():
    # lr = 0.1, momentum = 0.9, p = 1, g = 1: the step uses g + 0.9 * b
    # b = 1,   step = 1 + 0.9 * 1   = 1.9     p = 1    - 0.19  = 0.81
    # b = 1.9, step = 1 + 0.9 * 1.9 = 2.71    p = 0.81 - 0.271 = 0.539
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(constant_grad_steps(opt, p, [1.0, 1.0]), [0.81, 0.539], rtol=1e-14)


def test_sgd_dampening_and_weight_decay_worked_example():
    # lr = 0.5, momentum = 0.5, dampening = 0.5, weight_decay = 0.5, p = 2, grad = 1:
    # g = 1 + 0.5 * 2 = 2;        b = 2 (first step: no dampening)       p = 2 - 0.5 * 2 = 1
    # g = 1 + 0.5 * 1 = 1.5;      b = 0.5 * 2 + 0.5 * 1.5 = 1.75         p = 1 - 0.875   = 0.125
    p = param([2.0])
    opt = optim.SGD([p], lr=0.5, momentum=0.5, dampening=0.5, weight_decay=0.5)
    np.testing.assert_allclose(constant_grad_steps(opt, p, [1.0, 1.0]), [1.0, 0.125], rtol=1e-14)


def test_adam_worked_example():
    # lr = 0.1, betas = (0.9, 0.999), eps = 0, p = 1, grads 1 then -1:
    # t = 1: m = 0.1, v = 0.001; m_hat = 0.1 / 0.1 = 1, v_hat = 0.001 / 0.001 = 1
    #        p = 1 - 0.1 * 1 / 1 = 0.9
    # t = 2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999
    #        m_hat = -0.01 / (1 - 0.81) = -1/19, v_hat = 0.001999 / (1 - 0.998001) = 1
    #        p = 0.9 + 0.1 / 19 = 0.905263157894...
    p = param([1.0])
    values = constant_grad_steps(optim.Adam([p], lr=0.1, eps=0.0), p, [1.0, -1.0])
    np.testing.assert_allclose(values, [0.9, 0.9 + 0.1 / 19], rtol=1e-12)


def test_adam_with_a_constant_gradient_moves_lr_per_step():
    # m_hat = g and v_hat = g^2 for any t, so each step is lr * g / |g| (eps = 0).
    p = param([1.0])
    values = constant_grad_steps(optim.Adam([p], lr=0.1, eps=0.0), p, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(values, [0.9, 0.8, 0.7], rtol=1e-12)


# ---- groups, gradients, in-place updates ---------------------------------------------------
def test_param_groups_take_their_own_lr_and_the_default_for_the_rest():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1, momentum=0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["momentum"] == 0.5
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.99], rtol=1e-14)


def test_adam_param_groups_with_different_betas_follow_their_own_restatement():
    a, b = param(P0), param(P0)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "betas": (0.5, 0.9)}], lr=0.05)
    history = run(opt, [a, b])
    np.testing.assert_allclose(history[-1][0], adam_reference(P0, STEPS, lr=0.05)[-1], rtol=1e-12)
    want_b = adam_reference(P0, STEPS, lr=0.05, betas=(0.5, 0.9))[-1]
    np.testing.assert_allclose(history[-1][1], want_b, rtol=1e-12)


def test_a_generator_of_parameters_is_accepted():
    a, b = param([1.0]), param([2.0])
    opt = optim.SGD((p for p in [a, b]), lr=0.1)
    assert opt.param_groups[0]["params"] == [a, b]


def test_zero_grad_sets_none_by_default():
    a, b = param([1.0, 2.0]), param([3.0])
    set_grad(a, [1.0, 1.0])
    optim.SGD([a, b], lr=0.1).zero_grad()
    assert a.grad is None and b.grad is None


def test_zero_grad_without_set_to_none_fills_zeros_and_backward_accumulates_from_there():
    a, b = param([1.0, 2.0]), param([3.0, 4.0])
    c = param([5.0])
    (a + b).sum().backward()  # a.grad and b.grad share one read-only broadcast array
    opt = optim.SGD([a, b, c], lr=0.1)
    opt.zero_grad(set_to_none=False)
    for p in (a, b):
        assert p.grad.shape == p.shape and p.grad.dtype == p.dtype
        np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    assert c.grad is None  # nothing to zero
    (a * a).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 4.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 0.0])


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1),
])
def test_parameters_without_grad_are_skipped_and_get_no_state(make):
    a, b = param([1.0]), param([2.0])
    opt = make([a, b])
    set_grad(a, [1.0])
    opt.step()
    assert a.data[0] != 1.0 and b.data[0] == 2.0
    assert list(opt.state_dict()["state"]) == [0]


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
    lambda ps: optim.Adam(ps, lr=0.1),
])
def test_step_updates_the_parameter_array_in_place(make):
    p = param(P0)
    array = p.data
    view = p.data[0]  # another reference into the same memory
    opt = make([p])
    run(opt, [p], steps=2)
    assert p.data is array
    np.testing.assert_array_equal(view, p.data[0])
    assert not np.allclose(p.data, P0)


def test_step_does_not_modify_the_gradient():
    p = param(P0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        set_grad(p, np.ones_like(P0))
        opt.step()
        np.testing.assert_array_equal(p.grad.data, np.ones_like(P0))


def test_step_with_a_closure_returns_its_loss():
    p = param([3.0])
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    assert p.data[0] == 3.0 - 0.25 * 6.0  # d(p^2)/dp = 2p = 6


def test_adam_minimises_a_quadratic_through_backward():
    target = np.array([1.0, -2.0, 0.5])
    p = param(np.zeros(3))
    opt = optim.Adam([p], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        ((p - tg.tensor(target, dtype=tg.float64)) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(p.data, target, atol=1e-3)


# ---- state_dict / load_state_dict ----------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}], lr=0.05),
])
def test_a_loaded_state_dict_continues_identically(make):
    params = [param(P0), param(P0[0] * 2)]
    opt = make(params)
    run(opt, params, steps=2)
    saved = opt.state_dict()

    clones = [param(p.data) for p in params]
    clone_opt = make(clones)
    clone_opt.load_state_dict(saved)
    for t in range(3):
        for p, c in zip(params, clones):
            set_grad(p, grad_at(p.data, t))
            set_grad(c, grad_at(c.data, t))
        opt.step()
        clone_opt.step()
        for p, c in zip(params, clones):
            np.testing.assert_array_equal(p.data, c.data)


def test_state_dict_layout_follows_pytorch():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, betas=(0.8, 0.9))
    set_grad(a, [1.0, 1.0])
    set_grad(b, [1.0])
    opt.step()
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"] == [
        {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0, "params": [0]},
        {"lr": 0.5, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 0, "params": [1]},
    ]
    assert set(sd["state"]) == {0, 1}
    assert sd["state"][0]["step"] == 2
    assert sd["state"][0]["exp_avg"].shape == (2,) and sd["state"][1]["exp_avg_sq"].shape == (1,)


def test_state_dict_arrays_are_copies():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, [1.0])
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][0] = 100.0
    sd["param_groups"][0]["lr"] = 7.0
    assert opt.state[p]["momentum_buffer"][0] == 1.0
    assert opt.param_groups[0]["lr"] == 0.1


def test_load_state_dict_takes_the_saved_hyperparameters_and_copies_arrays():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, [1.0])
    opt.step()
    sd = opt.state_dict()
    q = param([1.0])
    other = optim.SGD([q], lr=0.5, momentum=0.9)
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.1
    assert other.param_groups[0]["params"][0] is q
    sd["state"][0]["momentum_buffer"][0] = 100.0
    assert other.state[q]["momentum_buffer"][0] == 1.0


def test_load_state_dict_casts_state_to_the_parameter_dtype():
    p64 = param([1.0, 2.0])
    opt = optim.Adam([p64])
    set_grad(p64, [1.0, 1.0])
    opt.step()
    p32 = param([1.0, 2.0], dtype=tg.float32)
    opt32 = optim.Adam([p32])
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[p32]["exp_avg"].dtype == np.float32


# ---- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD([p], lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD([p], lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True),
     "Nesterov momentum requires a momentum and zero dampening (got momentum=0, dampening=0)"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "(got momentum=0.9, dampening=0.1)"),
    (lambda p: optim.Adam([p], lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: optim.Adam([p], betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.Adam([p], eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: optim.Adam([p], weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda p: optim.Adam([{"params": [p], "lr": -2.0}]), "Invalid learning rate: -2.0"),
    (lambda p: optim.Adam([{"params": [p], "betas": (0.9, 2)}]),
     "Invalid beta parameter at index 1: 2"),
    (lambda p: optim.Adam([{"params": [p], "lrr": 0.1}]),
     "parameter group 0 has unknown option(s) ['lrr']; Adam takes ['betas', 'eps', 'lr', "),
])
def test_bad_hyperparameters_are_named(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(param([1.0]))


def test_empty_parameter_list():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)


def test_a_parameter_that_does_not_require_grad_is_named():
    frozen = tg.tensor([[1.0, 2.0]])
    message = "parameter 1 (shape (1, 2)) has requires_grad=False"
    with pytest.raises(ValueError, match=re.escape(message)):
        optim.Adam([param([1.0]), frozen])


def test_a_single_tensor_is_not_taken_for_a_list_of_rows():
    message = "but got a Tensor of shape (2, 3); pass [tensor]"
    with pytest.raises(TypeError, match=re.escape(message)):
        optim.SGD(param(P0), lr=0.1)


def test_non_tensors_non_leaves_and_duplicates_are_refused():
    p = param([1.0])
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        optim.SGD([p, np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match=re.escape("non-leaf Tensor (parameter 0, shape (1,))")):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match=re.escape("parameter 1 (shape (1,)) appears more than")):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_a_grad_of_the_wrong_shape_is_named():
    p = param([1.0, 2.0])
    p.grad = tg.tensor([[1.0, 2.0]], dtype=tg.float64)
    message = "step: a parameter of shape (2,) has a grad of shape (1, 2)"
    with pytest.raises(ValueError, match=re.escape(message)):
        optim.SGD([p], lr=0.1).step()


def trained_adam(params):
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, steps=1)
    return opt


def test_load_state_dict_with_another_number_of_groups_or_parameters():
    sd = trained_adam([param([1.0]), param([2.0])]).state_dict()
    two_groups = optim.Adam([{"params": [param([1.0])]}, {"params": [param([2.0])]}])
    with pytest.raises(ValueError, match="has 1 parameter group.*this optimizer has 2"):
        two_groups.load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter group 0 has 2 parameter.* and 3 in this"):
        optim.Adam([param([1.0]), param([2.0]), param([3.0])]).load_state_dict(sd)


def test_load_state_dict_with_a_wrong_shape_names_the_parameter_and_both_shapes():
    sd = trained_adam([param([1.0]), param(np.ones(3))]).state_dict()
    opt = optim.Adam([param([1.0]), param(np.ones((2, 2)))])
    message = "state 'exp_avg' of parameter 1 has shape (3,), but the parameter has shape (2, 2)"
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.load_state_dict(sd)


def test_load_state_dict_of_another_optimizer_kind():
    p = param([1.0])
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    run(sgd, [p], steps=1)
    with pytest.raises(ValueError, match="parameter group 0 has options .* but Adam has"):
        optim.Adam([param([1.0])]).load_state_dict(sgd.state_dict())
    adam_sd = trained_adam([param([1.0])]).state_dict()
    adam_sd["param_groups"][0] = optim.SGD([param([1.0])], lr=0.1).state_dict()["param_groups"][0]
    with pytest.raises(ValueError, match="state of parameter 0 has entries .* SGD needs"):
        optim.SGD([param([1.0])], lr=0.1).load_state_dict(adam_sd)


# ---- against PyTorch, when it happens to be installed ---------------------------------------
@pytest.mark.parametrize("kind, options", [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
])
def test_five_steps_match_torch_optim(kind, options):
    torch = pytest.importorskip("torch")
    p = param(P0)
    history = run(getattr(optim, kind)([p], **options), [p], steps=5)
    tp = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    topt = getattr(torch.optim, kind)([tp], **options)
    for t in range(5):
        tp.grad = torch.from_numpy(grad_at(tp.detach().numpy(), t))
        topt.step()
        np.testing.assert_allclose(history[t][0], tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_adam_in_float32_stays_within_1e6_of_torch_adam(backend):
    """Both paths against torch.optim.Adam (float32, DCGAN's betas, weight decay), 20 steps."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((50, 40)).astype(np.float32)
    grads = rng.standard_normal((20, 50, 40)).astype(np.float32)
    ours = param(p0, dtype=tg.float32)
    theirs = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = optim.Adam([ours], lr=2e-3, betas=(0.5, 0.999), weight_decay=0.01)
    their_opt = torch.optim.Adam([theirs], lr=2e-3, betas=(0.5, 0.999), weight_decay=0.01)
    with tg.backend.use(backend):
        for g in grads:
            set_grad(ours, g)
            opt.step()
            theirs.grad = torch.from_numpy(g)
            their_opt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
