"""Command line: arguments, subcommands, exit codes, and nothing else."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__, audit_cli, cliargs
from .errors import CommandError, UsageError
from .investigate import cli as investigate_cli
from .model import FleetReport, HostResult
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


def build_parser() -> argparse.ArgumentParser:
    from .inventory.cli import add_inventory_arguments

    parser = cliargs.Parser(
        prog="fleetrst",
        description="Find which hosts in a fleet are sending or receiving TCP resets, how many per "
        "second, and why. Hosts come from Ansible inventories and are reached over SSH; nothing is "
        "installed on them.",
        epilog="Exit codes: 0 all OK, 1 some WARNING, 2 some CRITICAL, 3 UNKNOWN (a host could not be "
        "measured and none warned), 64 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"fleetrst {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=cliargs.Parser)

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
    cliargs.add_selection_arguments(sweep)
    sweep.add_argument(
        "--list-hosts", action="store_true", help="print the hosts that would be swept, and connect to none"
    )
    timing = cliargs.add_timing_arguments(sweep, window_default=10.0)
    timing.add_argument(
        "--baseline",
        type=cliargs.parse_duration,
        default=None,
        metavar="DURATION",
        help="also read the counters DURATION before the window and judge resets "
        "with Netdata's spike rule: warn when the window's rate exceeds "
        "10 × max(5, baseline rate) (e.g. --baseline 60s)",
    )
    cliargs.add_connection_arguments(sweep)
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
    targets, names = cliargs.select_targets(args)
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
                **cliargs.report_labels(args),
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
