"""``fleetrst inventory``: print an inventory exactly as ``ansible-inventory`` would."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from . import output
from .errors import InventoryError
from .inventory import Inventory, load_inventory
from .values import UnsafeText, VaultValue


def add_inventory_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``ansible-inventory``'s options to ``parser``."""
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="SOURCE",
        help=(
            "An inventory file, directory or comma-separated host list. "
            "Give it several times to combine sources."
        ),
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--list", action="store_true", help="Print every group and host with its variables, as JSON."
    )
    action.add_argument(
        "--graph",
        nargs="?",
        const="all",
        metavar="GROUP",
        help="Print the group tree below GROUP (all groups when GROUP is left out).",
    )
    action.add_argument("--host", metavar="HOST", help="Print the variables of one host, as JSON.")
    parser.add_argument(
        "--vars", action="store_true", help="With --graph, also print each group's and host's variables."
    )
    parser.add_argument(
        "-y", "--yaml", action="store_true", help="Print YAML instead of JSON (with --list or --host)."
    )
    parser.add_argument(
        "--output", metavar="FILE", help="Write the result to FILE instead of standard output."
    )


def run_inventory(args: argparse.Namespace) -> int:
    """Run ``fleetrst inventory``; return 0, or raise InventoryError (exit code 64 for the caller)."""
    sources = args.inventory or []
    if not sources:
        raise InventoryError("no inventory given: pass at least one -i SOURCE")
    inv = load_inventory(sources)
    text = render(inv, args)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise InventoryError(
                f"cannot write the output file: {exc.strerror or exc}", args.output
            ) from None
    else:
        sys.stdout.write(text + "\n")
    return 0


def render(inv: Inventory, args: argparse.Namespace) -> str:
    if args.graph is not None:
        return inv.graph(args.graph, vars=bool(args.vars))
    if getattr(args, "yaml", False):
        layout = output.host_vars(inv, args.host) if args.host else _yaml_layout(inv)
        return yaml.dump(layout, Dumper=_Dumper, default_flow_style=False, allow_unicode=True).rstrip("\n")
    data: dict[str, Any] = inv.host_json(args.host) if args.host else inv.list_json()
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


class _Dumper(yaml.SafeDumper):
    pass


def _represent_vault(dumper: yaml.SafeDumper, value: VaultValue) -> yaml.Node:
    return dumper.represent_scalar("!vault", value.ciphertext, style="|")


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_str(str(value))


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_dict(dict(value))


_Dumper.add_representer(VaultValue, _represent_vault)
_Dumper.add_representer(UnsafeText, _represent_text)
_Dumper.add_multi_representer(dict, _represent_dict)
