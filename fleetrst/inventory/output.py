"""What ``ansible-inventory`` and ``ansible --list-hosts`` print, produced from an Inventory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InventoryError
from .values import VaultValue, json_key, to_json

if TYPE_CHECKING:
    from .inventory import Inventory


def format_list_hosts(names: Sequence[str]) -> str:
    """Ansible's ``--list-hosts`` layout: ``  hosts (N):`` then one indented name per line."""
    return "".join([f"  hosts ({len(names)}):\n", *(f"    {name}\n" for name in names)])


def _host_vars(inv: Inventory, name: str, export: bool) -> dict[str, Any]:
    """A host's variables as ansible-inventory shows them: merged, or (``--export``) its own only."""
    host = inv.host(name)
    return inv.export_host_vars(host) if export else inv.output_host_vars(host)


def list_json(inv: Inventory, limit: str | None = None, export: bool = False) -> dict[str, Any]:
    """``ansible-inventory --list [--limit L] [--export]`` (without ``_meta.profile``)."""
    hosts = inv.select("all", limit)
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
        if export and (group_vars := inv.output_group_vars(group)):
            entry["vars"] = to_json(group_vars, wrap_unsafe=True)
        if entry:
            result[name] = entry

    add_group("all")
    hostvars: dict[str, Any] = {}
    for name in hosts:
        values = _host_vars(inv, name, export)
        if values:
            hostvars[name] = to_json(values, wrap_unsafe=True)
    result["_meta"] = {"hostvars": hostvars}
    return result


def host_json(inv: Inventory, pattern: str, export: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = to_json(host_vars(inv, pattern, export), wrap_unsafe=False)
    return result


def host_vars(inv: Inventory, pattern: str, export: bool = False) -> Mapping[str, Any]:
    """The one host ``pattern`` selects (as ``--host`` requires), its variables as Ansible shows them."""
    names = inv.select(pattern)
    if len(names) != 1:
        raise InventoryError(
            f"--host needs exactly one host: {pattern!r} matches {len(names)}"
            + (f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else "")
        )
    return _host_vars(inv, names[0], export)


def _graph_line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def _graph_vars(values: Mapping[str, Any], depth: int) -> list[str]:
    return [
        _graph_line(f"{{{k} = {v}}}", depth) for k, v in sorted(values.items(), key=lambda kv: str(kv[0]))
    ]


def graph(inv: Inventory, group: str = "all", show_vars: bool = False, export: bool = False) -> str:
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
                    lines.extend(_graph_vars(_host_vars(inv, host, export), depth + 2))
        if show_vars:
            lines.extend(_graph_vars(inv.output_group_vars(node), depth + 1))

    walk(group, 0)
    return "\n".join(lines)


def render_inventory(
    inv: Inventory,
    *,
    graph: str | None,
    host: str | None,
    graph_vars: bool,
    as_yaml: bool,
    as_toml: bool = False,
    limit: str | None = None,
    export: bool = False,
) -> str:
    """``ansible-inventory --graph [GROUP] [--vars]``, ``--list`` or ``--host HOST``, in JSON, YAML or
    TOML. As in Ansible, ``limit`` applies to ``--list`` only, and ``export`` keeps group variables on
    their groups and shows each host's own variables only."""
    import yaml

    if graph is not None:
        return inv.graph(graph, vars=graph_vars, export=export)
    if as_toml:
        layout = host_vars(inv, host, export) if host else _toml_layout(inv, limit, export)
        return toml_text(layout)
    if as_yaml:
        layout = host_vars(inv, host, export) if host else _yaml_layout(inv, limit, export)
        return yaml.dump(layout, Dumper=_dumper(), default_flow_style=False, allow_unicode=True).rstrip("\n")
    data: dict[str, Any] = inv.host_json(host, export) if host else inv.list_json(limit, export)
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False)


def _yaml_layout(inv: Inventory, limit: str | None = None, export: bool = False) -> dict[str, Any]:
    """``ansible-inventory --list --yaml``: groups nest their children and hold their hosts' vars.

    As in Ansible, a host's variables are written under the first group that lists it only, and
    empty groups are left out.
    """
    available = frozenset(inv.select("all", limit))
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
            if host not in available:
                continue
            hosts[host] = {} if host in seen_hosts else _host_vars(inv, host, export)
            seen_hosts.add(host)
        if hosts:
            body["hosts"] = hosts
        if export and (group_vars := inv.output_group_vars(node)):
            body["vars"] = group_vars
        return {name: body} if body else {}

    return group("all") or {"all": {}}


def _toml_layout(inv: Inventory, limit: str | None = None, export: bool = False) -> dict[str, Any]:
    """``ansible-inventory --list --toml``: every group at the top level, children by name.

    Ansible's own walk, kept as it is: a group is written again each time a parent names it, and the
    later writing replaces the earlier one, where hosts already written carry no variables; so a host
    of a group that two groups name can show none. ``fleetrst inventory --toml`` prints the same.
    """
    available = frozenset(inv.select("all", limit))
    has_ungrouped = bool(inv.groups["ungrouped"].hosts)
    seen_hosts: set[str] = set()

    def group(name: str) -> dict[str, Any]:
        node = inv.groups[name]
        results: dict[str, Any] = {name: {}}
        children: list[str] = []
        for child in node.children:
            if child == "ungrouped" and not has_ungrouped:
                continue
            if name != "all":
                children.append(child)
            results.update(group(child))
        body: dict[str, Any] = {"children": children} if children else {}
        if name != "all":
            for host in node.hosts:
                if host not in available:
                    continue
                first = host not in seen_hosts
                seen_hosts.add(host)
                body.setdefault("hosts", {})[host] = _host_vars(inv, host, export) if first else {}
        if export and (group_vars := inv.output_group_vars(node)):
            body["vars"] = group_vars
        if body:
            results[name] = body
        else:
            del results[name]
        return results

    return group("all")


def toml_text(layout: Mapping[str, Any]) -> str:
    """TOML as ``ansible-inventory --toml`` writes it (with tomli-w, which it needs too)."""
    try:
        import tomli_w
    except ImportError:
        raise InventoryError(
            "--toml needs the Python library tomli-w, as ansible-inventory does: pip install tomli-w"
        ) from None
    return tomli_w.dumps(_toml_value(layout, [])).rstrip("\n")


def _toml_value(value: Any, path: list[str]) -> Any:
    """Values TOML can hold; keys become text as in JSON. A null or a vault value cannot be written."""
    where = ".".join(path) or "the top level"
    if value is None:
        raise InventoryError(f"--toml cannot write {where}: TOML has no null (use JSON or YAML)")
    if isinstance(value, VaultValue):
        raise InventoryError(
            f"--toml cannot write {where}: it is vault-encrypted, which TOML cannot mark (use JSON or YAML)"
        )
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if isinstance(k, str) else json_key(k)
            out[str(key)] = _toml_value(v, [*path, str(key)])
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_toml_value(v, [*path, str(i)]) for i, v in enumerate(value)]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


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
