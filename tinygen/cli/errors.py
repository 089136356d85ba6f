"""The two ways a command ends early: an error to report in one line (exit 2), or Ctrl-C (130)."""


class CommandError(Exception):
    """A problem to report in one line, without a traceback."""


class Interrupted(Exception):
    """Ctrl-C ended the command; the message says what was kept and how to go on (exit 130)."""
