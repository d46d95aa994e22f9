"""Errors that end a command with one line on stderr and a chosen exit code (never a traceback)."""

from __future__ import annotations


class CommandError(Exception):
    """A command cannot go on: ``str(self)`` is the one line to print, ``exit_code`` the code."""

    exit_code = 64

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """A usage or configuration error: exit 64."""
