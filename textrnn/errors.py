"""The exceptions front ends map to exit codes: UserError (2, one line, no traceback), Interrupted (130)."""


class UserError(Exception):
    """Bad input: a file, key or line the user can fix. Message is one line."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after a checkpoint was written; `run` is its directory."""

    def __init__(self, message: str, run=None):
        super().__init__(message)
        self.run = run
