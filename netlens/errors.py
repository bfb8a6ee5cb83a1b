"""Errors that reach the user as one clear sentence instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can act on; the CLI prints ``str(self)`` and exits with ``exit_code``.

    The message must be one plain sentence that says what went wrong and, where
    possible, what to do about it (for example how to start the server).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
