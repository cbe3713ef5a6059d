"""The one exception type for mistakes a user can make (exit code 2, one line, no traceback)."""


class UserError(Exception):
    """Bad input: a file, key or line the user can fix. Message is one line."""
