"""The loaded inventory: groups, hosts, merged variables, pattern selection and targets."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from ..model import ConnectionSettings, Target
from . import output
from .addresses import is_ip_address
from .connection import (
    ConnectionDefaults,
    SettingError,
    honoured_values,
    parse_ssh_args,
    resolve_connection,
)
from .data import BuildError, Group, Host, InventoryBuilder, ancestors
from .errors import InventoryError
from .options import LoadOptions
from .patterns import PatternIndex, select
from .sources import SourceLoader
from .templates import LazyVars, TemplateError
from .varsfiles import VarsFiles

# Ansible's INTERNAL_STATIC_VARS: never shown by ansible-inventory, even when a source sets them.
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path", "ansible_collection_name", "ansible_config_file",
        "ansible_dependent_role_names",
        "ansible_diff_mode", "ansible_facts", "ansible_forks", "ansible_inventory_sources", "ansible_limit",
        "ansible_play_batch", "ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_role_names",
        "ansible_playbook_python", "ansible_role_name", "ansible_role_names", "ansible_run_tags",
        "ansible_skip_tags", "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
        "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars", "playbook_dir",
        "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
    }
)  # fmt: skip


def load_inventory(sources: Sequence[str], options: LoadOptions | None = None) -> Inventory:
    """Load one or more ``-i`` sources (files, directories, scripts, plugin configs, ``a,b`` host
    lists, ``-`` for standard input) into one inventory. What the sources warn about is in
    ``Inventory.warnings``; this layer never prints."""
    if isinstance(sources, str):
        sources = [sources]
    if not sources:
        raise InventoryError("no inventory given: pass at least one -i source")
    loader = SourceLoader(InventoryBuilder(), options or LoadOptions())
    for source in sources:
        loader.load(source)
    builder = loader.builder
    try:
        builder.reconcile()
    except BuildError as exc:
        raise InventoryError(f"{', '.join(sources)}: {exc}") from None
    groups, hosts = builder.freeze()
    warnings = list(loader.warnings)
    warnings += [
        f"host {name!r} has the name of a group: its variables were set on the group, for all the "
        "group's hosts (as Ansible does)"
        for name in builder.same_names
    ]
    return Inventory(list(sources), groups, hosts, builder.localhost, warnings)


class Inventory:
    """An inventory loaded from its sources. Reading it never changes what it selects.

    ``warnings`` lists, once each, what the sources warned about and (after ``targets()``) the ssh
    options in a host's variables that fleetrst does not honour, with the host or group they came
    from: values for the command layer to print.
    """

    def __init__(
        self,
        sources: list[str],
        groups: dict[str, Group],
        hosts: dict[str, Host],
        localhost: str | None,
        warnings: Sequence[str] = (),
    ) -> None:
        self.sources = sources
        self.groups = groups
        self.hosts = hosts
        self.warnings: list[str] = list(dict.fromkeys(warnings))
        self._localhost = localhost
        self._implicit: Host | None = None
        self._vars_files = VarsFiles(sources)
        self._group_hosts: dict[str, list[str]] = {}
        self._ancestors: dict[str, frozenset[str]] = {}
        self._index = PatternIndex(list(groups), list(hosts), self.group_hosts, self._implicit_localhost)

    # --- selection -------------------------------------------------------------------------------

    def select(self, pattern: str = "all", limit: str | Sequence[str] | None = None) -> list[str]:
        """Host names selected by ``pattern`` and ``--limit``, in Ansible's ``--list-hosts`` order."""
        return select(self._index, pattern, limit)

    def group_hosts(self, name: str) -> list[str]:
        """All hosts of a group and its descendants: its own first, then each level of children."""
        if name not in self._group_hosts:
            order: list[str] = [name]
            seen = {name}
            level = [name]
            while level:
                following: list[str] = []
                for group in level:
                    for child in self.groups[group].children:
                        if child not in seen:
                            seen.add(child)
                            following.append(child)
                order.extend(following)
                level = following
            self._group_hosts[name] = list(dict.fromkeys(h for g in order for h in self.groups[g].hosts))
        return self._group_hosts[name]

    def _implicit_localhost(self, name: str) -> str | None:
        if self._localhost is not None:
            return self._localhost
        if self._implicit is None:
            self._implicit = Host(
                name=name,
                vars={"ansible_python_interpreter": sys.executable, "ansible_connection": "local"},
                groups=(),
                implicit=True,
            )
        return self._implicit.name

    def host(self, name: str) -> Host:
        if name in self.hosts:
            return self.hosts[name]
        if self._implicit is not None and self._implicit.name == name:
            return self._implicit
        raise InventoryError(f"no host named {name!r} in the inventory")

    # --- groups and variables ----------------------------------------------------------------------

    def _group_ancestors(self, name: str) -> frozenset[str]:
        if name not in self._ancestors:
            self._ancestors[name] = frozenset(ancestors(self.groups, name))
        return self._ancestors[name]

    def host_groups(self, host: Host) -> set[str]:
        """Every group the host is in, directly or through a child group (``all`` included)."""
        found: set[str] = set()
        for g in host.groups:
            found.add(g)
            found |= self._group_ancestors(g)
        return found

    def group_names(self, host: Host) -> list[str]:
        """Ansible's ``group_names``: sorted, without ``all`` (``ungrouped`` included)."""
        return sorted(self.host_groups(host) - {"all"})

    def _sorted_groups(self, host: Host) -> list[Group]:
        """The host's groups but ``all``, lowest precedence first, as Ansible sorts them."""
        return sorted(
            (self.groups[g] for g in self.host_groups(host) - {"all"}),
            key=lambda g: (g.depth, g.priority, g.name),
        )

    def var_origin(self, host: Host, key: str) -> str:
        """Where the value of ``key`` the host ends up with is set: ``host NAME`` or ``group NAME``."""
        groups = self._sorted_groups(host)
        if self._vars_files.defines("host_vars", [host.name], key) or key in host.vars:
            return f"host {host.name}"
        for group in reversed([self.groups["all"], *groups]):
            if self._vars_files.defines("group_vars", [group.name], key):
                return f"group {group.name}"
        for group in reversed([self.groups["all"], *groups]):
            if key in group.vars:
                return f"group {group.name}"
        return f"host {host.name}"

    def raw_host_vars(self, host: Host) -> dict[str, Any]:
        """The host's variables merged with Ansible's precedence, templates left as written."""
        groups = self._sorted_groups(host)
        merged: dict[str, Any] = dict(self.groups["all"].vars)
        for group in groups:
            merged.update(group.vars)
        merged.update(self._vars_files.merged("group_vars", ["all"]))
        merged.update(self._vars_files.merged("group_vars", [g.name for g in groups]))
        merged.update(host.vars)
        merged.update(self._vars_files.merged("host_vars", [host.name]))
        return merged

    def output_host_vars(self, host: Host) -> dict[str, Any]:
        return {k: v for k, v in self.raw_host_vars(host).items() if k not in INTERNAL_VARS}

    def export_host_vars(self, host: Host) -> dict[str, Any]:
        """``--export``: the host's own variables (inline, then host_vars/), not its groups'."""
        merged = dict(host.vars)
        merged.update(self._vars_files.merged("host_vars", [host.name]))
        return {k: v for k, v in merged.items() if k not in INTERNAL_VARS}

    def output_group_vars(self, group: Group) -> dict[str, Any]:
        merged = dict(group.vars)
        merged.update(self._vars_files.merged("group_vars", [group.name]))
        if group.priority != 1:
            merged["ansible_group_priority"] = group.priority
        return {k: v for k, v in merged.items() if k not in INTERNAL_VARS}

    @cached_property
    def groups_magic(self) -> dict[str, list[str]]:
        """Ansible's ``groups`` magic variable: every group's hosts."""
        return {name: self.group_hosts(name) for name in self.groups}

    def magic_vars(self, host: Host) -> dict[str, Any]:
        short = host.name if is_ip_address(host.name) else host.name.split(".")[0]
        return {
            "inventory_hostname": host.name,
            "inventory_hostname_short": short,
            "group_names": self.group_names(host),
            "groups": self.groups_magic,
            "inventory_file": host.source,
            "inventory_dir": os.path.dirname(host.source) if host.source else None,
        }

    # --- targets -------------------------------------------------------------------------------------

    def targets(self, names: Sequence[str], defaults: ConnectionDefaults) -> list[Target]:
        """One Target per name, in order; a host whose variables do not resolve gets ``error`` set."""
        return [self._target(name, defaults) for name in names]

    def _target(self, name: str, defaults: ConnectionDefaults) -> Target:
        host = self.host(name)
        groups = tuple(g for g in self.group_names(host) if g != "ungrouped")
        raw = self.raw_host_vars(host)
        lazy = LazyVars(raw, self.magic_vars(host))
        try:
            values = honoured_values(raw, lambda var: lazy[var])
            connection = resolve_connection(name, values, defaults)
            ours = {k: lazy[k] for k in raw if isinstance(k, str) and k.startswith("fleetrst_")}
        except (TemplateError, SettingError) as exc:
            return Target(
                name=name,
                groups=groups,
                connection=ConnectionSettings(address=name),
                error=f"host {name}: {exc}",
            )
        if connection.connection != "local":
            self._warn_ignored_ssh_args(host, values)
        return Target(name=name, groups=groups, connection=connection, fleetrst_vars=ours)

    def _warn_ignored_ssh_args(self, host: Host, values: dict[str, tuple[str, Any]]) -> None:
        for setting in ("common_args", "extra_args"):
            if setting not in values:
                continue
            variable, args = values[setting]
            ignored = parse_ssh_args(list(args)).ignored
            if ignored:
                warning = (
                    f"{self.var_origin(host, variable)}: {variable}: fleetrst does not honour "
                    f"{', '.join(repr(option) for option in ignored)} (ignored)"
                )
                if warning not in self.warnings:
                    self.warnings.append(warning)

    # --- what ansible-inventory prints ----------------------------------------------------------------

    def list_json(self, limit: str | None = None, export: bool = False) -> dict[str, Any]:
        """What ``ansible-inventory --list [--limit L] [--export]`` prints (without ``_meta.profile``)."""
        return output.list_json(self, limit, export)

    def graph(self, group: str = "all", vars: bool = False, export: bool = False) -> str:
        """What ``ansible-inventory --graph [GROUP] [--vars] [--export]`` prints."""
        return output.graph(self, group, vars, export)

    def host_json(self, name: str, export: bool = False) -> dict[str, Any]:
        """What ``ansible-inventory --host NAME [--export]`` prints, as a dict."""
        return output.host_json(self, name, export)
