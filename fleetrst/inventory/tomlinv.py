"""TOML inventories (``*.toml``), read the way Ansible's ``toml`` plugin reads them::

    [web]
    children = ["canary"]
    [web.vars]
    http_port = 8080
    [web.hosts."w[1:3].example.com"]
    [web.hosts."w9.example.com"]
    ansible_port = 2222

Top-level tables are groups; a group holds ``vars`` (a table), ``children`` (a list of group names)
and ``hosts`` (a table of host patterns, each a table of variables; ranges and ``:port`` allowed).
As for YAML, we are stricter than Ansible where it warns and drops data: an unknown key in a group, or
a group that is not a table, is an error here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from .addresses import RangeError, expand_host_pattern
from .data import BuildError, InventoryBuilder
from .errors import InventoryError

_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse_toml_inventory(text: str, path: str, builder: InventoryBuilder) -> None:
    """Add the groups, hosts and variables of one TOML source to ``builder``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _AT_LINE.search(message)
        line = int(m.group(1)) if m else None
        raise InventoryError(f"invalid TOML: {_AT_LINE.sub('', message).strip()}", path, line) from None
    if data.get("plugin"):
        raise InventoryError(
            "a TOML file with 'plugin' is a plugin config, which Ansible reads only as YAML", path
        )
    try:
        for name, body in data.items():
            _group(builder, name, body)
    except (BuildError, RangeError) as exc:
        raise InventoryError(str(exc), path) from None


def _group(builder: InventoryBuilder, name: str, body: Any) -> str:
    if not isinstance(body, Mapping):
        raise BuildError(f"group {name!r} must be a table (with hosts, vars, children), got {body!r}")
    group = builder.add_group(name)
    for key, data in body.items():
        if key == "vars":
            if not isinstance(data, Mapping):
                raise BuildError(f"vars of group {group!r} must be a table, got {data!r}")
            for var, value in data.items():
                builder.set_group_var(group, var, value)
        elif key == "children":
            if not isinstance(data, list):
                raise BuildError(f"children of group {group!r} must be a list of group names, got {data!r}")
            for child in data:
                builder.add_child(group, _group(builder, child, {}))
        elif key == "hosts":
            if not isinstance(data, Mapping):
                raise BuildError(f"hosts of group {group!r} must be a table of hosts, got {data!r}")
            for pattern, variables in data.items():
                _hosts(builder, group, pattern, variables)
        else:
            raise BuildError(
                f"unexpected key {key!r} in group {group!r}: only hosts, vars and children are allowed"
            )
    return group


def _hosts(builder: InventoryBuilder, group: str, pattern: str, variables: Any) -> None:
    try:
        names, port = expand_host_pattern(pattern)
    except RangeError as exc:
        raise BuildError(f"bad host range in {pattern!r}: {exc}") from None
    if not isinstance(variables, Mapping):
        raise BuildError(f"variables of host {pattern!r} must be a table, got {variables!r}")
    for host in names:
        builder.add_host(host, group, port)
    builder.set_range_vars(names, variables)
