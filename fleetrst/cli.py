"""Command line: arguments, subcommands, exit codes, and nothing else."""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import __version__, audit_cli
from .errors import CommandError, UsageError
from .investigate import cli as investigate_cli
from .model import ConnectionSettings, FleetReport, HostResult, Target
from .report import EXIT_USAGE, exit_code, render_csv, render_json, render_table, table_formats
from .rules import ThresholdError, parse_cli_threshold

# -o FORMAT: each renderer takes the report and the parsed arguments.
RENDERERS: dict[str, Callable[[FleetReport, argparse.Namespace], str]] = {
    "table": lambda report, args: render_table(report, args.table_format),
    "json": lambda report, args: render_json(report),
    "csv": lambda report, args: render_csv(report),
}
RENDERERS.update(audit_cli.RENDERERS)
OUTPUT_FORMATS = tuple(RENDERERS)
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {**investigate_cli.COMMANDS, **audit_cli.COMMANDS}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``10``, ``10s``, ``1m``, ``500ms``, ``1.5s`` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 10, 10s, 1m or 500ms)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 3600:
        raise argparse.ArgumentTypeError(f"duration out of range: {text!r} (more than 0, at most 1h)")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from .inventory.cli import add_inventory_arguments

    parser = _Parser(
        prog="fleetrst",
        description="Find which hosts in a fleet are sending or receiving TCP resets, how many per "
        "second, and why. Hosts come from Ansible inventories and are reached over SSH; nothing is "
        "installed on them.",
        epilog="Exit codes: 0 all OK, 1 some WARNING, 2 some CRITICAL, 3 UNKNOWN (a host could not be "
        "measured and none warned), 64 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"fleetrst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sweep = sub.add_parser(
        "sweep",
        help="read every selected host's TCP counters twice and print one fleet table",
        description="Connect to every selected host at once, read its kernel TCP counters twice, "
        "WINDOW apart (the host sleeps, not us), and print per-host reset rates judged against "
        "thresholds, worst first. With no inventory it sweeps this machine through the local "
        "connection.",
        epilog="Exit codes: 0 all OK, 1 some WARNING, 2 some CRITICAL, 3 UNKNOWN (a host could not "
        "be measured and none warned), 64 usage or configuration error.",
    )
    sweep.add_argument(
        "pattern",
        nargs="?",
        default="all",
        help="Ansible host pattern: all, a group, a host, web:&prod, web:!db, ~regex, g[0:2] (default: all)",
    )
    sweep.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="INVENTORY",
        help="inventory file or directory, as for Ansible; may be given several times",
    )
    sweep.add_argument(
        "-l",
        "--limit",
        action="append",
        default=[],
        metavar="SUBSET",
        help="further limit the selected hosts with a pattern, or @FILE with one "
        "pattern a line; may be given several times",
    )
    sweep.add_argument(
        "--list-hosts", action="store_true", help="print the hosts that would be swept, and connect to none"
    )
    timing = sweep.add_argument_group("timing")
    timing.add_argument(
        "--window",
        type=parse_duration,
        default=10.0,
        metavar="DURATION",
        help="time between the two readings, slept on the host (default: 10s)",
    )
    timing.add_argument(
        "--timeout",
        type=parse_duration,
        default=10.0,
        metavar="DURATION",
        help="a host's allowance beyond the window: connect, run and read within "
        "window + timeout or it is reported as timed out (default: 10s)",
    )
    timing.add_argument(
        "--baseline",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="also read the counters DURATION before the window and judge resets "
        "with Netdata's spike rule: warn when the window's rate exceeds "
        "10 × max(5, baseline rate) (e.g. --baseline 60s)",
    )
    timing.add_argument(
        "-f",
        "--forks",
        type=_positive_int,
        default=500,
        metavar="N",
        help="hosts in flight at once (default: 500)",
    )
    conn = sweep.add_argument_group("connection (inventory variables win over these, as in Ansible)")
    conn.add_argument(
        "-c",
        "--connection",
        choices=("ssh", "paramiko", "local"),
        default=None,
        help="connection type: ssh (asyncssh, the default), paramiko, or local",
    )
    conn.add_argument("-u", "--user", default=None, help="connect as this user")
    conn.add_argument(
        "--private-key",
        "--key-file",
        dest="private_key",
        default=None,
        metavar="FILE",
        help="use this private key file",
    )
    conn.add_argument(
        "-b",
        "--become",
        action="store_true",
        default=None,
        help="run privileged steps through sudo -n (never prompts)",
    )
    conn.add_argument("--become-user", default=None, metavar="USER", help="sudo to this user (default: root)")
    conn.add_argument(
        "--known-hosts",
        action="append",
        default=[],
        metavar="FILE",
        help="also trust the host keys in FILE (besides ~/.ssh/known_hosts)",
    )
    conn.add_argument(
        "--host-key-checking",
        choices=("yes", "no", "accept-new"),
        default=None,
        help="yes (default): refuse unknown or changed host keys; accept-new: trust "
        "and record unknown ones, refuse changed ones; no: check nothing",
    )
    judge = sweep.add_argument_group("thresholds")
    judge.add_argument(
        "--warn",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="warning level for a metric in events/s, e.g. resets_sent=20; beats the "
        "inventory's fleetrst_thresholds",
    )
    judge.add_argument(
        "--crit",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="critical level for a metric in events/s, e.g. resets_sent=100",
    )
    out = sweep.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default="table",
        help="table (default), json (the versioned schema in the README), csv"
        + "".join(f", {name}" for name in OUTPUT_FORMATS[3:]),
    )
    out.add_argument(
        "--table-format",
        default="simple",
        metavar="FMT",
        help="any tabulate format: simple (default), github, grid, plain, ...",
    )

    inv = sub.add_parser(
        "inventory",
        help="show an inventory as Ansible sees it (same output as ansible-inventory)",
        description="Show the hosts, groups and variables of an inventory exactly as "
        "ansible-inventory prints them.",
    )
    add_inventory_arguments(inv)

    investigate_cli.add_sweep_arguments(sweep)
    audit_cli.add_sweep_arguments(sweep)
    investigate_cli.add_subcommands(sub)
    audit_cli.add_subcommands(sub)
    audit_cli.apply_config_defaults(parser, sweep)
    return parser


def _local_target() -> Target:
    return Target(
        name="localhost", groups=(), connection=ConnectionSettings(address="localhost", connection="local")
    )


def _select_targets(args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    """The targets, and their names for --list-hosts. Raises InventoryError/UsageError."""
    from fnmatch import fnmatchcase

    from .inventory import ConnectionDefaults, load_inventory

    if not args.inventory:
        if args.limit or not (args.pattern == "all" or fnmatchcase("localhost", args.pattern)):
            raise UsageError(
                f"no inventory given (-i), so only this machine (localhost) can be swept; "
                f"pattern {args.pattern!r} does not select it"
            )
        return [_local_target()], ["localhost"]
    inventory = load_inventory(args.inventory)
    names = inventory.select(args.pattern, limit=args.limit or None)
    if not names:
        where = f"pattern {args.pattern!r}" + (f" with limit {', '.join(args.limit)!r}" if args.limit else "")
        raise UsageError(f"{where} matches no host in {', '.join(args.inventory)}")
    defaults = ConnectionDefaults(
        user=args.user,
        private_key=args.private_key,
        connection=args.connection,
        become=args.become,
        become_user=args.become_user,
        known_hosts=tuple(args.known_hosts),
        host_key_checking=args.host_key_checking,
        connect_timeout=None,
    )
    return inventory.targets(names, defaults), names


def _thresholds(items: Sequence[str]) -> dict[str, float]:
    return dict(parse_cli_threshold(item) for item in items)


class _Progress:
    """One line on stderr, rewritten as hosts finish; only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.not_ok = 0
        self.enabled = sys.stderr.isatty()

    def __call__(self, result: HostResult) -> None:
        self.done += 1
        self.not_ok += result.status != "ok"
        if self.enabled:
            sys.stderr.write(f"\r\x1b[Kfleetrst: {self.done}/{self.total} hosts done, {self.not_ok} not OK")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def run_sweep_command(args: argparse.Namespace) -> int:
    from .inventory import format_list_hosts
    from .sweep import SweepOptions, run_sweep

    if args.output == "table" and args.table_format not in table_formats():
        raise UsageError(
            f"unknown --table-format {args.table_format!r}; one of: {', '.join(table_formats())}"
        )
    try:
        warn, crit = _thresholds(args.warn), _thresholds(args.crit)
    except ThresholdError as exc:
        raise UsageError(str(exc)) from exc
    targets, names = _select_targets(args)
    if args.list_hosts:
        sys.stdout.write(format_list_hosts(names))
        return 0
    with audit_cli.audit_sweep(args, targets) as audit:
        options = SweepOptions(
            window_s=args.window,
            timeout_s=args.timeout,
            forks=args.forks,
            baseline_s=args.baseline,
            warn=warn,
            crit=crit,
            **audit.option_overrides,
        )
        progress = _Progress(len(targets))
        try:
            report = run_sweep(
                targets,
                options,
                pattern=args.pattern,
                limit=",".join(args.limit) or None,
                inventories=args.inventory,
                on_result=progress,
                investigator=investigate_cli.investigator_from_args(args),
            )
        finally:
            progress.finish()
        code = exit_code(report)
        audit.record(report, code)
    sys.stdout.write(RENDERERS[args.output](report, args))
    if report.interrupted_by:
        sys.stderr.write(
            f"fleetrst: interrupted by {report.interrupted_by}: "
            f"{report.count('interrupted')} host(s) did not finish\n"
        )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    from .inventory import InventoryError
    from .inventory.cli import run_inventory

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "sweep":
            return run_sweep_command(args)
        if args.command == "inventory":
            return run_inventory(args)
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    except InventoryError as exc:
        sys.stderr.write(f"fleetrst: error: {exc}\n")
        return EXIT_USAGE
    except CommandError as exc:
        sys.stderr.write(f"fleetrst: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("fleetrst: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
