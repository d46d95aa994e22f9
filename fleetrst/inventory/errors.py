"""The inventory layer's two errors: one line each, naming the file and line, or the pattern."""

from __future__ import annotations

from ..errors import UsageError


class InventoryError(UsageError):
    """A source could not be read or understood. ``str()`` is one line: ``path:line: what is wrong``.

    ``PatternError`` is a subclass, so catching ``InventoryError`` catches every error of this layer.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = " ".join(message.split())  # always one line
        self.path = path
        self.line = line
        super().__init__(str(self))  # a usage error: exit 64

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class PatternError(InventoryError):
    """A host pattern or ``--limit`` that cannot be evaluated (bad regex, bad subscript, missing @file)."""
