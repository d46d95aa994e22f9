"""``fleetrst history``: per-host trends of one rate over the recorded audits."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..units import format_duration
from . import options
from .audit import history_path
from .context import Context

DESCRIPTION = (
    "Show, per host, a metric's minimum, median, maximum and last value over the recorded audits since "
    "--since, and in how many of them the host warned or was critical; then what the kernel counted "
    "between the audits (every event since each previous audit, not only the windows), its average, "
    "and how many intervals tripped. Audits rolled up by --keep count in their hours and days."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="a host or group name as recorded, or a glob (web*, h00[1-3]); several with commas",
    )
    parser.add_argument(
        "--since",
        type=options.duration_arg(3650 * 86400),
        default=7 * 86400.0,
        metavar="DURATION",
        help="how far back (default: 7d; 24h, 30d, 2w, ...)",
    )
    parser.add_argument(
        "--metric",
        type=options.metric_arg,
        default="resets_sent",
        help="the rate to show (default: resets_sent; any named rate or kernel counter)",
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    options.add_db_argument(parser)


def run(args: argparse.Namespace, context: Context) -> int:
    from ..history.store import HistoryStore
    from ..measure.trends import host_trends, matches
    from ..render.history import render_trends, trends_json

    since_ts = time.time() - args.since
    with HistoryStore.open(history_path(args), create=False) as store:
        rows = [r for r in store.host_rows(since_ts) if matches(r, args.pattern)]
        rollups = [r for r in store.rollups(since_ts) if matches(r, args.pattern)]
    trends = host_trends(rows, args.metric, rollups)
    if args.output == "json":
        sys.stdout.write(json.dumps(trends_json(trends, args.metric), indent=2) + "\n")
        return 0
    if not trends:
        what = f"hosts matching {args.pattern!r}" if args.pattern else "hosts"
        sys.stderr.write(
            f"fleetrst: no recorded audits of {what} in the last {format_duration(args.since)}\n"
        )
        return 1
    audits = len({r.sweep_id for r in rows})
    where = str(store.path)
    if rollups:
        where += f"; and {len({(r.period, r.start_ts) for r in rollups})} rolled-up hours or days"
    sys.stdout.write(
        render_trends(
            trends,
            metric=args.metric,
            pattern=args.pattern,
            audits=audits,
            since_s=args.since,
            where=where,
        )
    )
    return 0
