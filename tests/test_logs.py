"""What a run writes to a terminal and to a log file: progress bars only on a terminal (unless
forced), one line of metrics per epoch either way, and each warning of the command on one line."""
import contextlib
import io
import subprocess
import sys
import urllib.request
import warnings

import pytest

import tinygen as tg
from tinygen import cli, nn
from tinygen.data import mnist
from tinygen.train import fit


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, as sys.stderr is in an interactive shell."""

    def isatty(self):
        return True


class Regression(nn.Module):
    """y = x W^T + b with a mean-squared-error loss."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def loss(self, x, y):
        error = self.fc(x) - y
        return (error * error).mean(), {}


def fit_briefly(**options):
    """Two epochs of two batches each, with fit's output options."""
    tg.manual_seed(0)
    model = Regression()
    batches = [(tg.randn(8, 3), tg.randn(8, 1)) for _ in range(2)]
    return fit(model, batches, tg.optim.SGD(model.parameters(), lr=0.01), epochs=2, **options)


@pytest.mark.parametrize("progress, stderr, bar_drawn", [
    (None, FakeTerminal, True),    # the default: a bar on a terminal
    (None, io.StringIO, False),    # ... and none in a file or pipe
    (True, io.StringIO, True),     # forced on
    (False, FakeTerminal, False),  # forced off
])
def test_the_progress_bar_is_drawn_only_on_a_terminal_unless_forced(progress, stderr,
                                                                    bar_drawn, capsys):
    stream = stderr()
    with contextlib.redirect_stderr(stream):
        fit_briefly(progress=progress)
    assert ("\r" in stream.getvalue()) == bar_drawn
    assert ("epoch 1/2" in stream.getvalue()) == bar_drawn  # the bar's label


@pytest.mark.parametrize("progress, epoch_lines, printed", [
    (None, None, True),    # the default, bar or no bar
    (True, None, True),
    (False, None, False),  # progress=False alone is silent, as the lessons want
    (False, True, True),   # what `tinygen train --no-progress` asks for
    (None, False, False),
])
def test_one_line_of_metrics_per_epoch_on_stdout(progress, epoch_lines, printed, capsys):
    with contextlib.redirect_stderr(io.StringIO()):
        fit_briefly(progress=progress, epoch_lines=epoch_lines)
    lines = capsys.readouterr().out.splitlines()
    if printed:
        assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
        assert all(", seconds " in line and "\r" not in line for line in lines)
        assert lines[0].startswith("epoch 1/2: loss ")
    else:
        assert lines == []


class FlushRecorder(io.StringIO):
    """A text stream that keeps what it held each time it was flushed."""

    def __init__(self):
        super().__init__()
        self.flushed = []

    def flush(self):
        self.flushed.append(self.getvalue())
        super().flush()


def test_each_epoch_line_is_flushed_at_once_for_a_log_file_being_watched():
    stdout = FlushRecorder()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        fit_briefly()
    assert [text.count("\n") for text in stdout.flushed if text][:2] == [1, 2]


def test_train_into_a_log_file_has_epoch_lines_and_no_bar_updates(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as f:  # `tinygen train ae ... > train.log 2>&1`
        result = subprocess.run(
            [sys.executable, "-m", "tinygen", "train", "ae", "--quick", "--data", "bundled",
             "--out", str(tmp_path / "run")], stdout=f, stderr=subprocess.STDOUT, timeout=300)
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text
    lines = text.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 1, text
    assert epoch_lines[0].startswith("epoch 1/1: loss ") and ", val_loss " in epoch_lines[0]
    assert lines[-1].startswith("done: checkpoint.npz")


def test_train_progress_option_forces_the_bar_into_a_pipe(tmp_path, capsys):
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        assert cli.main(["train", "ae", "--quick", "--data", "bundled", "--out",
                         str(tmp_path / "run"), "--progress"]) == 0
    assert "\r" in stream.getvalue()
    assert "epoch 1/1: loss " in capsys.readouterr().out


def test_train_no_progress_option_keeps_the_epoch_lines(tmp_path, capsys):
    stream = FakeTerminal()
    with contextlib.redirect_stderr(stream):
        assert cli.main(["train", "ae", "--quick", "--data", "bundled", "--out",
                         str(tmp_path / "run"), "--no-progress"]) == 0
    assert "\r" not in stream.getvalue() and "epoch 1/1" not in stream.getvalue()
    assert "epoch 1/1: loss " in capsys.readouterr().out


def test_the_offline_fallback_warning_is_one_line_and_python_shows_warnings_after(
        monkeypatch, tmp_path, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("the test must not download")

    # Offline: no TINYGEN_DATA, an empty cache, no mirrors, and no network to reach anyway.
    monkeypatch.delenv("TINYGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mnist, "MIRRORS", ())
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    python_showwarning = warnings.showwarning
    code = cli.main(["train", "ae", "--quick", "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err  # one warning per split, each on one line, no source line
    for split, line in zip(("train", "test"), err):
        assert line.startswith(f"tinygen: warning: MNIST {split} files not found in ")
        assert line.endswith("using the bundled subset (10000 train / 2000 test images)")
    assert warnings.showwarning is python_showwarning  # restored for library users
