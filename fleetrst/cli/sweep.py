"""``fleetrst sweep``: every selected host's counters read twice, judged, and one fleet table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import UsageError
from ..model import FleetReport, HostResult
from . import audit, investigate, options
from .context import Context

DESCRIPTION = (
    "Connect to every selected host at once, read its kernel TCP counters twice, WINDOW apart (the "
    "host sleeps, not us), and print per-host reset rates judged against thresholds, worst first. "
    "With no inventory it sweeps this machine through the local connection."
)
EPILOG = options.EXIT_CODES_TEXT


def _table(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.fleet import render_table

    if args.quiet:
        if all(h.status == "ok" for h in report.hosts):
            return ""  # cron mails any output: nothing to say, say nothing
        return render_table(report, args.table_format, only_problems=True)
    return render_table(report, args.table_format)


def _json(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.schema import render_json

    return render_json(report)


def _csv(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.fleet import render_csv

    return render_csv(report)


def _prometheus(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.monitoring import render_prometheus

    return render_prometheus(report)


def _nagios(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.monitoring import render_nagios

    return render_nagios(report)


def _jsonl(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.schema import render_jsonl

    return render_jsonl(report)


# -o FORMAT: each renderer takes the report and the parsed arguments.
RENDERERS: dict[str, Callable[[FleetReport, argparse.Namespace], str]] = {
    "table": _table,
    "json": _json,
    "csv": _csv,
    "prometheus": _prometheus,
    "nagios": _nagios,
    "jsonl": _jsonl,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_selection_arguments(parser)
    parser.add_argument(
        "--list-hosts", action="store_true", help="print the hosts that would be swept, and connect to none"
    )
    timing = options.add_timing_arguments(parser, window_default=10.0)
    timing.add_argument(
        "--baseline",
        type=options.parse_duration,
        default=None,
        metavar="DURATION",
        help="also read the counters DURATION before the window and judge resets "
        "with Netdata's spike rule: warn when the window's rate exceeds "
        "10 × max(5, baseline rate) (e.g. --baseline 60s)",
    )
    options.add_connection_arguments(parser)
    options.add_threshold_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        choices=tuple(RENDERERS),
        default="table",
        help="table (default), json (the versioned schema in the README), csv"
        + "".join(f", {name}" for name in tuple(RENDERERS)[3:]),
    )
    out.add_argument(
        "--table-format",
        default="simple",
        metavar="FMT",
        help="any tabulate format: simple (default), github, grid, plain, ...",
    )
    investigate.add_sweep_arguments(parser)
    audit.add_sweep_arguments(parser)


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


def run(args: argparse.Namespace, context: Context) -> int:
    from ..inventory import format_list_hosts
    from ..render.fleet import table_formats
    from ..sweep import SweepOptions, run_sweep

    if args.output == "table" and args.table_format not in table_formats():
        raise UsageError(
            f"unknown --table-format {args.table_format!r}; one of: {', '.join(table_formats())}"
        )
    warn, crit = options.thresholds(args)
    targets, names = options.select_targets(args)
    if args.list_hosts:
        sys.stdout.write(format_list_hosts(names))
        return 0
    investigator = investigate.investigator_from_args(args)
    with audit.audit_sweep(args, targets) as recorder:
        sweep_options = SweepOptions(
            window_s=args.window,
            timeout_s=args.timeout,
            forks=args.forks,
            baseline_s=args.baseline,
            warn=warn,
            crit=crit,
            **recorder.option_overrides,
        )
        progress = _Progress(len(targets))
        try:
            report = run_sweep(
                targets,
                sweep_options,
                **options.report_labels(args),
                on_result=progress,
                investigator=investigator,
            )
        finally:
            progress.finish()
        recorder.record(report)
    sys.stdout.write(RENDERERS[args.output](report, args))
    if report.interrupted_by:
        sys.stderr.write(
            f"fleetrst: interrupted by {report.interrupted_by}: "
            f"{report.count('interrupted')} host(s) did not finish\n"
        )
    return report.exit_code
