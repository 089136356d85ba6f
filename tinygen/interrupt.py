"""Ctrl-C that waits for a safe moment: the first one asks a training loop to stop at the next step
boundary (where its state can be saved whole), a second one stops at once.

    with StopRequests() as stop:
        for batch in loader:
            step(batch)
            if stop.requested:
                save(...)
                raise TrainingInterrupted(...)

Python delivers signals to the main thread only, so elsewhere (a worker thread, a notebook
kernel's other threads) StopRequests changes nothing and Ctrl-C behaves as usual. A process
started with SIGINT ignored (`nohup ... &`) keeps ignoring it, as Python programs do.
"""
import os
import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C at a step boundary; .checkpoint is where its state was saved
    (None when it had nowhere to save), .epoch and .step where it stopped."""

    def __init__(self, epoch, step, checkpoint):
        where = f"saved to {checkpoint}" if checkpoint else "not saved (no checkpoint path)"
        super().__init__(f"interrupted in epoch {epoch} after step {step}; {where}")
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint


class StopRequests:
    """Within `with`, the first SIGINT sets .requested; the second raises KeyboardInterrupt."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _on_sigint(self, signum, frame):
        if self.requested:  # the second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        print("\ntinygen: stopping after this step (Ctrl-C again stops at once)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # Started with SIGINT ignored (`nohup tinygen train ... &`): the program that started
            # it asked for Ctrl-C to be ignored, and Python programs leave that alone.
            return self
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def exit_quietly_on_ctrl_c(message):
    """Make Ctrl-C end this script with `message` on one line and exit status 130 (as shells
    count it) instead of a traceback; other exceptions are reported as usual. For scripts that
    do not checkpoint (lessons, benches); a notebook kernel has its own handling and keeps it."""

    def hook(kind, value, traceback):
        if not issubclass(kind, KeyboardInterrupt):
            return sys.__excepthook__(kind, value, traceback)
        sys.stdout.flush()
        print(message, file=sys.stderr, flush=True)
        os._exit(130)  # sys.exit is not honoured inside an excepthook

    sys.excepthook = hook
