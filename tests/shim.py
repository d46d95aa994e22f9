"""A PATH shim: every program a shell could find, wrapped so that each run is logged, some replaced.

What a shell script really executes cannot be read off its text (a ``| head -c`` added to a step
looks like any other step); it can be seen by running it with ``PATH`` pointing at a directory where
each program is a small script that appends its name and arguments to a log, then execs the real
program (same pid: a ``kill $!`` still reaches it). Builtins (``echo``, ``wait``, ``trap``, ``kill``,
``command -v``) never reach the shim, so the log holds exactly the fork+execs of the script.
``replace`` swaps a program's body for a script of the test's (a tool that floods, that fails).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# One logging script; every program name in the shim is a symlink to it, and it execs the program of
# the same name in a directory of symlinks to the real ones (cheap to build for ~1,500 programs).
_WRAPPER = """#!/bin/sh
n=${{0##*/}}; l=$n; for a in "$@"; do l="$l	$a"; done
printf '%s\\n' "$l" >>{log}
{body}
"""


def _programs(path: str) -> dict[str, str]:
    """Every executable a shell would find on ``path``: name -> its absolute path (first one wins)."""
    found: dict[str, str] = {}
    for directory in path.split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name not in found and "\t" not in entry.name and "\n" not in entry.name:
                try:
                    if entry.is_file() and os.access(entry.path, os.X_OK):
                        found[entry.name] = entry.path
                except OSError:
                    continue
    return found


class PathShim:
    """A directory of logging wrappers for the programs on ``search_path`` (``path`` to use as PATH).

    Built in memory (/dev/shm) where there is one: ~3,000 symlinks on a busy disk take seconds. Removed
    when the shim is garbage-collected; ``root`` is where it goes when there is no /dev/shm."""

    def __init__(
        self, root: Path, *, replace: Mapping[str, str] | None = None, search_path: str | None = None
    ) -> None:
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            root = Path(tempfile.mkdtemp(prefix="fleetrst-shim-", dir="/dev/shm"))
            root.chmod(0o755)
            weakref.finalize(self, shutil.rmtree, root, True)
        self.dir = root / "shim-bin"
        self.dir.mkdir(parents=True)
        self.log = root / "shim.log"
        self.log.write_text("")
        self.log.chmod(0o666)  # a program run as another user (sudo -u) still logs
        replace = dict(replace or {})
        real = _programs(search_path or f"{os.environ.get('PATH', '')}:{SYSTEM_PATH}")
        real_dir = root / "shim-real"
        real_dir.mkdir()
        log = shlex.quote(str(self.log))
        dispatch = root / "shim-dispatch"
        dispatch.write_text(_WRAPPER.format(log=log, body=f'exec {shlex.quote(str(real_dir))}/"$n" "$@"'))
        dispatch.chmod(0o755)
        for name, path in real.items():
            (real_dir / name).symlink_to(path)
            if name not in replace:
                (self.dir / name).symlink_to(dispatch)
        for name, body in replace.items():
            wrapper = self.dir / name
            wrapper.write_text(_WRAPPER.format(log=log, body=body))
            wrapper.chmod(0o755)

    @property
    def path(self) -> str:
        return str(self.dir)

    def runs(self) -> list[list[str]]:
        """Every program run through the shim, in the order they started: [name, *arguments]."""
        return [line.split("\t") for line in self.log.read_text().splitlines()]

    def names(self) -> list[str]:
        return [run[0] for run in self.runs()]
