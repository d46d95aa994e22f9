"""Inventory sources: what each ``-i`` is, and who reads it.

- ``a,b:2222``: a host list (a comma, and no such path).
- ``-``: standard input: ``ansible-inventory``'s JSON (``--list`` or ``--list --export``), or a YAML
  or INI inventory.
- A directory: read in sorted order, recursively, skipping what Ansible skips: hidden names,
  ``group_vars``, ``host_vars``, ``vars_plugins`` and the extensions in ``IGNORED_EXTENSIONS``.
- An executable file that starts with ``#!`` (or is a binary): an inventory script (:mod:`.scripts`).
- ``*.toml``: a TOML inventory (:mod:`.tomlinv`).
- A YAML document whose top key is ``plugin:``: a plugin config, resolved by ``ansible-inventory``
  (:mod:`.plugins`).
- JSON or YAML with a ``_meta`` object: an inventory script's or ``ansible-inventory``'s output
  (:mod:`.jsoninv`).
- Otherwise ``*.yml``/``*.yaml``/``*.json`` is a YAML inventory; a file without an extension is YAML
  when it parses as a YAML mapping and INI otherwise; anything else is INI.

Unlike Ansible, which warns and goes on without it, a source that cannot be read or parsed is an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from .addresses import AddressError, parse_address
from .data import InventoryBuilder
from .errors import InventoryError
from .ini import parse_ini
from .jsoninv import (
    JsonInventoryError,
    decode_json,
    decode_wrappers,
    is_inventory_output,
    load_inventory_json,
)
from .options import LoadOptions
from .plugins import needs_earlier_sources, resolve_plugin
from .scripts import is_program, load_script
from .tomlinv import parse_toml_inventory
from .yamlinv import parse_yaml_inventory
from .yamlload import load_yaml, read_text

IGNORED_EXTENSIONS = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)
IGNORED_NAMES = frozenset({"host_vars", "group_vars", "vars_plugins"})
YAML_EXTENSIONS = (".yml", ".yaml", ".json")
STDIN = "-"
STDIN_LABEL = "<stdin>"


def is_host_list(source: str) -> bool:
    return "," in source and not os.path.exists(source)


def is_ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_EXTENSIONS)


class SourceLoader:
    """Loads ``-i`` sources one after the other into one builder, and keeps what they warned about.

    ``ansible_sources`` is what ``ansible-inventory`` would be given to read what was loaded so far
    (None for what it cannot read: standard input, saved JSON output), for a ``constructed`` config.
    """

    def __init__(self, builder: InventoryBuilder, options: LoadOptions) -> None:
        self.builder = builder
        self.options = options
        self.warnings: list[str] = []
        self.ansible_sources: list[tuple[str, str | None]] = []  # (label, what ansible-inventory reads)
        self._stdin_read = False

    def load(self, source: str) -> None:
        """Add one ``-i`` source (a host list, standard input, a file or a directory)."""
        if source == STDIN:
            self._load_stdin()
            return
        if is_host_list(source):
            self._load_host_list(source)
            self.ansible_sources.append((source, source))
            return
        path = os.path.abspath(os.path.expanduser(source))
        if os.path.isdir(path):
            self._load_directory(path)
        elif os.path.exists(path):
            self._load_file(path)
        else:
            raise InventoryError("inventory source not found", source)

    def _load_host_list(self, source: str) -> None:
        self.builder.current_source = None
        for entry in source.split(","):
            entry = entry.strip()
            if not entry:
                continue
            try:
                host, port = parse_address(entry, allow_ranges=False)
            except AddressError:
                host, port = entry, None
            if host not in self.builder.hosts:
                self.builder.add_host(host, "ungrouped", port)

    def _load_stdin(self) -> None:
        if self._stdin_read:
            raise InventoryError("standard input (-i -) can be read only once")
        self._stdin_read = True
        stream = self.options.stdin if self.options.stdin is not None else sys.stdin.buffer
        data = stream.read(self.options.max_output + 1)
        if len(data) > self.options.max_output:
            raise InventoryError("standard input holds more than an inventory should (stopped)", STDIN_LABEL)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InventoryError("standard input is not UTF-8 text", STDIN_LABEL) from None
        self.builder.current_source = None
        self._load_text(text, STDIN_LABEL, "")
        self.ansible_sources.append((STDIN_LABEL, None))

    def _load_directory(self, path: str) -> None:
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise InventoryError(f"cannot read inventory directory: {exc.strerror or exc}", path) from None
        for name in names:
            if is_ignored(name):
                continue
            full = os.path.join(path, name)
            if os.path.isdir(full):
                self._load_directory(full)
            else:
                self._load_file(full)

    def _load_file(self, path: str) -> None:
        self.builder.current_source = path
        try:
            if is_program(path):
                self.warnings += load_script(
                    path,
                    self.builder,
                    timeout=self.options.script_timeout,
                    max_output=self.options.max_output,
                )
                self.ansible_sources.append((path, path))
                return
            self._load_text(read_text(path), path, os.path.splitext(path)[1])
        finally:
            self.builder.current_source = None

    def _load_text(self, text: str, path: str, ext: str) -> None:
        readable: str | None = path if path != STDIN_LABEL else None
        if ext == ".toml":
            parse_toml_inventory(text, path, self.builder)
        elif (doc := _inventory_output(text, path)) is not None:
            self._load_output(doc, path)
            readable = None  # Ansible reads its own output only from a script
        elif ext in YAML_EXTENSIONS:
            data = load_yaml(text, path)
            # empty or only comments: Ansible accepts it (through its INI plugin) as empty
            if data is not None and not isinstance(data, Mapping):
                raise InventoryError(
                    f"a YAML inventory must be a mapping of groups, got {type(data).__name__}", path, 1
                )
            if data is not None and data.get("plugin"):
                self._load_plugin(path, data)
                return
            if data is not None:
                parse_yaml_inventory(data, path, self.builder)
        elif not ext and (data := _yaml_mapping(text, path)) is not None:
            if data.get("plugin"):
                self._load_plugin(path, data)
                return
            parse_yaml_inventory(data, path, self.builder)
        else:
            parse_ini(text, path, self.builder)
        self.ansible_sources.append((path, readable))

    def _load_output(self, doc: Any, path: str) -> None:
        try:
            self.warnings += [f"{path}: {w}" for w in load_inventory_json(doc, self.builder)]
        except JsonInventoryError as exc:
            raise InventoryError(f"this ansible-inventory output is not an inventory: {exc}", path) from None

    def _load_plugin(self, path: str, data: Mapping[Any, Any]) -> None:
        if path == STDIN_LABEL:
            raise InventoryError("a plugin config cannot be read from standard input: give its file", path)
        if needs_earlier_sources(data):
            unreadable = [label for label, readable in self.ansible_sources if readable is None]
            if unreadable:
                raise InventoryError(
                    f"a {data.get('plugin')} config works on the sources before it, and ansible-inventory "
                    f"cannot read {unreadable[0]} (its own JSON output, or standard input): "
                    "give the original sources instead",
                    path,
                )
            earlier = [readable for _, readable in self.ansible_sources if readable is not None]
            result = resolve_plugin(path, [*earlier, path], self.options)
            self._replace(result.doc, path)
        else:
            result = resolve_plugin(path, [path], self.options)
            self._load_output(result.doc, path)
        self.warnings += result.warnings
        self.ansible_sources.append((path, path))

    def _replace(self, doc: Any, path: str) -> None:
        """What ansible-inventory made of every source so far replaces what we had made of them."""
        first_seen = {name: host.source for name, host in self.builder.hosts.items()}
        self.builder.clear()
        self.builder.current_source = path
        self._load_output(doc, path)
        for name, source in first_seen.items():
            if name in self.builder.hosts:
                self.builder.hosts[name].source = source


def _inventory_output(text: str, path: str) -> Any:
    """The document, when ``text`` is JSON (or YAML) of an inventory script or ansible-inventory."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = decode_json(text)
        except JsonInventoryError:
            doc = None
        if doc is not None:
            return doc if is_inventory_output(doc) else None
    if "_meta" not in text:
        return None
    try:
        data = load_yaml(text, path)
    except InventoryError:
        return None
    return decode_wrappers(data) if is_inventory_output(data) else None


def _yaml_mapping(text: str, path: str) -> Mapping[Any, Any] | None:
    """A file without an extension: its YAML mapping, or None when it is not one (then it is INI)."""
    try:
        data = load_yaml(text, path)
    except InventoryError:
        return None
    return data if isinstance(data, Mapping) else None


def load_source(source: str, builder: InventoryBuilder, options: LoadOptions | None = None) -> list[str]:
    """Add one ``-i`` source to ``builder``; return its warnings."""
    loader = SourceLoader(builder, options or LoadOptions())
    loader.load(source)
    return loader.warnings


__all__ = ["STDIN", "SourceLoader", "is_host_list", "is_ignored", "load_source"]
