"""Audits over time on the command line: history, monitoring outputs, settings, the cron lock.

cli.py calls these; this module owns everything audits add to the command line:

- sweep flags: ``--db``, ``--no-history``, ``--rules``, ``--history-audits``, ``--textfile``,
  ``--lock-wait``, ``--lock``, ``-q``; output formats ``prometheus``, ``nagios``, ``jsonl``;
- subcommands: ``history``, ``report``, ``config``;
- defaults from fleetrst.toml, FLEETRST_*, ANSIBLE_* and ansible.cfg (``fleetrst.config``);
- around each sweep (:func:`audit_sweep`): the run lock, baselines from history, then the record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cliargs, config
from .errors import UsageError
from .model import FleetReport, Target
from .outputs import render_jsonl, render_nagios, render_prometheus

if TYPE_CHECKING:
    from .history import HistoryStore

RULES = ("threshold", "netdata-history")
DEFAULT_HISTORY_AUDITS = 10
BASELINE_METRICS = ("resets_received", "resets_sent")  # the rates Netdata's spike rule judges


def _render_table(report: FleetReport, args: argparse.Namespace) -> str:
    from .report import render_table

    if getattr(args, "quiet", False):
        if all(h.status == "ok" for h in report.hosts):
            return ""  # cron mails any output: nothing to say, say nothing
        return render_table(report, args.table_format, only_problems=True)
    return render_table(report, args.table_format)


# Subcommands this module adds: name -> runner (called with the parsed arguments; returns the exit code).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# Output formats this module adds to -o (merged over cli's table/json/csv; may replace "table").
RENDERERS: dict[str, Callable[[FleetReport, argparse.Namespace], str]] = {
    "table": _render_table,
    "prometheus": lambda report, args: render_prometheus(report),
    "nagios": lambda report, args: render_nagios(report),
    "jsonl": lambda report, args: render_jsonl(report),
}

# The settings resolved for this process (by apply_config_defaults), and the parser's own defaults.
_resolved = config.Resolved(values={}, files=[])
_builtin: dict[str, Any] = {}


def _metric_arg(text: str) -> str:
    from .rules import is_metric

    if not is_metric(text):
        raise argparse.ArgumentTypeError(f"unknown metric {text!r} (e.g. resets_sent, estab_resets, OutRsts)")
    return text


def apply_config_defaults(parser: argparse.ArgumentParser, sweep: argparse.ArgumentParser) -> None:
    """Set defaults from the config file and the environment before the command line is parsed.

    A malformed file or variable ends the program here: one line naming it, exit 64.
    """
    global _resolved
    try:
        _resolved = config.resolve()
    except config.ConfigError as exc:
        parser.exit(exc.exit_code, f"fleetrst: error: {exc}\n")
    for setting in config.SETTINGS:
        _builtin[setting.name] = sweep.get_default(setting.name)
    defaults: dict[str, Any] = {}
    for name, value in _resolved.values.items():
        defaults[name] = config.ConfigList(value.value) if name == "inventory" else value.value
    sweep.set_defaults(**defaults)


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags audits add to ``fleetrst sweep``."""
    group = parser.add_argument_group("audits: history, monitoring, cron")
    group.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="the history database (default: $XDG_STATE_HOME/fleetrst/history.sqlite, "
        "~/.local/state/fleetrst/history.sqlite)",
    )
    group.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        default=True,
        help="do not record this sweep in the history database",
    )
    group.add_argument(
        "--rules",
        choices=RULES,
        default="threshold",
        help="threshold (default): fixed limits; netdata-history: judge resets with Netdata's spike "
        "rule against each host's median over its recent audits (warn above 10 × max(5, median))",
    )
    group.add_argument(
        "--history-audits",
        type=cliargs.positive_int,
        default=DEFAULT_HISTORY_AUDITS,
        metavar="N",
        help=f"with --rules netdata-history: the audits the median is taken over (default: "
        f"{DEFAULT_HISTORY_AUDITS})",
    )
    group.add_argument(
        "--textfile",
        default=None,
        metavar="PATH",
        help="also write the sweep in Prometheus format to PATH (*.prom), atomically, for "
        "node_exporter's textfile collector",
    )
    group.add_argument(
        "--lock-wait",
        type=cliargs.duration_arg(86400, allow_zero=True),
        default=0.0,
        metavar="DURATION",
        help="when another run holds the lock, wait this long for it (default: 0, exit 3 at once)",
    )
    group.add_argument(
        "--lock",
        default=None,
        metavar="FILE",
        help="the lock file: runs that name the same FILE never overlap (default: one lock per history "
        "database and command, so the same command never overlaps itself; none with --no-history)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="table: print only hosts that are not OK, and nothing at all when every host is OK",
    )


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="PATH", help="the history database (default: as sweep)")


def add_subcommands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Subcommands audits add (``history``, ``report``, ``config``)."""
    history = subparsers.add_parser(
        "history",
        help="per-host trends from recorded sweeps: min, median, max, last, audits tripped",
        description="Show, per host, a metric's minimum, median, maximum and last value over the "
        "recorded audits since --since, and in how many of them the host warned or was critical.",
    )
    history.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="a host or group name as recorded, or a glob (web*, h00[1-3]); several with commas",
    )
    history.add_argument(
        "--since",
        type=cliargs.duration_arg(3650 * 86400),
        default=7 * 86400.0,
        metavar="DURATION",
        help="how far back (default: 7d; 24h, 30d, 2w, ...)",
    )
    history.add_argument(
        "--metric",
        type=_metric_arg,
        default="resets_sent",
        help="the rate to show (default: resets_sent; any named rate or kernel counter)",
    )
    history.add_argument("-o", "--output", choices=("table", "json"), default="table")
    _db_argument(history)

    report = subparsers.add_parser(
        "report",
        help="top offenders, new offenders since the previous audit, recovered hosts",
        description="Summarise the recorded audits since --since: the hosts that tripped most, the "
        "hosts that trip now but did not in their previous audit, and those that recovered. "
        "--html writes one self-contained HTML file with charts.",
    )
    report.add_argument(
        "--since",
        type=cliargs.duration_arg(3650 * 86400),
        default=86400.0,
        metavar="DURATION",
        help="how far back (default: 24h)",
    )
    report.add_argument(
        "--top", type=cliargs.positive_int, default=10, metavar="N", help="offenders to list (default: 10)"
    )
    report.add_argument(
        "--metric",
        type=_metric_arg,
        default="resets_sent",
        help="the rate the heat map shows (default: resets_sent)",
    )
    report.add_argument("--html", default=None, metavar="FILE", help="also write an HTML report to FILE")
    _db_argument(report)

    cfg = subparsers.add_parser(
        "config",
        help="show the effective settings and where each came from",
        description="Show the settings fleetrst.toml, FLEETRST_* variables, ANSIBLE_* variables and "
        "ansible.cfg give, and where each came from. Command-line flags beat all of them.",
    )
    cfg.add_argument("-o", "--output", choices=("table", "json"), default="table")


# --- around a sweep ---------------------------------------------------------------------------------


def history_path(args: argparse.Namespace) -> Path:
    db = getattr(args, "db", None)
    if db is None and "db" in _resolved.values:
        db = _resolved.values["db"].value
    return Path(db).expanduser() if db else config.default_history_path()


@dataclass
class Audit:
    """One sweep's audit: settings for the sweep going in, and the record of it coming out."""

    option_overrides: dict[str, Any] = field(default_factory=dict)  # extra SweepOptions fields
    store: HistoryStore | None = None
    rules: str = "threshold"
    textfile: Path | None = None
    recorded_sweep: int | None = None

    def record(self, report: FleetReport, exit_code: int) -> None:
        """Store the sweep (history) and feed monitoring (textfile).

        A failure here is a warning on stderr: the sweep's output and exit code still stand.
        """
        import sqlite3

        if self.store is not None:
            try:
                self.recorded_sweep = self.store.record(report, exit_code, self.rules)
            except (sqlite3.Error, OSError) as exc:
                sys.stderr.write(
                    f"fleetrst: warning: this sweep was not recorded in {self.store.path}: {exc}\n"
                )
        if self.textfile is not None:
            from .outputs import write_textfile

            try:
                write_textfile(self.textfile, render_prometheus(report))
            except OSError as exc:
                sys.stderr.write(f"fleetrst: warning: cannot write {self.textfile}: {exc.strerror or exc}\n")


def _check_textfile(text: str | None) -> Path | None:
    if not text:
        return None
    path = Path(text).expanduser()
    if path.suffix != ".prom":
        raise UsageError(f"--textfile {text}: node_exporter's textfile collector reads only *.prom files")
    if not path.parent.is_dir():
        raise UsageError(f"--textfile {text}: directory {path.parent} does not exist")
    return path


def default_lock_path(db: Path, args: argparse.Namespace) -> Path:
    """The lock of this audit: one per history database and command (its parsed arguments).

    The same command run again while it still runs (cron every 5 minutes, a sweep that takes 6)
    waits or gives up; a different sweep (another pattern, another flag) by hand meanwhile does not.
    ``--lock FILE`` makes any runs that name the same file exclusive.
    """
    import hashlib

    command = json.dumps(vars(args), sort_keys=True, default=str)
    digest = hashlib.sha256(command.encode()).hexdigest()[:16]
    return db.parent / "locks" / f"{db.name}.{digest}.lock"


@contextlib.contextmanager
def audit_sweep(args: argparse.Namespace, targets: Sequence[Target]) -> Iterator[Audit]:
    """Around one sweep: take the cron lock, yield the audit, release the lock."""
    from .history import HistoryStore
    from .lock import RunLock
    from .trends import median_baselines

    rules = getattr(args, "rules", "threshold")
    recording = getattr(args, "history", True)
    if rules == "netdata-history" and not recording:
        raise UsageError("--rules netdata-history judges hosts against their history: drop --no-history")
    textfile = _check_textfile(getattr(args, "textfile", None))
    db = history_path(args)
    lock_path = getattr(args, "lock", None)
    lock_file = (
        Path(lock_path).expanduser() if lock_path else (default_lock_path(db, args) if recording else None)
    )

    with contextlib.ExitStack() as stack:
        if lock_file is not None:
            what = f"sweep {getattr(args, 'pattern', 'all')!r}"
            stack.enter_context(RunLock(lock_file, getattr(args, "lock_wait", 0.0) or 0.0, what))
        audit = Audit(rules=rules, textfile=textfile)
        if recording:
            audit.store = stack.enter_context(HistoryStore.open(db))
        if rules == "netdata-history" and audit.store is not None:
            recent = audit.store.recent_rates(
                (t.name for t in targets),
                BASELINE_METRICS,
                getattr(args, "history_audits", DEFAULT_HISTORY_AUDITS),
            )
            audit.option_overrides["history_baselines"] = median_baselines(recent)
        yield audit


# --- history, report, config ------------------------------------------------------------------------


def _open_for_reading(args: argparse.Namespace) -> HistoryStore:
    from .history import HistoryStore

    return HistoryStore.open(history_path(args), create=False)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _when(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", "Z")


def run_history(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .report import clean
    from .trends import host_trends, matches

    since_ts = time.time() - args.since
    with _open_for_reading(args) as store:
        rows = [r for r in store.host_rows(since_ts) if matches(r, args.pattern)]
    trends = host_trends(rows, args.metric)
    if args.output == "json":
        doc = [
            {
                "host": t.host,
                "metric": args.metric,
                "audits": t.audits,
                "measured": t.measured,
                "tripped": t.tripped,
                "min": t.minimum,
                "median": t.median,
                "max": t.maximum,
                "last": t.last,
                "last_status": t.last_status,
                "last_audit": t.last_seen,
            }
            for t in trends
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    what = f"hosts matching {args.pattern!r}" if args.pattern else "hosts"
    if not trends:
        sys.stderr.write(
            f"fleetrst: no recorded audits of {what} in the last {config.format_duration(args.since)}\n"
        )
        return 1
    sweeps = len({r.sweep_id for r in rows})
    table = tabulate(
        [
            [
                clean(t.host),
                t.audits,
                f"{t.tripped}",
                _rate(t.minimum),
                _rate(t.median),
                _rate(t.maximum),
                _rate(t.last),
                t.last_status.upper(),
                _when(t.last_seen),
            ]
            for t in trends
        ],
        headers=[
            "HOST",
            "AUDITS",
            "TRIPPED",
            "MIN/S",
            "MEDIAN/S",
            "MAX/S",
            "LAST/S",
            "LAST STATUS",
            "LAST AUDIT",
        ],
        disable_numparse=True,
        colalign=("left", "right", "right", "right", "right", "right", "right", "left", "left"),
    )
    sys.stdout.write(
        f"{args.metric} per second, {len(trends)} {what.replace('hosts', _plural(len(trends), 'host'))}, "
        f"{sweeps} {_plural(sweeps, 'audit')} in the "
        f"last {config.format_duration(args.since)} ({store.path})\n{table}\n"
    )
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .report import clean
    from .trends import fleet_changes

    since_ts = time.time() - args.since
    with _open_for_reading(args) as store:
        sweeps = store.sweeps(since_ts)
        rows = store.host_rows()  # all: a host's previous audit may be older than the period
    changes = fleet_changes(rows, since_ts)
    period = config.format_duration(args.since)
    out: list[str] = []
    if not sweeps:
        sys.stderr.write(f"fleetrst: no recorded audits in the last {period} ({store.path})\n")
        return 1
    out.append(
        f"{len(sweeps)} {_plural(len(sweeps), 'audit')} of {changes.hosts} {_plural(changes.hosts, 'host')} "
        f"in the last {period}, {_when(sweeps[0].started_at)} to {_when(sweeps[-1].started_at)} "
        f"({store.path})"
    )
    out.append("")
    offenders = changes.offenders[: args.top]
    if offenders:
        out.append(f"Top offenders ({len(offenders)} of {len(changes.offenders)}):")
        out.append(
            tabulate(
                [
                    [
                        clean(o.host),
                        f"{o.tripped}/{o.audits}",
                        o.worst.upper(),
                        f"{o.peak_metric} {o.peak:.1f}/s",
                        o.last.status.upper(),
                        clean(", ".join(o.causes)) or "-",
                    ]
                    for o in offenders
                ],
                headers=["HOST", "TRIPPED", "WORST", "PEAK", "LAST STATUS", "CAUSES"],
                disable_numparse=True,
            )
        )
    else:
        out.append("Top offenders: none (no host warned or was critical)")
    out.append("")
    latest = next((s for s in sweeps if s.id == changes.latest_sweep), sweeps[-1])
    out.append(f"New offenders in the latest audit ({_when(latest.started_at)}):")
    out += [
        f"  {clean(c.host)}  {c.latest.status.upper()}  {c.latest.tripped_text()}"
        + (
            "  (first audit of this host)"
            if c.previous is None
            else f"  (was {c.previous.status.upper()} at {_when(c.previous.started_at)})"
        )
        for c in changes.new_offenders
    ] or ["  none"]
    out.append("Recovered in the latest audit:")
    out += [
        f"  {clean(c.host)}  OK  (was {c.previous.status.upper() if c.previous else '?'}"
        f"{': ' + c.previous.tripped_text() if c.previous else ''})"
        for c in changes.recovered
    ] or ["  none"]
    if args.html:
        from .htmlreport import render_html

        html = render_html(
            sweeps,
            [r for r in rows if r.started_ts >= since_ts],
            changes,
            args.metric,
            args.top,
            title_period=period,
        )
        try:
            Path(args.html).write_text(html, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        out.append(f"\nHTML report: {args.html}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if value is None:
        return "-"
    return str(value)


# What a setting left unset means, for ``fleetrst config``.
_UNSET_MEANS = {
    "inventory": "(none: this machine, local connection)",
    "user": "(~/.ssh/config, else the login name)",
    "private_key": "(~/.ssh/config, ssh-agent, ~/.ssh/id_*)",
    "host_key_checking": "yes",
    "connection": "ssh",
    "textfile": "(none)",
}


def run_config(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    rows: list[dict[str, Any]] = []
    for setting in config.SETTINGS:
        if setting.name in _resolved.values:
            v = _resolved.values[setting.name]
            value, source = v.value, v.source
        elif setting.name == "db":
            value = str(config.default_history_path())
            source = "default ($XDG_STATE_HOME/fleetrst/history.sqlite)"
        else:
            value, source = _builtin.get(setting.name), "default"
            value = _UNSET_MEANS.get(setting.name, value) if value is None else value
        if setting.name in ("window", "timeout", "lock_wait") and isinstance(value, float):
            value = config.format_duration(value) if value else "0"
        rows.append({"setting": setting.name, "value": value, "from": source, "about": setting.help})
    if args.output == "json":
        sys.stdout.write(json.dumps({"settings": rows, "files": _resolved.files}, indent=2) + "\n")
        return 0
    table = tabulate(
        [[r["setting"], _show(r["value"]), r["from"]] for r in rows],
        headers=["SETTING", "VALUE", "FROM"],
        disable_numparse=True,
    )
    files = ", ".join(_resolved.files) or "none"
    sys.stdout.write(f"{table}\nfiles read: {files}\ncommand-line flags beat all of these\n")
    return 0


# Filled at import: cli.py copies COMMANDS when it is imported, before any parser is built.
COMMANDS.update(history=run_history, report=run_report, config=run_config)
