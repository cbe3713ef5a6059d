"""The exceptions front ends map to exit codes: UserError (2, one line, no traceback), Interrupted (130)."""


class UserError(Exception):
    """Bad input: a file, key or line the user can fix. Message is one line."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C after a checkpoint was written."""
