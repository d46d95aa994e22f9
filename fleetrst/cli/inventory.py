"""``fleetrst inventory``: print an inventory exactly as ``ansible-inventory`` would."""

from __future__ import annotations

import argparse
import sys

from . import options
from .context import Context

DESCRIPTION = "Show the hosts, groups and variables of an inventory exactly as ansible-inventory prints them."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ansible-inventory``'s options."""
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="SOURCE",
        help=(
            "An inventory file, directory, script, plugin config, ansible-inventory's JSON output "
            "(- for standard input) or comma-separated host list. Give it several times to combine "
            "sources."
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
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "-y", "--yaml", action="store_true", help="Print YAML instead of JSON (with --list or --host)."
    )
    form.add_argument(
        "--toml",
        action="store_true",
        help="Print TOML instead of JSON (with --list or --host); needs the Python library tomli-w.",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="With --list: keep group variables on their groups and give each host its own variables "
        "only, as ansible-inventory --export does (fleetrst reads this output back as an inventory).",
    )
    options.add_limit_argument(parser)
    options.add_inventory_cache_argument(parser)
    parser.add_argument(
        "--output", metavar="FILE", help="Write the result to FILE instead of standard output."
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Print the inventory; raise InventoryError (exit 64) when it cannot be read."""
    # imported here, not with the parser: every command's parser is built, and only this one reads
    from ..inventory import InventoryError, load_inventory
    from ..inventory.output import render_inventory

    sources = args.inventory or []
    if not sources:
        raise InventoryError("no inventory given: pass at least one -i SOURCE")
    limit = options.selected_limit(args)
    inv = load_inventory(sources, options.inventory_load_options(args))
    options.print_warnings(inv.warnings)
    text = render_inventory(
        inv,
        graph=args.graph,
        host=args.host,
        graph_vars=bool(args.vars),
        as_yaml=args.yaml,
        as_toml=args.toml,
        limit=limit,
        export=args.export,
    )
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
