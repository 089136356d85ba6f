"""Runs that survive interruption: fit's mid-epoch checkpoints and exact resuming, Ctrl-C at a step
boundary (once: saved and TrainingInterrupted; twice: stopped at once, the last checkpoint whole),
kill -9 during a checkpoint write, and `tinygen train --resume` / `--checkpoint-every` with their
one-line messages and exit codes (subprocesses on the bundled MNIST subset, a few seconds each)."""
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygen as tg
from tinygen import cli, nn
from tinygen.data import DataLoader
from tinygen.data.transforms import Binarizer
from tinygen.interrupt import TrainingInterrupted
from tinygen.train import fit


class NoisyAutoencoder(nn.Module):
    """A small autoencoder whose every step draws from the global generator (dropout), so that
    resuming exactly needs the random state as well as the weights."""

    def __init__(self, interrupt_at=(), calls=0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 16))
        self.interrupt_at = set(interrupt_at)  # loss calls at which Ctrl-C is pressed
        self.calls = calls

    def forward(self, x):
        return self.net(x)

    def loss(self, x):
        self.calls += 1
        if self.calls in self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C during the step
        error = self(x) - x
        return (error * error).mean(), {}


def _setup(interrupt_at=()):
    """The same model, optimizer and shuffled, binarised loader every time (5 batches an epoch)."""
    tg.manual_seed(0)
    data = np.random.default_rng(1).random((80, 16)).astype(np.float32)
    loader = DataLoader(data, 16, shuffle=True, seed=2, transform=Binarizer(seed=3))
    model = NoisyAutoencoder(interrupt_at)
    return model, tg.optim.Adam(model.parameters(), lr=1e-2), loader


def _assert_same_weights(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7, err_msg=name)


def test_ctrl_c_saves_at_the_step_boundary_and_resuming_gives_the_uninterrupted_run(tmp_path):
    straight, optimizer, loader = _setup()
    expected = fit(straight, loader, optimizer, epochs=3, progress=False)

    path = str(tmp_path / "run.npz")
    model, optimizer, loader = _setup(interrupt_at={8})  # epoch 2, step 3
    with pytest.raises(TrainingInterrupted) as stop:
        fit(model, loader, optimizer, epochs=3, checkpoint=path, progress=False)
    assert (stop.value.epoch, stop.value.step, stop.value.checkpoint) == (2, 3, path)
    state = tg.load(path)
    assert (state["epoch"], state["step"]) == (1, 3)

    resumed, optimizer, loader = _setup()
    tg.manual_seed(99)  # other random state: all of it must come from the checkpoint
    history = fit(resumed, loader, optimizer, epochs=3, resume=path, progress=False)
    _assert_same_weights(straight, resumed)
    for name in ("loss",):
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-6)


def test_checkpoint_every_writes_within_epochs_and_each_one_resumes_exactly(tmp_path):
    straight, optimizer, loader = _setup()
    fit(straight, loader, optimizer, epochs=2, progress=False)
    seen = []
    path = str(tmp_path / "run.npz")

    def copy_each(epochs_done, step, history):
        seen.append((epochs_done, step))
        if (epochs_done, step) == (0, 2):
            os.replace(path, tmp_path / "early.npz")

    model, optimizer, loader = _setup()
    fit(model, loader, optimizer, epochs=2, checkpoint=path, checkpoint_every=2,
        on_checkpoint=copy_each, progress=False)
    # steps 2 and 4 of each 5-step epoch, then the epoch's own checkpoint
    assert seen == [(0, 2), (0, 4), (1, 0), (1, 2), (1, 4), (2, 0)]
    resumed, optimizer, loader = _setup()
    fit(resumed, loader, optimizer, epochs=2, resume=str(tmp_path / "early.npz"), progress=False)
    _assert_same_weights(straight, resumed)


def test_a_run_started_with_sigint_ignored_keeps_ignoring_it(tmp_path):
    """`nohup tinygen train ... &` starts Python with SIGINT ignored: fit must leave it so."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        model, optimizer, loader = _setup(interrupt_at={3, 4})  # two "Ctrl-C"s, ignored
        history = fit(model, loader, optimizer, epochs=2, checkpoint=str(tmp_path / "run.npz"),
                      progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # left as it was found
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(history["loss"]) == 2 and tg.load(tmp_path / "run.npz")["epoch"] == 2


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    path = str(tmp_path / "run.npz")
    model, optimizer, loader = _setup(interrupt_at={7})
    model.interrupt_at = {7}
    original_loss = model.loss

    def press_twice(x):
        if model.calls + 1 == 7:
            os.kill(os.getpid(), signal.SIGINT)  # the first press; the loss presses again
        return original_loss(x)

    model.loss = press_twice
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs under nohup
    with pytest.raises(KeyboardInterrupt) as stop:
        fit(model, loader, optimizer, epochs=3, checkpoint=path, progress=False)
    assert not isinstance(stop.value, TrainingInterrupted)  # not saved at a step boundary
    state = tg.load(path)  # the checkpoint of epoch 1, whole
    assert (state["epoch"], state["step"]) == (1, 0)
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler given back


def test_a_loader_without_state_is_skipped_by_hand_on_resume(tmp_path):
    batches = [tg.tensor(np.random.default_rng(i).random((4, 16))) for i in range(5)]
    tg.manual_seed(0)
    straight = NoisyAutoencoder()
    fit(straight, batches, tg.optim.SGD(straight.parameters(), lr=0.1), epochs=2, progress=False)
    path = str(tmp_path / "run.npz")
    tg.manual_seed(0)
    model = NoisyAutoencoder(interrupt_at={3})
    with pytest.raises(TrainingInterrupted):
        fit(model, batches, tg.optim.SGD(model.parameters(), lr=0.1), epochs=2, checkpoint=path,
            progress=False)
    tg.manual_seed(0)
    resumed = NoisyAutoencoder()
    fit(resumed, batches, tg.optim.SGD(resumed.parameters(), lr=0.1), epochs=2, resume=path,
        progress=False)
    _assert_same_weights(straight, resumed)


def test_checkpoint_every_must_be_a_positive_number_of_steps():
    model, optimizer, loader = _setup()
    with pytest.raises(ValueError, match="checkpoint_every must be a positive number"):
        fit(model, loader, optimizer, epochs=1, checkpoint_every=0, progress=False)


# ---- the command line, in subprocesses ----------------------------------------------------------
def _python(code, tmp_path, timeout=180):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TINYGEN_QUICK="")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


TRAIN = ["train", "ae", "--quick", "--data", "bundled", "--epochs", "2", "--no-progress"]

# Presses Ctrl-C (SIGINT to itself) during the loss of the given step, counted over the run.
PRESS_CTRL_C = """
import os, signal, sys
from tinygen.models.autoencoders import Autoencoder
from tinygen import cli
original, calls = Autoencoder.loss, [0]
def loss(self, x):
    calls[0] += 1
    if calls[0] == {step}:
        os.kill(os.getpid(), signal.SIGINT)
    return original(self, x)
Autoencoder.loss = loss
sys.exit(cli.main({argv!r}))
"""


def test_cli_ctrl_c_saves_says_how_to_resume_and_the_resumed_run_matches(tmp_path):
    straight = _python(f"import sys; from tinygen import cli; "
                       f"sys.exit(cli.main({TRAIN + ['--out', 'straight']!r}))", tmp_path)
    assert straight.returncode == 0, straight.stderr

    # 8 training steps and 2 validation batches in epoch 1: loss call 13 is epoch 2's step 3
    interrupted = _python(PRESS_CTRL_C.format(step=13, argv=TRAIN + ["--out", "run"]), tmp_path)
    assert interrupted.returncode == 130, interrupted.stderr
    lines = [line for line in interrupted.stderr.splitlines() if line.strip()]
    assert "Traceback" not in interrupted.stderr
    assert lines[-1] == ("tinygen: interrupted in epoch 2 after step 3; saved to "
                         "run/checkpoint.npz. Resume with: tinygen train ae --resume "
                         "run/checkpoint.npz")
    assert tg.load(tmp_path / "run" / "checkpoint.npz")["step"] == 3
    metrics = (tmp_path / "run" / "metrics.json").read_text()
    assert '"epochs_done": 1' in metrics and '"step": 3' in metrics  # agrees with the checkpoint

    resumed = _python("import sys; from tinygen import cli; "
                      "sys.exit(cli.main(['train', 'ae', '--resume', 'run/checkpoint.npz', "
                      "'--no-progress']))", tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = tg.load(tmp_path / "straight" / "checkpoint.npz")["model"]
    b = tg.load(tmp_path / "run" / "checkpoint.npz")["model"]
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_cli_stops_on_a_real_sigint_from_outside(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TINYGEN_QUICK="")
    argv = [sys.executable, "-m", "tinygen", "train", "ae", "--quick", "--data", "bundled",
            "--epochs", "500", "--checkpoint-every", "1", "--no-progress", "--out", "run"]
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # wait for the first checkpoint (up to 2 minutes)
            if (tmp_path / "run" / "checkpoint.npz").exists() or process.poll() is not None:
                break
            subprocess.run(["sleep", "0.1"])
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "Resume with: tinygen train ae --resume run/checkpoint.npz" in stderr.splitlines()[-1]
    tg.load(tmp_path / "run" / "checkpoint.npz")  # whole


# Dies by SIGKILL in the middle of writing the second checkpoint.
KILLED_WHILE_SAVING = """
import os, signal, sys
import numpy as np
from tinygen import checkpoint, cli
original, saves = np.savez, [0]
def savez(f, **arrays):
    saves[0] += 1
    if saves[0] == 2:
        f.write(b"PK\\x03\\x04 half a zip file")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return original(f, **arrays)
checkpoint.np.savez = savez
sys.exit(cli.main({argv!r}))
"""


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    killed = _python(KILLED_WHILE_SAVING.format(argv=TRAIN + ["--out", "run"]), tmp_path)
    assert killed.returncode == -signal.SIGKILL
    state = tg.load(tmp_path / "run" / "checkpoint.npz")  # epoch 1's, whole
    assert (state["epoch"], state["step"]) == (1, 0)
    resumed = _python("import sys; from tinygen import cli; "
                      "sys.exit(cli.main(['train', 'ae', '--resume', 'run/checkpoint.npz', "
                      "'--no-progress']))", tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert tg.load(tmp_path / "run" / "checkpoint.npz")["epoch"] == 2


# ---- --resume's one-line errors -----------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    assert cli.main(TRAIN[:-1] + ["--epochs", "1", "--out", str(out)]) == 0
    return out / "checkpoint.npz"


def _error_line(capsys, argv):
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinygen: error: --resume")
    return lines[0]


def test_resume_from_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    line = _error_line(capsys, ["train", "ae", "--resume", str(tmp_path / "nope.npz")])
    assert "no such file" in line


def test_resume_from_a_corrupt_file_is_a_one_line_error(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(os.urandom(2000))
    assert "is not a tinygen checkpoint" in _error_line(capsys, ["train", "ae", "--resume",
                                                                 str(corrupt)])


def test_resume_with_another_recipe_is_a_one_line_error(finished_run, capsys):
    line = _error_line(capsys, ["train", "vae", "--resume", str(finished_run)])
    assert "a checkpoint of the 'ae' recipe, not 'vae'" in line


def test_resume_from_a_newer_format_is_a_one_line_error(finished_run, tmp_path, capsys):
    state = tg.load(finished_run)
    state["run_format"] = 99
    newer = tmp_path / "newer.npz"
    tg.save(state, newer)
    assert "written by a newer tinygen" in _error_line(capsys, ["train", "ae", "--resume",
                                                                str(newer)])


def test_resume_refuses_other_settings_but_takes_more_epochs(finished_run, tmp_path, capsys):
    run = tmp_path / "run"  # a copy: the shared run stays as the other tests expect it
    shutil.copytree(finished_run.parent, run)
    checkpoint = run / "checkpoint.npz"
    line = _error_line(capsys, ["train", "ae", "--resume", str(checkpoint), "--lr", "0.5"])
    assert "started with lr 0.001, not 0.5" in line
    assert cli.main(["train", "ae", "--resume", str(checkpoint), "--epochs", "2",
                     "--no-progress"]) == 0
    assert tg.load(checkpoint)["epoch"] == 2
    assert tg.load(finished_run)["epoch"] == 1


def test_a_full_disk_is_a_one_line_error_that_keeps_the_last_checkpoint(tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "run"
    assert cli.main(TRAIN[:-1] + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    assert cli.main(["train", "ae", "--resume", str(out / "checkpoint.npz"), "--epochs", "2",
                     "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert "is whole. Resume with: tinygen train ae --resume" in lines[0]
    monkeypatch.undo()
    assert tg.load(out / "checkpoint.npz")["epoch"] == 1  # the last checkpoint, whole
    assert not [p for p in os.listdir(out) if ".tmp-" in p]  # no half-written file left behind
