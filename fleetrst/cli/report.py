"""``fleetrst report``: top offenders, new offenders, recoveries; ``--html`` for a file with charts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import UsageError
from ..units import format_duration
from . import options
from .audit import history_path
from .context import Context

DESCRIPTION = (
    "Summarise the recorded audits since --since: the hosts that tripped most (in their windows or "
    "between audits) with the resets counted between audits, the hosts that were quiet at every audit "
    "yet reset in between, the hosts that trip now but did not in their previous audit, and those that "
    "recovered. --html writes one self-contained HTML file with charts: each interval between audits "
    "drawn over its span, the window samples on top."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=options.duration_arg(3650 * 86400),
        default=86400.0,
        metavar="DURATION",
        help="how far back (default: 24h)",
    )
    parser.add_argument(
        "--top", type=options.positive_int, default=10, metavar="N", help="offenders to list (default: 10)"
    )
    parser.add_argument(
        "--metric",
        type=options.metric_arg,
        default="resets_sent",
        help="the rate the heat map shows (default: resets_sent)",
    )
    parser.add_argument("--html", default=None, metavar="FILE", help="also write an HTML report to FILE")
    options.add_db_argument(parser)


def run(args: argparse.Namespace, context: Context) -> int:
    from ..history.store import HistoryStore
    from ..measure.trends import fleet_changes
    from ..render.history import render_changes

    since_ts = time.time() - args.since
    with HistoryStore.open(history_path(args), create=False) as store:
        sweeps = store.sweeps(since_ts)
        rows = store.host_rows()  # all: a host's previous audit may be older than the period
        rollups = store.rollups(since_ts)
    if not sweeps:
        sys.stderr.write(
            f"fleetrst: no recorded audits in the last {format_duration(args.since)} ({store.path})\n"
        )
        return 1
    changes = fleet_changes(rows, since_ts, rollups)
    text = render_changes(sweeps, changes, top=args.top, since_s=args.since, where=str(store.path))
    if args.html:
        from ..render.html import render_html

        html = render_html(
            sweeps,
            [r for r in rows if r.started_ts >= since_ts],
            changes,
            args.metric,
            args.top,
            title_period=format_duration(args.since),
            rollups=rollups,
        )
        try:
            Path(args.html).write_text(html, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        text += f"\nHTML report: {args.html}\n"
    sys.stdout.write(text)
    return 0
