"""tinygen's DCGAN generator and discriminator against PyTorch's state_dict format, and BatchNorm's
num_batches_tracked counter.

Without torch: the state_dict keys, their order, shapes and dtypes are the ones PyTorch gives for
the same architecture written in torch.nn (the table below, printed once from torch 2.13); such a
state loads with strict=True (its values and counters land in the model, cast into a float64
model); missing and unexpected keys and wrong shapes are errors that name the key, with a hint at
strict=False when only the counters are missing; strict=False returns (missing, unexpected). The
counter counts training batches only, drives momentum=None's cumulative average, and keeps its
value and int64 dtype through tinygen.save / load, load_state_dict and Module.double().

With torch (skipped where it is not installed): a trained torch model loads into tinygen and a
trained tinygen model into torch, strictly, directly and through a checkpoint file, and both then
give the same outputs in evaluation and in training mode, with the same counters.
"""
import numpy as np
import pytest

import tinygen as tg
from tinygen import nn
from tinygen.models.gan import dcgan_discriminator, dcgan_generator

# What torch.nn.Sequential(...).state_dict() gives for the two models (latent_dim=100), in order:
# (key, shape, dtype). Printed from torch 2.13 with the torch.nn builders at the end of this file.
GENERATOR_STATE = [
    ("0.weight", (6272, 100), "float32"),
    ("0.bias", (6272,), "float32"),
    ("1.weight", (6272,), "float32"),
    ("1.bias", (6272,), "float32"),
    ("1.running_mean", (6272,), "float32"),
    ("1.running_var", (6272,), "float32"),
    ("1.num_batches_tracked", (), "int64"),
    ("4.weight", (128, 64, 4, 4), "float32"),
    ("4.bias", (64,), "float32"),
    ("5.weight", (64,), "float32"),
    ("5.bias", (64,), "float32"),
    ("5.running_mean", (64,), "float32"),
    ("5.running_var", (64,), "float32"),
    ("5.num_batches_tracked", (), "int64"),
    ("7.weight", (64, 1, 4, 4), "float32"),
    ("7.bias", (1,), "float32"),
]
DISCRIMINATOR_STATE = [
    ("0.weight", (64, 1, 4, 4), "float32"),
    ("0.bias", (64,), "float32"),
    ("2.weight", (128, 64, 4, 4), "float32"),
    ("2.bias", (128,), "float32"),
    ("3.weight", (128,), "float32"),
    ("3.bias", (128,), "float32"),
    ("3.running_mean", (128,), "float32"),
    ("3.running_var", (128,), "float32"),
    ("3.num_batches_tracked", (), "int64"),
    ("6.weight", (1, 6272), "float32"),
    ("6.bias", (1,), "float32"),
]
TABLES = {"generator": GENERATOR_STATE, "discriminator": DISCRIMINATOR_STATE}
BUILDERS = {"generator": dcgan_generator, "discriminator": dcgan_discriminator}
BATCH_NORMS = {"generator": (1, 5), "discriminator": (3,)}  # their indices in the Sequential
MODELS = ["generator", "discriminator"]


def state_from_table(table, rng, counter=7):
    """A state in PyTorch's layout: random float32 values, int64 0-d counters set to `counter`."""
    state = {}
    for key, shape, dtype in table:
        if dtype == "int64":
            state[key] = np.array(counter, dtype=np.int64)
        else:
            state[key] = rng.standard_normal(shape).astype(dtype)
    return state


def model_input(name, rng, n=4):
    """A float32 batch: noise (n, 100) for the generator, images (n, 1, 28, 28) for the
    discriminator."""
    shape = (n, 100) if name == "generator" else (n, 1, 28, 28)
    return rng.standard_normal(shape).astype(np.float32)


def counters(model, name):
    return [model[i].num_batches_tracked for i in BATCH_NORMS[name]]


# ---- the state_dict layout ----------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_state_dict_keys_order_shapes_and_dtypes_are_pytorchs(name):
    state = BUILDERS[name]().state_dict()
    assert all(isinstance(value, np.ndarray) for value in state.values())
    assert [(key, value.shape, str(value.dtype)) for key, value in state.items()] == TABLES[name]


@pytest.mark.parametrize("name", MODELS)
def test_a_state_in_pytorchs_layout_loads_strictly_and_lands_in_the_model(name, rng):
    state = state_from_table(TABLES[name], rng, counter=7)
    model = BUILDERS[name]()
    result = model.load_state_dict(state, strict=True)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    got = model.state_dict()
    for key, value in state.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    for counter in counters(model, name):
        assert counter.data.dtype == np.int64 and counter.data.shape == () and counter.data == 7
    # the model holds copies: changing the state afterwards leaves it alone
    first_key = TABLES[name][0][0]
    loaded = state[first_key].copy()
    state[first_key] += 1
    np.testing.assert_array_equal(model.state_dict()[first_key], loaded)


@pytest.mark.parametrize("name", MODELS)
def test_a_float64_model_loads_float32_values_cast(name, rng):
    state = state_from_table(TABLES[name], rng, counter=7)
    model = BUILDERS[name]().double()
    model.load_state_dict(state)
    got = model.state_dict()
    for key, _, dtype in TABLES[name]:
        want_dtype = np.int64 if dtype == "int64" else np.float64
        assert got[key].dtype == want_dtype, key
        np.testing.assert_array_equal(got[key], state[key].astype(want_dtype), err_msg=key)
    assert all(p.dtype == np.float64 for p in model.parameters())


def _missing(state):
    del state["4.weight"]
    return "4.weight"


def _unexpected(state):
    state["8.weight"] = np.zeros((1, 1, 4, 4), np.float32)
    return "8.weight"


def _wrong_shape(state):
    state["1.running_var"] = np.ones(6271, np.float32)
    return "1.running_var"


@pytest.mark.parametrize("spoil", [_missing, _unexpected, _wrong_shape],
                         ids=["missing", "unexpected", "wrong_shape"])
def test_strict_loading_names_the_key_that_does_not_fit_and_changes_nothing(spoil, rng):
    state = state_from_table(GENERATOR_STATE, rng)
    key = spoil(state)
    model = dcgan_generator()
    before = model.state_dict()
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        model.load_state_dict(state, strict=True)
    after = model.state_dict()
    for name, value in before.items():  # all or nothing: nothing was copied
        np.testing.assert_array_equal(after[name], value, err_msg=name)


def test_a_state_without_counters_is_refused_with_a_hint_at_strict_false(rng):
    state = state_from_table(GENERATOR_STATE, rng)
    del state["1.num_batches_tracked"], state["5.num_batches_tracked"]
    model = dcgan_generator()
    with pytest.raises(ValueError, match="strict=False") as error:
        model.load_state_dict(state)
    assert "1.num_batches_tracked" in str(error.value)
    assert "5.num_batches_tracked" in str(error.value)
    # A state missing other keys gets no such hint.
    del state["0.bias"]
    with pytest.raises(ValueError, match=r"0\.bias") as error:
        model.load_state_dict(state)
    assert "strict=False" not in str(error.value)


def test_strict_false_loads_what_fits_and_returns_missing_and_unexpected(rng):
    state = state_from_table(DISCRIMINATOR_STATE, rng, counter=7)
    del state["3.num_batches_tracked"], state["0.weight"]
    state["7.weight"] = np.zeros(3, np.float32)
    model = dcgan_discriminator()
    kept = model[0].weight.data.copy()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["0.weight", "3.num_batches_tracked"]
    assert unexpected == ["7.weight"]
    np.testing.assert_array_equal(model[0].weight.data, kept)  # missing: left as it was
    assert model[3].num_batches_tracked.data == 0
    np.testing.assert_array_equal(model[3].running_mean.data, state["3.running_mean"])
    np.testing.assert_array_equal(model[6].weight.data, state["6.weight"])


# ---- BatchNorm's num_batches_tracked ------------------------------------------------------------
def test_the_counter_counts_training_batches_only(rng):
    bn = nn.BatchNorm2d(3)
    x = tg.tensor(rng.standard_normal((4, 3, 5, 5)))
    bn(x)
    bn(x)
    bn.eval()
    for _ in range(3):
        bn(x)
    assert bn.num_batches_tracked.data == 2
    bn.train()
    with tg.no_grad():  # the mode counts, not whether gradients are recorded
        bn(x)
    counter = bn.state_dict()["num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and counter == 3


@pytest.mark.parametrize("name", MODELS)
def test_every_batch_norm_of_the_models_counts_forward_calls_in_training(name, rng):
    model = BUILDERS[name]()
    x = tg.tensor(model_input(name, rng))
    model(x)
    model(x)
    model.eval()
    model(x)
    assert [int(c.data) for c in counters(model, name)] == [2] * len(BATCH_NORMS[name])


def test_momentum_none_keeps_the_cumulative_average_of_the_batch_statistics(rng):
    bn = nn.BatchNorm2d(3, momentum=None)
    batches = [(2 * rng.standard_normal((4, 3, 5, 5)) + 3 * step).astype(np.float32)
               for step in range(3)]
    for batch in batches:
        bn(tg.tensor(batch))
    axes = (0, 2, 3)
    means = [batch.astype(np.float64).mean(axis=axes) for batch in batches]
    variances = [batch.astype(np.float64).var(axis=axes, ddof=1) for batch in batches]
    np.testing.assert_allclose(bn.running_mean.data, np.mean(means, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, np.mean(variances, axis=0), rtol=1e-5)
    assert bn.num_batches_tracked.data == 3


def test_the_counter_survives_a_checkpoint_file_and_load_state_dict(tmp_path, rng):
    model = dcgan_discriminator()
    x = tg.tensor(model_input("discriminator", rng))
    for _ in range(3):
        model(x)
    path = tmp_path / "dcgan_d.npz"
    tg.save({"model": model.state_dict()}, path)
    state = tg.load(path)["model"]
    assert list(state) == [key for key, _, _ in DISCRIMINATOR_STATE]
    counter = state["3.num_batches_tracked"]
    assert counter.dtype == np.int64 and counter.shape == () and counter == 3
    fresh = dcgan_discriminator()
    fresh.load_state_dict(state)
    assert fresh[3].num_batches_tracked.data.dtype == np.int64
    assert fresh[3].num_batches_tracked.data == 3
    np.testing.assert_array_equal(fresh[3].running_mean.data, model[3].running_mean.data)
    fresh(x)  # and it counts on from there
    assert fresh[3].num_batches_tracked.data == 4
    assert fresh.state_dict()["3.num_batches_tracked"].dtype == np.int64


def test_double_and_float_leave_the_counters_int64(rng):
    model = dcgan_generator()
    model(tg.tensor(model_input("generator", rng)))
    model.double()
    for key, _, dtype in GENERATOR_STATE:
        want = np.int64 if dtype == "int64" else np.float64
        assert model.state_dict()[key].dtype == want, key
    model(tg.tensor(model_input("generator", rng), dtype="float64"))
    model.float()
    state = model.state_dict()
    assert [(key, value.shape, str(value.dtype)) for key, value in state.items()] == \
        GENERATOR_STATE
    assert state["1.num_batches_tracked"] == 2 and state["5.num_batches_tracked"] == 2


# ---- with PyTorch -------------------------------------------------------------------------------
def torch_generator(torch, latent_dim=100):
    """tinygen.models.gan.dcgan_generator in torch.nn."""
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Linear(latent_dim, 128 * 7 * 7), tnn.BatchNorm1d(128 * 7 * 7), tnn.ReLU(),
        tnn.Unflatten(1, (128, 7, 7)),
        tnn.ConvTranspose2d(128, 64, 4, 2, 1), tnn.BatchNorm2d(64), tnn.ReLU(),
        tnn.ConvTranspose2d(64, 1, 4, 2, 1), tnn.Tanh(),
    )


def torch_discriminator(torch):
    """tinygen.models.gan.dcgan_discriminator in torch.nn."""
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 64, 4, 2, 1), tnn.LeakyReLU(0.2),
        tnn.Conv2d(64, 128, 4, 2, 1), tnn.BatchNorm2d(128), tnn.LeakyReLU(0.2),
        tnn.Flatten(), tnn.Linear(128 * 7 * 7, 1),
    )


TORCH_BUILDERS = {"generator": torch_generator, "discriminator": torch_discriminator}


def assert_same_outputs(ours, theirs, torch, x):
    """Both models on the float32 batch x, in the mode each is in."""
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    got = ours(tg.tensor(x)).data
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def assert_same_counters(ours, theirs, torch, name, value):
    for i in BATCH_NORMS[name]:
        assert theirs[i].num_batches_tracked.dtype == torch.int64
        assert int(theirs[i].num_batches_tracked) == value
        assert ours[i].num_batches_tracked.data.dtype == np.int64
        assert int(ours[i].num_batches_tracked.data) == value


def train_torch(theirs, torch, name, rng, steps=2):
    optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    theirs.train()
    for _ in range(steps):
        out = theirs(torch.from_numpy(model_input(name, rng)))
        loss = (out - 0.5).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def train_tinygen(ours, name, rng, steps=2):
    optimizer = tg.optim.Adam(ours.parameters(), lr=1e-3)
    ours.train()
    for _ in range(steps):
        out = ours(tg.tensor(model_input(name, rng)))
        loss = ((out - 0.5) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def check_both_modes(ours, theirs, torch, name, rng, counter):
    """Same outputs in evaluation mode, then in training mode (which moves both counters on)."""
    x = model_input(name, rng)
    ours.eval()
    theirs.eval()
    assert_same_outputs(ours, theirs, torch, x)
    assert_same_counters(ours, theirs, torch, name, counter)
    ours.train()
    theirs.train()
    assert_same_outputs(ours, theirs, torch, x)
    assert_same_counters(ours, theirs, torch, name, counter + 1)
    for i in BATCH_NORMS[name]:  # and the running statistics moved alike
        np.testing.assert_allclose(ours[i].running_mean.data, theirs[i].running_mean.numpy(),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours[i].running_var.data, theirs[i].running_var.numpy(),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_torch_state_dict_of_the_same_architecture_matches_the_table(name):
    torch = pytest.importorskip("torch")
    state = TORCH_BUILDERS[name](torch).state_dict()
    layout = [(key, tuple(value.shape), str(value.dtype).replace("torch.", ""))
              for key, value in state.items()]
    assert layout == TABLES[name]


@pytest.mark.parametrize("name", MODELS)
def test_a_trained_torch_model_loads_into_tinygen_and_gives_the_same_outputs(name, rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = TORCH_BUILDERS[name](torch)
    train_torch(theirs, torch, name, rng)
    for i in BATCH_NORMS[name]:  # the running statistics have left their initial values
        assert not np.allclose(theirs[i].running_mean.numpy(), 0)
    ours = BUILDERS[name]()
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    check_both_modes(ours, theirs, torch, name, rng, counter=2)


@pytest.mark.parametrize("name", MODELS)
def test_a_trained_tinygen_model_loads_into_torch_and_gives_the_same_outputs(name, rng):
    torch = pytest.importorskip("torch")
    tg.manual_seed(0)
    ours = BUILDERS[name]()
    train_tinygen(ours, name, rng)
    theirs = TORCH_BUILDERS[name](torch)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()},
                           strict=True)
    check_both_modes(ours, theirs, torch, name, rng, counter=2)


def test_checkpoint_files_carry_a_model_between_tinygen_and_torch(tmp_path, rng):
    torch = pytest.importorskip("torch")
    name = "discriminator"
    # tinygen -> file -> torch
    ours = dcgan_discriminator()
    train_tinygen(ours, name, rng)
    path = tmp_path / "from_tinygen.npz"
    tg.save({"model": ours.state_dict(), "epoch": 1}, path)
    state = tg.load(path)["model"]
    theirs = torch_discriminator(torch)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    check_both_modes(ours, theirs, torch, name, rng, counter=2)
    # torch -> file -> tinygen
    torch.manual_seed(1)
    theirs = torch_discriminator(torch)
    train_torch(theirs, torch, name, rng)
    path = tmp_path / "from_torch.npz"
    tg.save({"model": {k: v.numpy() for k, v in theirs.state_dict().items()}}, path)
    ours = dcgan_discriminator()
    ours.load_state_dict(tg.load(path)["model"], strict=True)
    check_both_modes(ours, theirs, torch, name, rng, counter=2)


def test_a_module_used_twice_is_saved_under_both_names_as_pytorch_does(rng):
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(model.parameters())) == 2  # but learned once
    state = {key: rng.standard_normal(value.shape).astype(np.float32)
             for key, value in model.state_dict().items()}
    state["2.weight"], state["2.bias"] = state["0.weight"], state["0.bias"]
    model.load_state_dict(state)  # strict: both names are expected
    np.testing.assert_array_equal(shared.weight.data, state["0.weight"])


def test_torch_bfloat16_values_load_through_float32(rng):
    torch = pytest.importorskip("torch")
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2).to(torch.bfloat16)
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().float().numpy())


def test_torch_saves_a_shared_module_under_the_same_names(rng):
    torch = pytest.importorskip("torch")
    shared = torch.nn.Linear(3, 3)
    theirs = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    ours_shared = nn.Linear(3, 3)
    ours = nn.Sequential(ours_shared, nn.ReLU(), ours_shared)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(tg.tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
