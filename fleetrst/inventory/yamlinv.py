"""YAML inventories: top-level keys are groups; a group body holds ``hosts``, ``vars``, ``children``.

Stricter than Ansible where Ansible warns and drops data: an unknown key in a group body, a group
given as something other than a mapping, or ``hosts``/``vars``/``children`` given as a list is an
error here, not a warning. A top-level ``plugin:`` key marks a dynamic-inventory plugin config, not a
YAML inventory: :mod:`.sources` hands those to ``ansible-inventory`` (:mod:`.plugins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .addresses import RangeError, expand_host_pattern
from .data import BuildError, InventoryBuilder
from .errors import InventoryError
from .yamlload import YamlMap

_SECTIONS = ("vars", "children", "hosts")


def _line(mapping: Any, key: Any) -> int | None:
    if isinstance(mapping, YamlMap):
        return mapping.key_lines.get(key) or mapping.line or None
    return None


class _YamlInventory:
    def __init__(self, path: str, builder: InventoryBuilder) -> None:
        self.path = path
        self.builder = builder

    def fail(self, message: str, line: int | None) -> InventoryError:
        return InventoryError(message, self.path, line)

    def parse(self, data: Mapping[Any, Any]) -> None:
        if "plugin" in data and data.get("plugin"):
            raise self.fail(
                "this is a dynamic inventory plugin config (plugin: ...), not a YAML inventory",
                _line(data, "plugin"),
            )
        for name, body in data.items():
            self.group(name, body, _line(data, name))

    def group(self, name: Any, body: Any, line: int | None) -> str:
        try:
            group = self.builder.add_group(name)
        except BuildError as exc:
            raise self.fail(str(exc), line) from None
        if body is None:
            return group
        if not isinstance(body, Mapping):
            raise self.fail(
                f"group {group!r} must be a mapping (with hosts, vars, children), got {_kind(body)}", line
            )
        for key, value in body.items():
            key_line = _line(body, key) or line
            if key not in _SECTIONS:
                raise self.fail(
                    f"unexpected key {key!r} in group {group!r}: only hosts, vars and children are allowed",
                    key_line,
                )
            if isinstance(value, str):
                value = {value: None}  # Ansible accepts a single name as a string
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise self.fail(
                    f"{key} of group {group!r} must be a mapping, got {_kind(value)}"
                    + (" (write hosts as 'name:' keys, not a list)" if key == "hosts" else ""),
                    key_line,
                )
            try:
                if key == "vars":
                    for var, val in value.items():
                        self.builder.set_group_var(group, var, val)
                elif key == "children":
                    for child, child_body in value.items():
                        child_name = self.group(child, child_body, _line(value, child) or key_line)
                        self.builder.add_child(group, child_name)
                else:
                    for entry, host_vars in value.items():
                        self.hosts(group, entry, host_vars, _line(value, entry) or key_line)
            except BuildError as exc:
                raise self.fail(str(exc), key_line) from None
        return group

    def hosts(self, group: str, entry: Any, host_vars: Any, line: int | None) -> None:
        if not isinstance(entry, str):
            raise self.fail(f"host name {entry!r} must be a string: quote numbers", line)
        try:
            names, port = expand_host_pattern(entry)
        except RangeError as exc:
            raise self.fail(f"bad host range in {entry!r}: {exc}", line) from None
        if host_vars is None:
            host_vars = {}
        if not isinstance(host_vars, Mapping):
            raise self.fail(f"variables of host {entry!r} must be a mapping, got {_kind(host_vars)}", line)
        try:
            for name in names:
                self.builder.add_host(name, group, port)
            self.builder.set_range_vars(names, host_vars)
        except BuildError as exc:
            raise self.fail(str(exc), line) from None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"


def parse_yaml_inventory(data: Mapping[Any, Any], path: str, builder: InventoryBuilder) -> None:
    """Add the groups, hosts and variables of one parsed YAML source to ``builder``."""
    _YamlInventory(path, builder).parse(data)
