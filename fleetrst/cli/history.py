"""``fleetrst history``: per-host trends of one rate over the recorded audits; with ``--events``, the
watch's recorded events instead."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..units import format_duration
from . import options
from .audit import history_path
from .context import Context

if TYPE_CHECKING:
    from ..history.store import RecordedEvent

DEFAULT_METRIC = "resets_sent"
DEFAULT_SINCE = 7 * 86400.0

DESCRIPTION = (
    "Show, per host, a metric's minimum, median, maximum and last value over the recorded audits since "
    "--since, and in how many of them the host warned or was critical; then what the kernel counted "
    "between the audits (every event since each previous audit, not only the windows), its average, "
    "and how many intervals tripped. Audits rolled up by --keep count in their hours and days. "
    "With --events: what `fleetrst watch` recorded of the same hosts and period instead (alarms raised "
    "and cleared, hosts lost and back, investigations and their causes), one line an event, oldest first."
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
        default=DEFAULT_SINCE,
        metavar="DURATION",
        help="how far back (default: 7d; 24h, 30d, 2w, ...)",
    )
    parser.add_argument(
        "--metric",
        type=options.metric_arg,
        default=None,
        help=f"the rate to show (default: {DEFAULT_METRIC}; any named rate or kernel counter); with "
        "--events, only that metric's alarms and the investigations they started",
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="show the watch's recorded events instead of the trends: time (UTC), host, event "
        "(raised, cleared, lost, back, investigated), level, and the rate and limit, the error, or the "
        "cause found",
    )
    parser.add_argument(
        "-n",
        "--last",
        type=options.positive_int,
        default=None,
        metavar="N",
        help="with --events: only the N most recent (default: every event in the period)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="table (default) or json: a list of the hosts' trends; with --events, a list of the events "
        "with the keys of the watch's JSON lines (causes: what the history keeps of an investigation)",
    )
    options.add_db_argument(parser)


def selected(event: RecordedEvent, pattern: str | None, metric: str | None = None) -> bool:
    """An event of a host whose name or a group recorded with it is ``pattern`` (exactly or as a glob,
    as for the audits); with ``metric``, an alarm of that metric or an investigation it started."""
    if pattern and pattern != "all":
        names = (event.host, *event.groups)
        if not any(fnmatchcase(name, term) for term in pattern.split(",") for name in names):
            return False
    if metric is None:
        return True
    return event.metric == metric or any(t.get("metric") == metric for t in event.triggers)


def run(args: argparse.Namespace, context: Context) -> int:
    from ..history.store import HistoryStore
    from ..measure.trends import host_trends, matches
    from ..render.history import event_counts, events_hint, plural, render_trends, trends_json

    if args.last is not None and not args.events:
        raise UsageError("--last counts watch events: give it with --events")
    since_ts = time.time() - args.since
    with HistoryStore.open(history_path(args), create=False) as store:
        events = [
            e
            for e in store.events(since_ts)
            if selected(e, args.pattern, args.metric if args.events else None)
        ]
        if args.events:
            return _show_events(args, events, str(store.path))
        rows = [r for r in store.host_rows(since_ts) if matches(r, args.pattern)]
        rollups = [r for r in store.rollups(since_ts) if matches(r, args.pattern)]
    metric = args.metric or DEFAULT_METRIC
    trends = host_trends(rows, metric, rollups)
    if args.output == "json":
        sys.stdout.write(json.dumps(trends_json(trends, metric), indent=2) + "\n")
        return 0
    if not trends:
        what = f"hosts matching {args.pattern!r}" if args.pattern else "hosts"
        seen = ""
        if events:
            n, command = len(events), _events_command(args, context)
            seen = f"; but {n} watch {plural(n, 'event')} ({event_counts(events)}): {command}"
        sys.stderr.write(
            f"fleetrst: no recorded audits of {what} in the last {format_duration(args.since)}{seen}\n"
        )
        return 1
    audits = len({r.sweep_id for r in rows})
    where = str(store.path)
    if rollups:
        where += f"; and {len({(r.period, r.start_ts) for r in rollups})} rolled-up hours or days"
    sys.stdout.write(
        render_trends(
            trends,
            metric=metric,
            pattern=args.pattern,
            audits=audits,
            since_s=args.since,
            where=where,
        )
    )
    if events:
        sys.stdout.write(events_hint(events, args.since, _events_command(args, context)))
    return 0


def _events_command(args: argparse.Namespace, context: Context) -> str:
    """The command that shows the events of the same hosts and period: ``fleetrst history web --events``
    (``--db`` when given on the command line, not from the settings)."""
    import shlex

    words = ["fleetrst", "history", *([args.pattern] if args.pattern else []), "--events"]
    if args.since != DEFAULT_SINCE:
        words += ["--since", format_duration(args.since)]
    configured = context.settings.values.get("db")
    if args.db and (configured is None or configured.value != args.db):
        words += ["--db", args.db]
    return shlex.join(words)


def _show_events(args: argparse.Namespace, events: Sequence[RecordedEvent], where: str) -> int:
    """``--events``: the selected events (the last N with ``--last``), as lines or as JSON."""
    from ..render.history import events_json, render_events

    shown = events[-args.last :] if args.last is not None else events
    if args.output == "json":
        sys.stdout.write(json.dumps(events_json(shown), indent=2) + "\n")
        return 0
    if not shown:
        what = f"hosts matching {args.pattern!r}" if args.pattern else "hosts"
        of = f" of {args.metric}" if args.metric else ""
        sys.stderr.write(
            f"fleetrst: no recorded watch events{of} of {what} in the last {format_duration(args.since)}\n"
        )
        return 1
    sys.stdout.write(
        render_events(events, last=args.last, pattern=args.pattern, since_s=args.since, where=where)
    )
    return 0
