"""What ``ansible-inventory`` and ``ansible --list-hosts`` print, produced from an Inventory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InventoryError
from .values import to_json

if TYPE_CHECKING:
    from .inventory import Inventory


def format_list_hosts(names: Sequence[str]) -> str:
    """Ansible's ``--list-hosts`` layout: ``  hosts (N):`` then one indented name per line."""
    return "".join([f"  hosts ({len(names)}):\n", *(f"    {name}\n" for name in names)])


def list_json(inv: Inventory) -> dict[str, Any]:
    hosts = inv.select("all")
    available = frozenset(hosts)
    result: dict[str, Any] = {}
    seen: set[str] = set()

    def add_group(name: str) -> None:
        group = inv.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            members = [h for h in group.hosts if h in available]
            if members:
                entry["hosts"] = members
        if group.children:
            entry["children"] = list(group.children)
        for child in group.children:
            if child not in seen:
                add_group(child)
                seen.add(child)
        if entry:
            result[name] = entry

    add_group("all")
    hostvars: dict[str, Any] = {}
    for name in hosts:
        values = inv.output_host_vars(inv.host(name))
        if values:
            hostvars[name] = to_json(values, wrap_unsafe=True)
    result["_meta"] = {"hostvars": hostvars}
    return result


def host_json(inv: Inventory, pattern: str) -> dict[str, Any]:
    result: dict[str, Any] = to_json(host_vars(inv, pattern), wrap_unsafe=False)
    return result


def host_vars(inv: Inventory, pattern: str) -> Mapping[str, Any]:
    """The one host ``pattern`` selects (as ``--host`` requires), its variables as Ansible shows them."""
    names = inv.select(pattern)
    if len(names) != 1:
        raise InventoryError(
            f"--host needs exactly one host: {pattern!r} matches {len(names)}"
            + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else "")
        )
    return inv.output_host_vars(inv.host(names[0]))


def _graph_line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def _graph_vars(values: Mapping[str, Any], depth: int) -> list[str]:
    return [
        _graph_line(f"{{{k} = {v}}}", depth) for k, v in sorted(values.items(), key=lambda kv: str(kv[0]))
    ]


def graph(inv: Inventory, group: str = "all", show_vars: bool = False) -> str:
    if group not in inv.groups:
        raise InventoryError(f"--graph needs a group name: there is no group {group!r}")
    lines: list[str] = []

    def walk(name: str, depth: int) -> None:
        lines.append(_graph_line(f"@{name}:", depth))
        node = inv.groups[name]
        for child in node.children:
            walk(child, depth + 1)
        if name != "all":
            for host in node.hosts:
                lines.append(_graph_line(host, depth + 1))
                if show_vars:
                    lines.extend(_graph_vars(inv.output_host_vars(inv.hosts[host]), depth + 2))
        if show_vars:
            lines.extend(_graph_vars(inv.output_group_vars(node), depth + 1))

    walk(group, 0)
    return "\n".join(lines)


def render_inventory(
    inv: Inventory, *, graph: str | None, host: str | None, graph_vars: bool, as_yaml: bool
) -> str:
    """``ansible-inventory --graph [GROUP] [--vars]``, ``--list`` or ``--host HOST``, JSON or YAML."""
    import yaml

    if graph is not None:
        return inv.graph(graph, vars=graph_vars)
    if as_yaml:
        layout = host_vars(inv, host) if host else _yaml_layout(inv)
        return yaml.dump(layout, Dumper=_dumper(), default_flow_style=False, allow_unicode=True).rstrip("\n")
    data: dict[str, Any] = inv.host_json(host) if host else inv.list_json()
    return json.dumps(data, sort_keys=True, indent=4)


def _yaml_layout(inv: Inventory) -> dict[str, Any]:
    """``ansible-inventory --list --yaml``: groups nest their children and hold their hosts' vars.

    As in Ansible, a host's variables are written under the first group that lists it only, and
    empty groups are left out.
    """
    seen_groups: set[str] = set()
    seen_hosts: set[str] = set()

    def group(name: str) -> dict[str, Any]:
        node = inv.groups[name]
        body: dict[str, Any] = {}
        children: dict[str, Any] = {}
        for child in node.children:
            if child in seen_groups:
                children[child] = {}
            else:
                children.update(group(child))
                seen_groups.add(child)
        if children:
            body["children"] = children
        hosts: dict[str, Any] = {}
        for host in node.hosts if name != "all" else ():
            hosts[host] = {} if host in seen_hosts else inv.output_host_vars(inv.hosts[host])
            seen_hosts.add(host)
        if hosts:
            body["hosts"] = hosts
        return {name: body} if body else {}

    return group("all") or {"all": {}}


def _dumper() -> type[Any]:
    import yaml

    from .values import UnsafeText, VaultValue

    class Dumper(yaml.SafeDumper):
        pass

    def represent_vault(dumper: yaml.SafeDumper, value: VaultValue) -> yaml.Node:
        return dumper.represent_scalar("!vault", value.ciphertext, style="|")

    def represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        return dumper.represent_str(str(value))

    def represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.Node:
        return dumper.represent_dict(dict(value))

    Dumper.add_representer(VaultValue, represent_vault)
    Dumper.add_representer(UnsafeText, represent_text)
    Dumper.add_multi_representer(dict, represent_dict)
    return Dumper
