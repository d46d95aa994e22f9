"""The error vocabulary and the exit codes: every module may read this one.

An error that ends a command carries its one line (``str(exc)``) and its exit code; the command layer
(``fleetrst.cli.main``) is the one place that prints it. No module below the CLI prints or exits.
"""

from __future__ import annotations

# Exit codes, Nagios-style, so that cron and monitoring can act on them.
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3  # some host could not be measured and none warned; also: another run holds the lock
EXIT_USAGE = 64  # a usage or configuration error: one line on stderr, no traceback
EXIT_INTERRUPTED = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report it


class CommandError(Exception):
    """A command cannot go on: ``str(self)`` is the one line to print, ``exit_code`` the code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """A usage error (a flag, a pattern, a file the command needs): exit 64."""


class ConfigError(UsageError):
    """A settings file or variable that cannot be used: exit 64, one line naming where."""
