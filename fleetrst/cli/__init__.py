"""The command line: the only layer that parses flags, prints, writes files and exits.

- ``commands``: the one table of commands; one module per command (``sweep``, ``investigate``,
  ``inventory``, ``history``, ``report``, ``config``).
- ``options``: the flags and argument types several commands share.
- ``main``: builds the parser from the table, resolves the settings once for every command, runs the
  command, and is the one place where errors become one-line messages and exit codes.
- ``audit``: what audits add around a sweep (history, textfile, the run lock in ``lock``);
  ``files``: the files commands write.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
