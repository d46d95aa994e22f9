"""The cache of plugin inventories: what ``ansible-inventory`` printed, reused for a while.

A plugin config usually calls a cloud API; a cron audit every minute, or ``watch``, must not call it on
every run. Entries live in ``$XDG_CACHE_HOME/fleetrst/inventory/`` (``~/.cache/...``), a directory of
mode 0700 owned by the user, one file (0600) an entry, written atomically. An entry is found by a key
made of everything that decides the result (the sources' paths and contents, ansible.cfg, ``ANSIBLE_*``
variables); it is used while younger than the time to live. A cache that cannot be used is skipped
with a warning, never an error: it only saves time.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENTRY_VERSION = 1
_PRUNE_AFTER_S = 7 * 86400  # entries this old are removed when a new one is written


def default_cache_dir(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path(os.path.expanduser("~")) / ".cache"
    return str(root / "fleetrst" / "inventory")


class InventoryCache:
    """Entries by key in ``directory``; ``ttl`` seconds (0: never read nor written)."""

    def __init__(self, directory: str | None, ttl: float) -> None:
        self.directory = directory or default_cache_dir()
        self.ttl = ttl
        self.warnings: list[str] = []

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.json")

    def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """The entry and its age in seconds, when there is a fresh one of ours."""
        if self.ttl <= 0 or not os.path.isdir(self.directory) or not self._ready():
            return None
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_uid != os.getuid() or st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                return None  # not ours, or readable by others: not trusted, never read
            with os.fdopen(fd, "rb", closefd=False) as fh:
                entry = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        if not isinstance(entry, dict) or entry.get("version") != ENTRY_VERSION:
            return None
        created = entry.get("created")
        if not isinstance(created, int | float):
            return None
        age = time.time() - created
        if not -60 <= age < self.ttl:  # a clock set back more than a minute: not trusted either
            return None
        return entry, max(0.0, age)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return
        if not self._ready():
            return
        record = {"version": ENTRY_VERSION, "created": time.time(), **entry}
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)  # created 0600
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(record).encode("utf-8"))
            os.replace(tmp, self._path(key))
            tmp = None
        except OSError as exc:
            self.warnings.append(
                f"cannot write the inventory cache in {self.directory}: {exc.strerror or exc}"
            )
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._prune()

    def _ready(self) -> bool:
        """Create the directory (0700); refuse one that is not ours or that others can write."""
        try:
            parent = os.path.dirname(self.directory)
            if not os.path.isdir(parent):
                os.makedirs(parent, mode=0o700, exist_ok=True)  # $XDG_CACHE_HOME/fleetrst: ours alone too
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            st = os.stat(self.directory)
            if st.st_uid != os.getuid():
                self.warnings.append(
                    f"not using the inventory cache {self.directory}: it belongs to another user"
                )
                return False
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(self.directory, 0o700)
        except OSError as exc:
            self.warnings.append(f"cannot use the inventory cache {self.directory}: {exc.strerror or exc}")
            return False
        return True

    def _prune(self) -> None:
        now = time.time()
        with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_file() and now - entry.stat().st_mtime > max(_PRUNE_AFTER_S, self.ttl):
                        os.unlink(entry.path)
