"""`tinygen sample --out FILE.npz` saves raw samples; `tinygen score FILE.npz` scores them (FID
beside the real-vs-real floor, MNIST score); bad input is a one-line error with status 2.

Checkpoints are built directly from the recipes (untrained weights: shapes and ranges are what is
tested here, not quality), and the scores use the bundled MNIST subset, offline.
"""
import re

import numpy as np
import pytest

import tinygen as tg
from tinygen import cli, mnist_classifier
from tinygen.checkpoint import save
from tinygen.data import load_mnist

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def checkpoint_of(name, folder):
    """A checkpoint of the recipe `name` as `tinygen sample` reads it, and the model inside."""
    tg.manual_seed(1)
    model = cli.RECIPES[name].build()
    path = folder / f"{name}.npz"
    save({"recipe": name, "model": model.state_dict()}, path)
    model.eval()
    return path, model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("score")


@pytest.fixture(scope="module")
def gan(folder):
    return checkpoint_of("gan", folder)


def one_line_error(capsys, *words):
    """The command printed one error line naming `words`, no traceback, nothing on stdout."""
    captured = capsys.readouterr()
    assert captured.err.startswith("tinygen: error:"), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    for word in words:
        assert word in captured.err, (word, captured.err)
    return captured.err


@pytest.mark.parametrize("name, value_range", [("gan", (-1, 1)), ("dcgan", (-1, 1)),
                                               ("vae", (0, 1))])
def test_sample_npz_holds_float32_images_in_0_1(name, value_range, folder, capsys):
    """MLP models give (N, 784), the DCGAN (N, 1, 28, 28); tanh generators [-1, 1], the VAE
    [0, 1]: all are saved as float32 (N, 1, 28, 28) in [0, 1], the same images the model draws.
    1200 samples take two chunks of generation."""
    n = 1200 if name != "dcgan" else 40
    checkpoint, model = checkpoint_of(name, folder)
    tg.manual_seed(7)  # as the command: build the model (drawing its initial weights), load, draw
    again = cli.RECIPES[name].build()
    again.load_state_dict(model.state_dict())
    again.eval()
    expected = np.asarray(again.sample(n).data, np.float64).reshape(n, 1, 28, 28)
    lo, hi = value_range
    expected = np.clip((expected - lo) / (hi - lo), 0, 1)
    out = folder / f"{name}-samples.npz"
    tg.manual_seed(7)
    assert cli.main(["sample", str(checkpoint), "--n", str(n), "--out", str(out)]) == 0
    assert "tinygen score" in capsys.readouterr().out
    with np.load(out) as archive:
        assert archive.files == ["samples"]
        x = archive["samples"]
    assert x.dtype == np.float32 and x.shape == (n, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1 and x.std() > 0
    np.testing.assert_allclose(x, expected, atol=1e-6)
    assert not list(folder.glob("*.tmp-*"))  # written under a temporary name, then renamed


def test_sample_png_still_draws_a_grid(gan, folder, capsys):
    out = folder / "grid.png"
    assert cli.main(["sample", str(gan[0]), "--n", "16", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert "16 samples from gan" in capsys.readouterr().out


@pytest.mark.parametrize("out", ["samples.jpg", "samples", "samples.npy"])
def test_sample_to_another_suffix_is_a_one_line_error(out, gan, tmp_path, capsys):
    assert cli.main(["sample", str(gan[0]), "--out", str(tmp_path / out)]) == 2
    one_line_error(capsys, ".png", ".npz")
    assert not list(tmp_path.iterdir())


def test_sample_npz_of_an_autoencoder_is_a_one_line_error(folder, tmp_path, capsys):
    checkpoint, _ = checkpoint_of("ae", folder)
    assert cli.main(["sample", str(checkpoint), "--out", str(tmp_path / "s.npz")]) == 2
    one_line_error(capsys, "no sampler")
    assert not list(tmp_path.iterdir())


def test_sample_npz_into_a_missing_folder_is_a_one_line_error(gan, tmp_path, capsys):
    assert cli.main(["sample", str(gan[0]), "--out", str(tmp_path / "nope" / "s.npz")]) == 2
    one_line_error(capsys, "cannot write")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(gan, tmp_path, monkeypatch,
                                                                   capsys):
    out = tmp_path / "s.npz"
    out.write_bytes(b"the previous samples")

    def disk_full(file, **arrays):
        file.write(b"half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    assert cli.main(["sample", str(gan[0]), "--n", "8", "--out", str(out)]) == 2
    one_line_error(capsys, "No space left on device")
    assert out.read_bytes() == b"the previous samples"
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]


def scores(text):
    """(FID, floor, MNIST score mean) from the first three lines `tinygen score` prints."""
    lines = text.splitlines()
    assert len(lines) == 3 + 12, text  # then the class histogram: a heading, 10 digits, a verdict
    fid = re.match(r"FID (\d+\.\d+) of the (\d+) samples against the (\d+) MNIST test", lines[0])
    floor = re.match(r"FID (\d+\.\d+) of (\d+) real training digits against the same test digits",
                     lines[1])
    score = re.match(r"MNIST score (\d+\.\d+) ± (\d+\.\d+) over 10 splits", lines[2])
    assert fid and floor and score, text
    assert fid.group(2) == floor.group(2)  # the floor at the same N
    return float(fid.group(1)), float(floor.group(1)), float(score.group(1))


@pytest.fixture(scope="module")
def bundled_test_digits():
    images, _ = load_mnist("test", subset="bundled")
    return images.astype(np.float32) / 255


def test_real_test_digits_score_0_against_themselves_and_noise_far_worse(bundled_test_digits,
                                                                           tmp_path, capsys):
    real = tmp_path / "real.npz"
    np.savez(real, samples=bundled_test_digits)  # (N, 28, 28) float32: the whole bundled test set
    assert cli.main(["score", str(real), "--data", "bundled"]) == 0
    fid, floor, score = scores(capsys.readouterr().out)
    assert fid < 0.01 < floor  # the same set: the same statistics
    assert score > 5  # confident and varied: the classifier knows the test digits

    noise = tmp_path / "noise.npz"
    rng = np.random.default_rng(0)
    np.savez(noise, samples=rng.uniform(size=(200, 784)))  # (N, 784) float64
    assert cli.main(["score", str(noise), "--data", "bundled"]) == 0
    noise_fid, noise_floor, noise_score = scores(capsys.readouterr().out)
    assert noise_fid > 10 * noise_floor and noise_fid > 10 * floor
    assert 1 <= noise_score < score


def test_score_accepts_what_sample_writes(gan, folder, capsys):
    out = folder / "gan-scored.npz"
    assert cli.main(["sample", str(gan[0]), "--n", "200", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["score", str(out), "--data", "bundled"]) == 0
    fid, floor, score = scores(capsys.readouterr().out)
    assert fid > floor  # an untrained generator
    with np.load(out) as saved:  # the printed score is the classifier's on the saved samples
        expected_score, _ = mnist_classifier.mnist_score(saved["samples"])
    assert score == pytest.approx(expected_score, abs=0.005)


def histogram(text):
    """({digit: (count, share %, test share %)}, the under-represented line) from the class
    histogram `tinygen score` prints after the scores."""
    lines = text.splitlines()[3:]
    assert lines[0].startswith("digits among the samples"), text
    rows = {}
    for line in lines[1:11]:
        row = re.match(r"  (\d): +(\d+) +(\d+\.\d)%  \(test +(\d+\.\d)%\)  (#*)$", line)
        assert row, line
        count, share = int(row.group(2)), float(row.group(3))
        assert abs(len(row.group(5)) - 2 * share) <= 1  # 10% = 20 marks
        rows[int(row.group(1))] = (count, share, float(row.group(4)))
    assert sorted(rows) == list(range(10))
    assert lines[11].startswith("under-represented (below 0.67 of their share among the test "
                                "digits): ")
    return rows, lines[11]


def test_the_histogram_of_the_test_digits_is_theirs_and_none_under_represented(bundled_test_digits,
                                                                                 tmp_path, capsys):
    real = tmp_path / "real.npz"
    np.savez(real, samples=bundled_test_digits)
    assert cli.main(["score", str(real), "--data", "bundled"]) == 0
    rows, verdict = histogram(capsys.readouterr().out)
    assert sum(count for count, _, _ in rows.values()) == len(bundled_test_digits)
    for count, share, test_share in rows.values():
        assert share == test_share  # the same images, the same classes
    assert verdict.endswith(": none")


def test_samples_of_one_digit_show_in_the_histogram_and_the_other_nine_are_named(tmp_path,
                                                                               capsys):
    """Planted mode collapse: the bundled test digits labelled 7, as samples."""
    images, labels = load_mnist("test", subset="bundled")
    sevens = images[labels == 7].astype(np.float32) / 255
    path = tmp_path / "sevens.npz"
    np.savez(path, samples=sevens)
    assert cli.main(["score", str(path), "--data", "bundled"]) == 0
    rows, verdict = histogram(capsys.readouterr().out)
    assert rows[7][0] >= 0.95 * len(sevens)  # the classifier is ~99% right on test digits
    assert rows[7][1] > 95
    named = re.findall(r"(\d) \((\d+\.\d)% against (\d+\.\d)%\)", verdict)
    assert sorted(int(d) for d, _, _ in named) == [0, 1, 2, 3, 4, 5, 6, 8, 9]


def test_under_represented_compares_shares_with_the_test_digits():
    from tinygen import mnist_classifier as mc
    test = np.array([100, 200, 100, 100, 100, 100, 100, 100, 100, 100])  # ones: twice as common
    samples = np.array([100, 110, 100, 100, 50, 100, 100, 100, 100, 100])
    # shares: ones 110/960 against 200/1100 (0.63 of it), fours 50/960 against 100/1100 (0.57);
    # the others 100/960 against 100/1100 (1.15)
    assert mc.under_represented(samples, test) == [4, 1]
    assert mc.under_represented(samples, test, fraction=0.6) == [4]
    assert mc.under_represented(test, test) == []
    assert mc.under_represented(np.eye(10, dtype=int)[3], test) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def write_text(path):
    path.write_text("not an archive\n")


def write_npy(path):
    with open(path, "wb") as f:  # np.save would add .npy to the name
        np.save(f, np.zeros((200, 784), np.float32))


def writer(**arrays):
    def write(path):
        with open(path, "wb") as f:  # np.savez would add .npz to other names
            np.savez(f, **arrays)
    return write


def uniform(shape, lo=0.0, hi=1.0, dtype=np.float32):
    return np.random.default_rng(0).uniform(lo, hi, size=shape).astype(dtype)


with_nan = uniform((200, 784))
with_nan[3, 5] = np.nan


@pytest.mark.parametrize("write, words", [
    (None, ["no such file"]),
    (write_text, ["not an .npz"]),
    (write_npy, ["not an .npz"]),
    (writer(images=uniform((200, 784))), ["no 'samples' array", "'images'"]),
    (writer(samples=uniform((200, 3, 28, 28))), ["shape (200, 3, 28, 28)"]),
    (writer(samples=uniform((200, 27, 27))), ["shape (200, 27, 27)"]),
    (writer(samples=uniform((784,))), ["shape (784,)"]),
    (writer(samples=uniform((200, 784), 0, 255, np.uint8)), ["dtype uint8"]),
    (writer(samples=uniform((200, 784)).astype(np.float16)), ["dtype float16"]),
    (writer(samples=uniform((200, 784), -1, 1)), ["spans [-1", "(x + 1) / 2"]),
    (writer(samples=uniform((200, 784), 0, 255)), ["spans [0", "255"]),
    (writer(samples=with_nan), ["NaN"]),
    (writer(samples=uniform((100, 784))), ["100 images", f"at least {cli.MIN_SCORED}",
                                           "covariance"]),
], ids=["missing", "text", "npy", "no-samples", "3-channels", "27x27", "one-image", "uint8",
        "float16", "symmetric", "0-255", "nan", "too-few"])
def test_bad_samples_are_a_one_line_error(write, words, tmp_path, capsys):
    path = tmp_path / "samples.npz"
    if write is not None:
        write(path)
    assert cli.main(["score", str(path), "--data", "bundled"]) == 2
    one_line_error(capsys, str(path), *words)


def test_scoring_a_checkpoint_says_how_to_sample_from_it(gan, capsys):
    assert cli.main(["score", str(gan[0]), "--data", "bundled"]) == 2
    one_line_error(capsys, "is a checkpoint", "tinygen sample")


def test_score_with_a_missing_data_folder_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "samples.npz"
    writer(samples=uniform((200, 784)))(path)
    assert cli.main(["score", str(path), "--data", str(tmp_path / "no-mnist")]) == 2
    one_line_error(capsys, "no such folder")


def test_a_little_round_off_outside_0_1_is_accepted(tmp_path, capsys):
    x = uniform((200, 784))
    x[0, 0], x[0, 1] = -1e-4, 1 + 1e-4
    path = tmp_path / "samples.npz"
    writer(samples=x)(path)
    assert cli.main(["score", str(path), "--data", "bundled"]) == 0
    scores(capsys.readouterr().out)


def test_a_dcgan_checkpoint_of_the_classic_network_still_samples(folder, tmp_path, capsys):
    """`tinygen train dcgan` trained the classic network before issue 23: such a checkpoint is
    sampled with today's dcgan-classic recipe, and the command says so."""
    tg.manual_seed(1)
    classic = cli.RECIPES["dcgan-classic"].build()
    path = tmp_path / "old-dcgan.npz"
    save({"recipe": "dcgan", "model": classic.state_dict()}, path)
    out = tmp_path / "old.png"
    assert cli.main(["sample", str(path), "--n", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "today's 'dcgan-classic' recipe" in printed and "4 samples from dcgan" in printed
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    broken = dict(classic.state_dict())
    broken.pop("generator.0.weight")
    save({"recipe": "dcgan", "model": broken}, path)
    assert cli.main(["sample", str(path), "--out", str(out)]) == 2
    one_line_error(capsys, "does not fit today's 'dcgan' recipe", "missing keys")
