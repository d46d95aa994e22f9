"""INI inventories, read the way Ansible's ``ini`` plugin reads them.

Sections are ``[group]``, ``[group:hosts]``, ``[group:children]`` and ``[group:vars]``; lines before
the first section are ungrouped hosts. Host lines are shell-split (``#`` starts a comment) into a host
entry (ranges and ``:port`` allowed) and ``key=value`` pairs. Values are typed with
``ast.literal_eval`` when that succeeds (``23`` → 23, ``True`` → True, ``'x'`` → "x") and kept as
text otherwise; tuples and sets become lists, complex numbers and ``...`` text, and bytes literals
untrusted text. Group names are kept as written (Ansible 2.19 only warns about unusual characters).
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from .addresses import RangeError, expand_host_pattern
from .data import BuildError, InventoryBuilder
from .errors import InventoryError
from .values import UnsafeText

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_LINE = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")


def parse_value(text: str) -> Any:
    """Type an INI value as Ansible does (``ast.literal_eval`` or the text itself)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set):
        return [_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return UnsafeText(value.decode("utf-8", "surrogateescape"))
    return value


def parse_ini(text: str, path: str, builder: InventoryBuilder) -> None:
    """Add the groups, hosts and variables of one INI source to ``builder``."""
    pending: dict[str, dict[str, Any]] = {}
    group, state = "ungrouped", "hosts"
    lineno = 0
    try:
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            m = _SECTION.match(line)
            if m:
                group = m.group(1)
                state = m.group(2) or "hosts"
                if state not in ("hosts", "children", "vars"):
                    raise BuildError(f"section [{m.group(1)}:{state}] has unknown type {state!r}")
                if group not in builder.groups:
                    if state == "vars" and group not in pending:
                        pending[group] = {"line": lineno, "state": "vars", "parents": []}
                    builder.add_group(group)
                if group in pending and state != "vars":
                    if pending[group]["state"] == "children":
                        _resolve_pending_child(builder, group, pending)
                    else:
                        del pending[group]
                continue
            if line.startswith("[") and line.endswith("]"):
                raise BuildError(f"invalid section header {line!r}: no spaces or other characters allowed")
            if state == "hosts":
                _parse_host_line(line, group, builder)
            elif state == "vars":
                key, sep, value = line.partition("=")
                if not sep:
                    raise BuildError(f"expected key=value, got {line!r}")
                builder.set_group_var(group, key.strip(), parse_value(value.strip()))
            else:
                m = _GROUP_LINE.match(line)
                if not m:
                    raise BuildError(f"expected a group name, got {line!r}")
                child = m.group(1)
                if child in builder.groups:
                    builder.add_child(group, child)
                elif child in pending:
                    pending[child]["parents"].append(group)
                else:
                    pending[child] = {"line": lineno, "state": "children", "parents": [group]}
    except (BuildError, RangeError) as exc:
        raise InventoryError(str(exc), path, lineno) from None
    for name, decl in pending.items():
        if decl["state"] == "vars":
            message = f"section [{name}:vars] is for group {name!r}, which is not defined"
        else:
            message = f"section [{decl['parents'][-1]}:children] names group {name!r}, which is not defined"
        raise InventoryError(message, path, decl["line"])


def _resolve_pending_child(builder: InventoryBuilder, group: str, pending: dict[str, dict[str, Any]]) -> None:
    for parent in pending[group]["parents"]:
        builder.add_child(parent, group)
        if parent in pending and pending[parent]["state"] == "children":
            _resolve_pending_child(builder, parent, pending)
    pending.pop(group, None)


def _parse_host_line(line: str, group: str, builder: InventoryBuilder) -> None:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise BuildError(f"cannot parse host line {line!r}: {exc}") from None
    if not tokens:
        raise BuildError(f"cannot parse host line {line!r}")
    entry = tokens[0]
    names, port = expand_host_pattern(entry)
    if entry.strip().endswith(":") and port is None:
        raise BuildError(f"host entry {entry!r} ends in ':' (reserved for a port)")
    if any(n.strip() == "---" for n in names):
        raise BuildError(f"host entry {entry!r} looks like the start of a YAML document")
    variables: dict[str, Any] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep:
            raise BuildError(f"expected key=value after the host name, got {token!r}")
        variables[key] = parse_value(value)
    for name in names:
        builder.add_host(name, group, port)
    builder.set_range_vars(names, variables)
