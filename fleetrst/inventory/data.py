"""Groups and hosts as the sources declare them, built up source after source, then frozen.

``InventoryBuilder`` keeps Ansible's bookkeeping rules: every group without a parent becomes a child
of ``all``; a host is in ``ungrouped`` only when it is in no other group; ``ansible_group_priority``
set in a source is the group's priority, not a variable; a port from ``host:2222`` is set only when
the host is first seen; a child that is also an ancestor is a loop and an error.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .addresses import LOCALHOST_NAMES


class BuildError(ValueError):
    """An inconsistency found while adding groups, hosts or variables (the parser adds file:line)."""


class _HasParents(Protocol):
    @property
    def parents(self) -> Iterable[str]: ...


def ancestors(groups: Mapping[str, _HasParents], name: str) -> set[str]:
    """Every group above ``name``: its parents, their parents, and so on."""
    seen: set[str] = set()
    todo = list(groups[name].parents)
    while todo:
        g = todo.pop()
        if g not in seen:
            seen.add(g)
            todo.extend(groups[g].parents)
    return seen


@dataclass(frozen=True)
class Group:
    name: str
    hosts: tuple[str, ...]  # direct members, in the order they were added
    children: tuple[str, ...]
    parents: tuple[str, ...]
    vars: Mapping[str, Any]  # inline vars from the sources (not group_vars/)
    priority: int = 1
    depth: int = 0  # longest path from "all"


@dataclass(frozen=True)
class Host:
    name: str
    vars: Mapping[str, Any]  # inline vars from the sources (not host_vars/), incl. a port from host:NN
    groups: tuple[str, ...]  # direct groups
    source: str | None = None  # the first source that named the host (Ansible's inventory_file)
    implicit: bool = False  # the implicit localhost Ansible creates when a pattern asks for it


@dataclass
class _GroupDraft:
    name: str
    hosts: dict[str, None] = field(default_factory=dict)
    children: dict[str, None] = field(default_factory=dict)
    parents: dict[str, None] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class _HostDraft:
    name: str
    source: str | None
    vars: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, None] = field(default_factory=dict)


def _own_copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def as_priority(value: Any) -> int:
    """``ansible_group_priority`` as Ansible reads it: ``int(value)``."""
    if isinstance(value, bool | int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            pass
    raise BuildError(f"ansible_group_priority must be an integer, got {value!r}")


class InventoryBuilder:
    def __init__(self) -> None:
        self.current_source: str | None = None
        self.clear()

    def clear(self) -> None:
        """Forget every group and host (a source that stands for all those before it replaces them)."""
        self.groups: dict[str, _GroupDraft] = {}
        self.hosts: dict[str, _HostDraft] = {}
        self.localhost: str | None = None
        self.same_names: dict[str, None] = {}  # hosts whose variables went to a group of their name
        for name in ("all", "ungrouped"):
            self.add_group(name)
        self.add_child("all", "ungrouped")

    def add_group(self, name: Any) -> str:
        if not isinstance(name, str):
            raise BuildError(f"group name must be a string, got {name!r}")
        if not name:
            raise BuildError("empty group name")
        if name not in self.groups:
            self.groups[name] = _GroupDraft(name)
        return name

    def add_host(self, name: Any, group: str | None = None, port: int | None = None) -> str:
        if not isinstance(name, str):
            raise BuildError(f"host name must be a string (quote numbers), got {name!r}")
        if not name:
            raise BuildError("empty host name")
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _HostDraft(name, self.current_source)
            if port:
                host.vars["ansible_port"] = int(port)
            if name in LOCALHOST_NAMES and self.localhost is None:
                self.localhost = name
        if group is not None:
            draft = self.groups[group]
            if name not in draft.hosts:
                draft.hosts[name] = None
                host.groups[group] = None
        return name

    def set_group_var(self, group: str, key: Any, value: Any) -> None:
        if key == "ansible_group_priority":
            self.groups[group].priority = as_priority(value)
        else:
            self.groups[group].vars[key] = value

    def set_host_var(self, host: str, key: Any, value: Any) -> None:
        if host in self.groups:
            # As Ansible's InventoryData.set_variable: a name that is already a group's takes the
            # variable as the group's (for all its hosts); a port given with the host stays its own.
            self.set_group_var(host, key, value)
            self.same_names[host] = None
            return
        self.hosts[host].vars[key] = value

    def set_range_vars(self, hosts: list[str], variables: Mapping[Any, Any]) -> None:
        """The variables of one host entry that names several hosts (``web[1:3]``): as in Ansible,
        each host gets its own copy of a list or mapping, never one shared with the others (so that
        ``--yaml`` writes it out for each, without anchors)."""
        for i, host in enumerate(hosts):
            for key, value in variables.items():
                self.set_host_var(host, key, value if i == 0 else _own_copy(value))

    def add_child(self, parent: str, child: str) -> None:
        if parent == child:
            raise BuildError(f"group {child!r} cannot be a child of itself")
        p, c = self.groups[parent], self.groups[child]
        if child in p.children:
            return
        if child in self._ancestors(parent):
            raise BuildError(f"adding group {child!r} as a child of {parent!r} creates a dependency loop")
        p.children[child] = None
        c.parents[parent] = None

    def _ancestors(self, name: str) -> set[str]:
        return ancestors(self.groups, name)

    def reconcile(self) -> None:
        """Apply Ansible's end-of-parse rules: parentless groups under ``all``; fix ``ungrouped``."""
        for name, draft in self.groups.items():
            if name != "all" and not draft.parents:
                self.add_child("all", name)
        ungrouped = self.groups["ungrouped"]
        # Where Ansible would lose or misplace data without a word, refuse (as for the rest: loudly).
        nested = [p for p in ungrouped.parents if p != "all"]
        if nested and ungrouped.hosts:
            lost = ", ".join(list(ungrouped.hosts)[:5]) + ("..." if len(ungrouped.hosts) > 5 else "")
            raise BuildError(
                f"group 'ungrouped' is a child of {nested[0]!r}: Ansible then drops its hosts ({lost}) "
                "from the inventory without a word; list them under 'all' or a group of their own"
            )
        for name, host in self.hosts.items():
            if "ungrouped" in host.groups:
                if set(host.groups) - {"all", "ungrouped"}:
                    del ungrouped.hosts[name]
                    del host.groups["ungrouped"]
            elif not host.groups or list(host.groups) == ["all"]:
                if name in self.groups:
                    # Ansible's add_child() prefers a group of the same name: the *group* ends up
                    # under ungrouped and the host stays in "all" only. Kept for identical output.
                    if name != "ungrouped" and "ungrouped" not in self._ancestors(name) | {name}:
                        self.add_child("ungrouped", name)
                    continue
                ungrouped.hosts[name] = None
                host.groups["ungrouped"] = None

    def freeze(self) -> tuple[dict[str, Group], dict[str, Host]]:
        depth: dict[str, int] = {}

        def depth_of(name: str) -> int:
            if name not in depth:
                parents = self.groups[name].parents
                depth[name] = max((depth_of(p) + 1 for p in parents), default=0)
            return depth[name]

        groups = {
            name: Group(
                name=name,
                hosts=tuple(d.hosts),
                children=tuple(d.children),
                parents=tuple(d.parents),
                vars=d.vars,
                priority=d.priority,
                depth=depth_of(name),
            )
            for name, d in self.groups.items()
        }
        hosts = {
            name: Host(name=name, vars=h.vars, groups=tuple(h.groups), source=h.source)
            for name, h in self.hosts.items()
        }
        return groups, hosts
