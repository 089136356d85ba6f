"""The `tinygen` command line: train, sample, info, and one-line errors for bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

import tinygen as tg
from tinygen import backend, cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path):
    return path.read_bytes()[:8] == PNG_SIGNATURE


@pytest.fixture(scope="module")
def trained_ae(tmp_path_factory):
    """A quick `tinygen train ae` on the bundled subset (shared by the tests below)."""
    out = tmp_path_factory.mktemp("run") / "ae"
    code = cli.main(["train", "ae", "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    return out


def test_train_writes_checkpoint_metrics_and_pictures(trained_ae):
    for name in ("checkpoint.npz", "metrics.json", "curves.png", "reconstructions.png"):
        assert (trained_ae / name).exists(), name
    assert is_png(trained_ae / "curves.png") and is_png(trained_ae / "reconstructions.png")
    metrics = json.loads((trained_ae / "metrics.json").read_text())
    assert metrics["model"] == "ae" and metrics["epochs"] == 1
    assert {"loss", "recon", "val_loss", "val_recon"} <= set(metrics["history"])
    # 784 Bernoulli pixels: an untrained decoder costs about 784 log 2 = 543 nats per image.
    assert metrics["history"]["val_loss"][0] < 543


def test_sample_from_an_autoencoder_checkpoint_writes_reconstructions(trained_ae, capsys):
    out = trained_ae / "sample.png"
    code = cli.main(["sample", str(trained_ae / "checkpoint.npz"), "--n", "16", "--out", str(out),
                     "--data", "bundled"])
    assert code == 0
    assert is_png(out)
    assert "reconstructions" in capsys.readouterr().out


@pytest.mark.parametrize("pixels, shape, darkest", [
    (cli.unit_vectors, (2, 784), 0.0),
    (cli.symmetric_vectors, (2, 784), -1.0),
    (cli.symmetric_images, (2, 1, 28, 28), -1.0),
])
def test_a_recipes_pixels_turn_uint8_images_into_float32_inputs(pixels, shape, darkest):
    images = np.stack([np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)])
    x = pixels(images)
    assert x.shape == shape and x.dtype == np.float32
    assert x[0].max() == darkest and x[1].min() == 1.0


def test_info_lists_backends_and_where_mnist_is(capsys):
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    for entry in backend.status():  # one line per registered backend, from the registry
        assert f"  {entry.name:6s} ({entry.device}) " in text
    assert "numpy  (cpu) available" in text
    assert "MNIST train:" in text


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path / "nope.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygen: error:") and "nope.npz" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint at all")
    assert cli.main(["sample", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "is not a tinygen checkpoint" in err and err.count("\n") == 1


def test_bad_arguments_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "no-such-model"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--epochs", "-1"), ("--epochs", "0"),
                                           ("--batch-size", "0"), ("--lr", "-0.1"),
                                           ("--lr", "nan")])
def test_numbers_out_of_range_are_argparse_errors(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "ae", "--quick", "--data", "bundled", "--out", str(tmp_path / "run"),
                  option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be a positive number, got {value}" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_out_naming_an_existing_file_is_a_one_line_error(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    code = cli.main(["train", "ae", "--quick", "--data", "bundled", "--out", str(taken),
                     "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"tinygen: error: --out {taken}: a file of that name exists; give a folder\n"
    assert taken.read_text() == "mine"


def test_missing_data_folder_is_a_one_line_error(tmp_path, capsys):
    code = cli.main(["train", "ae", "--quick", "--data", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and err.count("\n") == 1


def test_python_dash_m_tinygen_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "tinygen", "info"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "backend in use" in result.stdout


@pytest.mark.parametrize("name", sorted(set(cli.RECIPES) - {"ae"}))
def test_every_recipe_trains_in_quick_mode_with_finite_metrics(name, tmp_path):
    out = tmp_path / name
    assert cli.main(["train", name, "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress"]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert all(np.isfinite(values).all() for values in history.values())
    if cli.RECIPES[name].adversarial:
        assert {"loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm"} <= set(history)
        assert is_png(out / "samples.png")
        assert is_png(out / "epochs" / "samples_epoch_001.png")  # the fixed-noise grid
    else:
        assert history["val_recon"][0] < 543  # better than an untrained decoder's 784 log 2


def test_sample_from_a_vae_checkpoint_draws_from_the_prior(tmp_path, capsys):
    out = tmp_path / "vae"
    assert cli.main(["train", "vae", "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress"]) == 0
    png = tmp_path / "samples.png"
    assert cli.main(["sample", str(out / "checkpoint.npz"), "--n", "9", "--out", str(png)]) == 0
    assert is_png(png)
    assert "9 samples from vae" in capsys.readouterr().out


def test_train_vae_with_a_gaussian_decoder_reports_bits_per_dim_and_sample_rebuilds_it(
        tmp_path, capsys):
    out = tmp_path / "vae-gaussian"
    assert cli.main(["train", "vae", "--likelihood", "gaussian", "--quick", "--data", "bundled",
                     "--out", str(out), "--no-progress"]) == 0
    assert "bits/dim" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["likelihood"] == "gaussian"
    history = metrics["history"]
    assert all(np.isfinite(values).all() for values in history.values())
    bits = history["val_bits_per_dim"][-1]
    assert bits == pytest.approx((history["val_loss"][-1] / 784 + np.log(256)) / np.log(2))
    assert tg.load(out / "checkpoint.npz")["likelihood"] == "gaussian"
    # A Bernoulli decoder (784 outputs) would not load these weights (1568): sample must rebuild
    # the Gaussian one from the checkpoint.
    png = tmp_path / "samples.png"
    assert cli.main(["sample", str(out / "checkpoint.npz"), "--n", "4", "--out", str(png)]) == 0
    assert is_png(png) and "4 samples from vae" in capsys.readouterr().out


def test_the_gaussian_vae_trains_on_new_dequantisation_noise_every_epoch():
    recipe = cli.recipe_for("vae", "gaussian")
    loader = cli.train.training_loader(recipe, "bundled", True, 1000, seed=0)
    first, second = (next(iter(loader)).data for _ in range(2))
    assert first.dtype == np.float32 and 0 <= first.min() and first.max() < 1
    assert not np.array_equal(first, second)
    # (pixel + u) / 256: the place inside each bin is U[0, 1), so 1/2 on average, not 0 (x / 255)
    inside = first.astype(np.float64) * 256 - np.floor(first.astype(np.float64) * 256)
    assert abs(inside.mean() - 0.5) < 0.01


def test_likelihood_is_refused_for_a_recipe_without_one(tmp_path, capsys):
    code = cli.main(["train", "ae", "--likelihood", "gaussian", "--quick", "--data", "bundled",
                     "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no decoder likelihood" in err and "vae" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_bernoulli_likelihood_is_the_vae_recipe_itself():
    assert cli.recipe_for("vae", "bernoulli") is cli.RECIPES["vae"]
    assert cli.recipe_for("vae") is cli.RECIPES["vae"]


@pytest.mark.parametrize("lr_option, expected", [([], (3e-4, 1e-4)), (["--lr", "5e-4"],
                                                                     (5e-4, 5e-4))])
def test_a_gan_recipe_gives_each_player_its_rate_and_lr_sets_both(lr_option, expected, tmp_path,
                                                                   monkeypatch):
    """Recipe.lr is G's rate and lr_discriminator D's (the dcgan recipe: 1e-3 and 2e-4); --lr
    sets both. Read back from the checkpoint's optimizers, and kept for --resume."""
    import dataclasses

    from tinygen.checkpoint import load
    recipe = dataclasses.replace(cli.RECIPES["gan"], lr=3e-4, lr_discriminator=1e-4)
    monkeypatch.setitem(cli.RECIPES, "gan", recipe)
    out = tmp_path / "gan"
    assert cli.main(["train", "gan", "--quick", "--data", "bundled", "--out", str(out),
                     "--no-progress", *lr_option]) == 0
    state = load(str(out / "checkpoint.npz"))
    rates = tuple(state["optimizer"][player]["param_groups"][0]["lr"]
                  for player in ("generator", "discriminator"))
    assert rates == expected
    assert state["run"]["lr_discriminator"] == (None if lr_option else 1e-4)
