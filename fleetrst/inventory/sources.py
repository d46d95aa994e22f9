"""Inventory sources: files (YAML or INI), directories of them, and ``host1,host2`` lists.

A directory is read in sorted order, recursively, skipping what Ansible skips: hidden names,
``group_vars``, ``host_vars``, ``vars_plugins`` and the extensions in ``IGNORED_EXTENSIONS``.
A file named ``*.yml``/``*.yaml``/``*.json`` is YAML; a file without an extension is YAML when it
parses as a YAML mapping and INI otherwise; anything else is INI. Unlike Ansible, which warns and goes
on without it, a source that cannot be read or parsed is an error; executable inventory scripts,
``plugin:`` configs and TOML inventories are refused (fleetrst runs no code from an inventory).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from .addresses import AddressError, parse_address
from .data import InventoryBuilder
from .errors import InventoryError
from .ini import parse_ini
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


def is_host_list(source: str) -> bool:
    return "," in source and not os.path.exists(source)


def is_ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_EXTENSIONS)


def load_source(source: str, builder: InventoryBuilder) -> None:
    """Add one ``-i`` source to ``builder`` (a host list, a file or a directory)."""
    if is_host_list(source):
        _load_host_list(source, builder)
        return
    path = os.path.abspath(os.path.expanduser(source))
    if os.path.isdir(path):
        _load_directory(path, builder)
    elif os.path.exists(path):
        _load_file(path, builder)
    else:
        raise InventoryError("inventory source not found", source)


def _load_host_list(source: str, builder: InventoryBuilder) -> None:
    builder.current_source = None
    for entry in source.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            host, port = parse_address(entry, allow_ranges=False)
        except AddressError:
            host, port = entry, None
        if host not in builder.hosts:
            builder.add_host(host, "ungrouped", port)


def _load_directory(path: str, builder: InventoryBuilder) -> None:
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise InventoryError(f"cannot read inventory directory: {exc.strerror or exc}", path) from None
    for name in names:
        if is_ignored(name):
            continue
        full = os.path.join(path, name)
        if os.path.isdir(full):
            _load_directory(full, builder)
        else:
            _load_file(full, builder)


def _load_file(path: str, builder: InventoryBuilder) -> None:
    ext = os.path.splitext(path)[1]
    text = read_text(path)
    builder.current_source = path
    try:
        if ext == ".toml":
            raise InventoryError("TOML inventories are not supported: use YAML or INI", path)
        if text.startswith("#!") and _is_executable(path):
            raise InventoryError(
                "this is an executable inventory script; fleetrst does not run programs from an inventory",
                path,
            )
        if ext in YAML_EXTENSIONS:
            data = load_yaml(text, path)
            if data is None:
                return  # empty or only comments: Ansible accepts it (through its INI plugin) as empty
            if not isinstance(data, Mapping):
                raise InventoryError(
                    f"a YAML inventory must be a mapping of groups, got {type(data).__name__}", path, 1
                )
            parse_yaml_inventory(data, path, builder)
        elif not ext and _looks_like_yaml_mapping(text, path):
            parse_yaml_inventory(load_yaml(text, path), path, builder)
        else:
            parse_ini(text, path, builder)
    finally:
        builder.current_source = None


def _looks_like_yaml_mapping(text: str, path: str) -> bool:
    try:
        return isinstance(load_yaml(text, path), Mapping)
    except InventoryError:
        return False


def _is_executable(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    except OSError:
        return False
