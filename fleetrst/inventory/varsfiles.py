"""``group_vars/`` and ``host_vars/`` beside each inventory source (inside it, for a directory).

For an entity NAME the first of ``NAME`` (file, or directory read recursively in sorted order),
``NAME.yml``, ``NAME.yaml``, ``NAME.json`` that exists is used; inside a directory, hidden names,
names ending in ``~`` and files with other extensions are skipped. Files are YAML (or JSON);
an empty file adds nothing; anything but a mapping is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import InventoryError
from .yamlload import load_yaml, read_text

_EXTENSIONS = ("", ".yml", ".yaml", ".json")


class VarsFiles:
    """Finds and loads vars files once; later look-ups are answered from memory."""

    def __init__(self, sources: list[str]) -> None:
        self.bases: list[str] = []
        for source in sources:
            if source == "-" or ("," in source and not os.path.exists(source)):
                continue  # standard input and a host list have no directory
            path = os.path.abspath(os.path.expanduser(source))
            base = path if os.path.isdir(path) else os.path.dirname(path)
            self.bases.append(os.path.realpath(base))
        self._dirs: dict[str, frozenset[str] | None] = {}
        self._files: dict[str, Mapping[str, Any]] = {}
        self._found: dict[tuple[str, str], tuple[str, ...]] = {}

    def merged(self, kind: str, names: list[str]) -> dict[str, Any]:
        """Vars of ``kind`` (group_vars or host_vars) for ``names``: source by source, then name by name.

        This is Ansible's order: a later source's file for an early group beats an earlier source's
        file for a later group.
        """
        merged: dict[str, Any] = {}
        for base in self.bases:
            directory = os.path.join(base, kind)
            for name in names:
                if not name or name.startswith(os.sep):
                    continue  # Ansible skips "chroot"-style names
                for path in self._find(directory, name):
                    merged.update(self._load(path))
        return merged

    def defines(self, kind: str, names: list[str], key: str) -> bool:
        """Whether a vars file of ``kind`` for one of ``names`` sets ``key``."""
        return any(
            key in self._load(path)
            for base in self.bases
            for name in names
            if name and not name.startswith(os.sep)
            for path in self._find(os.path.join(base, kind), name)
        )

    def _listing(self, directory: str) -> frozenset[str] | None:
        if directory not in self._dirs:
            try:
                self._dirs[directory] = frozenset(os.listdir(directory)) if os.path.isdir(directory) else None
            except OSError:
                self._dirs[directory] = None
        return self._dirs[directory]

    def _find(self, directory: str, name: str) -> tuple[str, ...]:
        key = (directory, name)
        if key in self._found:
            return self._found[key]
        result: tuple[str, ...] = ()
        listing = self._listing(directory)
        # A name holding a path separator points into a subdirectory: ask the file system.
        if listing is not None and (os.sep in name or any(name + ext in listing for ext in _EXTENSIONS)):
            for ext in _EXTENSIONS:
                candidate = os.path.join(directory, name + ext)
                if os.path.isdir(candidate):
                    result = tuple(_walk(candidate))
                    break
                if os.path.exists(candidate):
                    result = (candidate,)
                    break
        self._found[key] = result
        return result

    def _load(self, path: str) -> Mapping[str, Any]:
        if path not in self._files:
            text = read_text(path)
            if text.startswith("$ANSIBLE_VAULT"):
                raise InventoryError("this vars file is vault-encrypted; fleetrst cannot decrypt it", path, 1)
            data = load_yaml(text, path)
            if not data:
                data = {}  # Ansible ignores empty (falsy) files
            if not isinstance(data, Mapping):
                raise InventoryError(f"a vars file must be a mapping, got {type(data).__name__}", path, 1)
            self._files[path] = data
        return self._files[path]


def _walk(directory: str) -> list[str]:
    found: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise InventoryError(f"cannot read vars directory: {exc.strerror or exc}", directory) from None
    for name in names:
        if name.startswith(".") or name.endswith("~"):
            continue
        full = os.path.join(directory, name)
        ext = os.path.splitext(name)[1]
        if os.path.isdir(full):
            if not ext:
                found.extend(_walk(full))
        elif os.path.isfile(full) and (not ext or ext in _EXTENSIONS):
            found.append(full)
    return found
