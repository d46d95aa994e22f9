"""``fleetrst sweep``: every selected host's counters read twice, judged, and one fleet table."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..model import FleetReport, HostResult, Target
from . import audit, investigate, options
from .context import Context

if TYPE_CHECKING:
    from ..scale import Scale
    from ..sweep import Investigator, Progress

DESCRIPTION = (
    "Connect to every selected host at once, read its kernel TCP counters twice, WINDOW apart (the "
    "host sleeps, not us), and print per-host reset rates judged against thresholds, worst first. "
    "With no inventory it sweeps this machine through the local connection. Every host is in flight "
    "at once (-f caps that; ansible.cfg's forks does not), each host's timeout counts from its own "
    "turn to handshake, and big sweeps use every core (--procs) or a Dask cluster (--dask)."
)
EPILOG = options.EXIT_CODES_TEXT


def _table(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.fleet import render_table

    if args.quiet:
        if all(h.all_clear for h in report.hosts):
            return ""  # cron mails any output: nothing to say, say nothing
        return render_table(report, args.table_format, only_problems=True)
    return render_table(report, args.table_format)


def _json(report: FleetReport, args: argparse.Namespace) -> Iterable[str]:
    from ..render.schema import json_chunks

    return json_chunks(report)


def _csv(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.fleet import render_csv

    return render_csv(report)


def _prometheus(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.monitoring import render_prometheus

    return render_prometheus(report)


def _nagios(report: FleetReport, args: argparse.Namespace) -> str:
    from ..render.monitoring import render_nagios

    return render_nagios(report)


def _jsonl(report: FleetReport, args: argparse.Namespace) -> Iterable[str]:
    from ..render.schema import jsonl_chunks

    return jsonl_chunks(report)


# -o FORMAT: each renderer takes the report and the parsed arguments.
# JSON comes in pieces, a host's made when it is written (a big fleet's objects are never all held).
RENDERERS: dict[str, Callable[[FleetReport, argparse.Namespace], str | Iterable[str]]] = {
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
    options.add_scale_arguments(timing)
    timing.add_argument(
        "--baseline",
        type=options.parse_duration,
        default=None,
        metavar="DURATION",
        help="also read the counters DURATION before the window and judge resets "
        "with Netdata's spike rule: warn when the window's rate exceeds "
        "10 × max(5, baseline rate) (e.g. --baseline 60s)",
    )
    timing.add_argument(
        "--containers",
        choices=("auto", "never"),
        default="auto",
        help="auto (default): also measure every other network namespace of each host (containers, "
        "pods, ip netns), in the same exec, when the login user is root or -b can sudo; the JSON "
        "says what could not be seen and why. never: the host's own namespace only",
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
    """One line on stderr, redrawn at most ten times a second, only when stderr is a terminal: the
    hosts queued (waiting for their turn), connecting, sampling (connected: the window, any
    investigation) and done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.not_ok = 0
        self.phases: tuple[int, int, int] = (total, 0, 0)
        self.enabled = sys.stderr.isatty()
        self._drawn = 0.0

    def __call__(self, result: HostResult) -> None:
        self.done += 1
        self.not_ok += result.status != "ok"
        self._draw(force=self.done == self.total)

    def counts(self, progress: Progress) -> None:
        self.phases = (progress.queued, progress.connecting, progress.sampling)
        self._draw()

    def say(self, text: str) -> None:
        """A line of its own (a limit that binds), above the progress line."""
        sys.stderr.write(("\r\x1b[K" if self.enabled else "") + f"fleetrst: {text}\n")
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        queued, connecting, sampling = self.phases
        sys.stderr.write(
            f"\r\x1b[Kfleetrst: {queued} queued, {connecting} connecting, {sampling} sampling, "
            f"{self.done}/{self.total} hosts done, {self.not_ok} not OK"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def run(args: argparse.Namespace, context: Context) -> int:
    if args.output == "table":
        from ..render.fleet import table_formats

        if args.table_format not in table_formats():
            raise UsageError(
                f"unknown --table-format {args.table_format!r}; one of: {', '.join(table_formats())}"
            )
    warn, crit = options.thresholds(args)
    scale = options.scale(args)
    targets, names = options.select_targets(args)
    if args.list_hosts:
        from ..inventory import format_list_hosts

        sys.stdout.write(format_list_hosts(names))
        return 0
    from ..scale import collector_for_sweep
    from ..transport import import_transports

    investigator = investigate.investigator_from_args(args)
    import_transports(t.connection.connection for t in targets)  # not under the collector: see there
    # The sweep, its record and its output, with the collector set for a sweep (see scale.collector)
    with collector_for_sweep():
        return _sweep_and_report(args, targets, warn, crit, scale, investigator)


def _sweep_and_report(
    args: argparse.Namespace,
    targets: list[Target],
    warn: dict[str, float],
    crit: dict[str, float],
    scale: Scale,
    investigator: Investigator | None,
) -> int:
    from ..scale import run_fleet_sweep
    from ..sweep import SweepOptions

    with audit.audit_sweep(args, targets) as recorder:
        sweep_options = SweepOptions(
            window_s=args.window,
            timeout_s=args.timeout,
            forks=args.forks,
            handshakes=args.handshakes,
            baseline_s=args.baseline,
            warn=warn,
            crit=crit,
            containers=args.containers,
            **recorder.option_overrides,
        )
        progress = _Progress(len(targets))
        try:
            report = run_fleet_sweep(
                targets,
                sweep_options,
                scale,
                **options.report_labels(args),
                on_result=progress,
                on_progress=progress.counts,
                on_note=progress.say,
                investigator=investigator,
            )
        finally:
            progress.finish()
        report = recorder.record(report)  # with each host's since_last
    rendered = RENDERERS[args.output](report, args)
    if isinstance(rendered, str):
        sys.stdout.write(rendered)
    else:
        sys.stdout.writelines(rendered)
    if report.interrupted_by:
        sys.stderr.write(
            f"fleetrst: interrupted by {report.interrupted_by}: "
            f"{report.count('interrupted')} host(s) did not finish\n"
        )
    return report.exit_code
