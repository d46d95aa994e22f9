"""``fleetrst investigate``, and the flags the investigation adds to ``fleetrst sweep``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import options
from .context import Context

if TYPE_CHECKING:
    from ..investigate.runner import Mode
    from ..sweep import Investigator

DESCRIPTION = (
    "Read each selected host's TCP counters over a short window, then run the whole runbook over the "
    "same connection whatever the rates — socket states, listeners and their queues, the processes "
    "behind the ports, an RST capture, context — and print a readable report per host with the likely "
    "causes and what to do next."
)
EPILOG = "Exit codes as for sweep: 0 all OK, 1 some WARNING, 2 some CRITICAL, 3 UNKNOWN, 64 usage."

DEFAULT_INVESTIGATE_CAPTURE_S = 5.0


def _add_runbook_arguments(group: argparse._ArgumentGroup, *, capture_default: float | None) -> None:
    group.add_argument(
        "--capture",
        type=options.parse_duration,
        default=capture_default,
        metavar="DURATION",
        help="capture RST segments for DURATION on each investigated host (tcpdump -i any, bounded in "
        "time and to 1000 packets; needs root: -b)"
        + (f" (default: {capture_default:g}s)" if capture_default else " (default: no capture)"),
    )
    group.add_argument(
        "--save-pcap",
        metavar="DIR",
        default=None,
        help="with --capture: bring each host's capture back as DIR/HOST.pcap (at most 256 KiB)",
    )
    group.add_argument(
        "--logs",
        action="store_true",
        help="also read the last kernel log / journal / syslog lines that mention TCP or network errors",
    )


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags the investigation adds to ``fleetrst sweep``."""
    group = parser.add_argument_group("investigation")
    group.add_argument(
        "--investigate",
        choices=("auto", "always", "never"),
        default="auto",
        help="run the runbook (ss, lsof, context; capture with --capture) over the same connection: "
        "auto (default) on hosts that tripped, always, or never",
    )
    _add_runbook_arguments(group, capture_default=None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_selection_arguments(parser)
    timing = options.add_timing_arguments(parser, window_default=2.0)
    options.add_scale_arguments(timing)
    options.add_connection_arguments(parser)
    options.add_threshold_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default): a report per host; json: the sweep's JSON schema",
    )
    group = parser.add_argument_group("runbook")
    _add_runbook_arguments(group, capture_default=DEFAULT_INVESTIGATE_CAPTURE_S)
    parser.set_defaults(investigate="always", list_hosts=False)


def _options(args: argparse.Namespace, mode: Mode) -> Any:
    from ..investigate.runner import InvestigateOptions

    if args.save_pcap and not args.capture:
        raise UsageError("--save-pcap needs --capture DURATION (there is nothing to save without a capture)")
    if args.capture is not None and args.capture > 300:
        raise UsageError(f"--capture at most 300s, not {args.capture:g}s")
    return InvestigateOptions(mode=mode, capture_s=args.capture, save_pcap_dir=args.save_pcap, logs=args.logs)


def investigator_from_args(args: argparse.Namespace) -> Investigator | None:
    """The investigator the sweep runs with, or None."""
    mode: Mode = getattr(args, "investigate", "auto")
    if mode == "never":
        return None
    from ..investigate.runner import RunbookInvestigator

    try:
        return RunbookInvestigator(_options(args, mode))
    except OSError as exc:
        raise UsageError(f"--save-pcap {args.save_pcap}: {exc.strerror}") from exc


def run(args: argparse.Namespace, context: Context) -> int:
    from ..render.investigation import render_investigation_report
    from ..render.schema import render_json
    from ..scale import run_fleet_sweep
    from ..sweep import SweepOptions

    warn, crit = options.thresholds(args)
    scale = options.scale(args)
    targets, _ = options.select_targets(args)
    investigator = investigator_from_args(args)
    sweep_options = SweepOptions(
        window_s=args.window,
        timeout_s=args.timeout,
        forks=args.forks,
        handshakes=args.handshakes,
        warn=warn,
        crit=crit,
    )
    # As a sweep's investigation: here, on worker processes (--procs) or on a Dask cluster (--dask).
    report = run_fleet_sweep(
        targets, sweep_options, scale, **options.report_labels(args), investigator=investigator
    )
    sys.stdout.write(render_json(report) if args.output == "json" else render_investigation_report(report))
    return report.exit_code
