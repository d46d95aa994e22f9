"""What audits add to a sweep: its flags, and around it the run lock, baselines from history, then
the record (history, textfile).

- sweep flags: ``--db``, ``--no-history``, ``--rules``, ``--history-audits``, ``--textfile``,
  ``--lock-wait``, ``--lock``, ``-q``, and since the last audit and retention: ``--interval-warn``,
  ``--interval-crit``, ``--keep``, ``--keep-hourly``, ``--keep-daily``;
- around each sweep (:func:`audit_sweep`): the run lock, baselines from history, then the record:
  each host's counts since its previous recorded audit (``since_last``), judged, then the sweep
  stored (old audits rolled up and pruned in the same transaction).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..model import FleetReport, HostResult, SinceLast, SinceLastMissing, Target
from ..settings import KEEP_MAX_S, default_history_path
from ..units import format_duration
from . import options

if TYPE_CHECKING:
    from ..history.retention import Retention
    from ..history.store import HistoryStore

RULES = ("threshold", "netdata-history")
DEFAULT_HISTORY_AUDITS = 10
# History's retention (the same as fleetrst.history.retention's; kept here so that building the parser
# imports no store).
DEFAULT_KEEP_S = 30 * 86400.0
DEFAULT_KEEP_HOURLY_S = 90 * 86400.0
DEFAULT_KEEP_DAILY_S = 730 * 86400.0
BASELINE_METRICS = ("resets_received", "resets_sent")  # the rates Netdata's spike rule judges


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
        type=options.positive_int,
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
        type=options.duration_arg(86400, allow_zero=True),
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
        help="table: print only hosts that are not OK (in the window or since the last audit), and "
        "nothing at all when every host is OK",
    )
    between = parser.add_argument_group("since the last audit, and how long history is kept")
    between.add_argument(
        "--interval-warn",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="warning level for a metric's average per second since the host's previous audit, e.g. "
        "resets_sent=10; beats the inventory's fleetrst_interval_thresholds",
    )
    between.add_argument(
        "--interval-crit",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="critical level for a metric's average per second since the previous audit",
    )
    between.add_argument(
        "--keep",
        type=options.duration_arg(KEEP_MAX_S),
        default=DEFAULT_KEEP_S,
        metavar="DURATION",
        help=f"keep each audit in full this long, then roll it up per host and hour (default: "
        f"{format_duration(DEFAULT_KEEP_S)}); pruned in the same transaction as each write",
    )
    between.add_argument(
        "--keep-hourly",
        type=options.duration_arg(KEEP_MAX_S, allow_zero=True),
        default=DEFAULT_KEEP_HOURLY_S,
        metavar="DURATION",
        help=f"keep hourly rollups until audits are this old, then merge them into days (default: "
        f"{format_duration(DEFAULT_KEEP_HOURLY_S)}; 0: none)",
    )
    between.add_argument(
        "--keep-daily",
        type=options.duration_arg(KEEP_MAX_S, allow_zero=True),
        default=DEFAULT_KEEP_DAILY_S,
        metavar="DURATION",
        help="keep daily rollups until audits are this old (default: "
        f"{format_duration(DEFAULT_KEEP_DAILY_S)}; 0: none)",
    )


# --- around a sweep ---------------------------------------------------------------------------------


def history_path(args: argparse.Namespace) -> Path:
    """``--db`` (its default from the settings), else ``$XDG_STATE_HOME/fleetrst/history.sqlite``."""
    db = getattr(args, "db", None)
    return Path(db).expanduser() if db else default_history_path()


@dataclass
class Audit:
    """One sweep's audit: settings for the sweep going in, and the record of it coming out."""

    option_overrides: dict[str, Any] = field(default_factory=dict)  # extra SweepOptions fields
    store: HistoryStore | None = None
    rules: str = "threshold"
    textfile: Path | None = None
    recorded_sweep: int | None = None
    retention: Retention | None = None
    interval_warn: dict[str, float] = field(default_factory=dict)
    interval_crit: dict[str, float] = field(default_factory=dict)
    window_warn: dict[str, float] = field(default_factory=dict)  # --warn/--crit: intervals under a minute
    window_crit: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)

    def record(self, report: FleetReport) -> FleetReport:
        """Count each host since its previous recorded audit, store the sweep (history), feed
        monitoring (textfile); return the report with each host's ``since_last``.

        A failure here is a warning on stderr: the sweep's output and exit code still stand.
        """
        if self.store is not None:
            import sqlite3

            try:
                report = self.since_last(report)
            except sqlite3.Error as exc:
                sys.stderr.write(
                    f"fleetrst: warning: cannot read the previous audits in {self.store.path}: {exc}\n"
                )
            try:
                self.recorded_sweep = self.store.record(report, report.exit_code, self.rules, self.retention)
            except (sqlite3.Error, OSError) as exc:
                sys.stderr.write(
                    f"fleetrst: warning: this sweep was not recorded in {self.store.path}: {exc}\n"
                )
        if self.textfile is not None:
            from ..render.monitoring import render_prometheus
            from .files import write_textfile

            try:
                write_textfile(self.textfile, render_prometheus(report))
            except OSError as exc:
                sys.stderr.write(f"fleetrst: warning: cannot write {self.textfile}: {exc.strerror or exc}\n")
        return report

    def since_last(self, report: FleetReport) -> FleetReport:
        """Each host's counts and averages since its previous recorded audit, judged."""
        import dataclasses

        assert self.store is not None
        previous = self.store.last_samples(h.host for h in report.hosts if h.snapshot is not None)
        hosts = tuple(
            dataclasses.replace(h, since_last=self._host_since_last(h, previous.get(h.host)))
            for h in report.hosts
        )
        return dataclasses.replace(report, hosts=hosts)

    def _host_since_last(self, h: HostResult, previous: Any) -> SinceLast | SinceLastMissing:
        from ..measure.interval import WINDOW_VARIABLE, interval_thresholds, since_last_of
        from ..measure.rules import ThresholdError, effective_thresholds, parse_threshold_overrides

        target = self.targets.get(h.host)
        host_vars = target.fleetrst_vars if target is not None else {}
        where = f"host {h.host}"
        try:
            thresholds = interval_thresholds(host_vars, self.interval_warn, self.interval_crit, where)
            raw = host_vars.get(WINDOW_VARIABLE)
            window = effective_thresholds(
                parse_threshold_overrides(raw, where) if raw is not None else None,
                self.window_warn,
                self.window_crit,
            )
        except ThresholdError as exc:
            return SinceLastMissing("config", str(exc))
        return since_last_of(h, previous, thresholds, window)


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

    interval_warn, interval_crit = _interval_limits(args)
    window_warn, window_crit = options.thresholds(args) if hasattr(args, "warn") else ({}, {})
    keep_s = getattr(args, "keep", None) or DEFAULT_KEEP_S
    keep_hourly_s = _age(args, "keep_hourly", DEFAULT_KEEP_HOURLY_S)
    keep_daily_s = _age(args, "keep_daily", DEFAULT_KEEP_DAILY_S)
    retention: Retention | None = None
    if recording:  # the history's modules (and sqlite3) only for a sweep that writes to it
        from ..history.retention import Retention

        retention = Retention(keep_s=keep_s, keep_hourly_s=keep_hourly_s, keep_daily_s=keep_daily_s)

    with contextlib.ExitStack() as stack:
        if lock_file is not None:
            from .lock import RunLock

            what = f"sweep {getattr(args, 'pattern', 'all')!r}"
            stack.enter_context(RunLock(lock_file, getattr(args, "lock_wait", 0.0) or 0.0, what))
        audit = Audit(
            rules=rules,
            textfile=textfile,
            retention=retention,
            interval_warn=interval_warn,
            interval_crit=interval_crit,
            window_warn=window_warn,
            window_crit=window_crit,
            targets={t.name: t for t in targets},
        )
        if recording:
            from ..history.store import HistoryStore

            audit.store = stack.enter_context(HistoryStore.open(db))
        if rules == "netdata-history" and audit.store is not None:
            from ..measure.trends import median_baselines

            recent = audit.store.recent_rates(
                (t.name for t in targets),
                BASELINE_METRICS,
                getattr(args, "history_audits", DEFAULT_HISTORY_AUDITS),
            )
            audit.option_overrides["history_baselines"] = median_baselines(recent)
        yield audit


def _age(args: argparse.Namespace, name: str, default: float) -> float:
    value = getattr(args, name, None)
    return default if value is None else float(value)


def _interval_limits(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    """The --interval-warn and --interval-crit limits, checked. Raises UsageError."""
    from ..measure.rules import ThresholdError, parse_cli_threshold

    try:
        warn = dict(parse_cli_threshold(item) for item in getattr(args, "interval_warn", None) or [])
        crit = dict(parse_cli_threshold(item) for item in getattr(args, "interval_crit", None) or [])
    except ThresholdError as exc:
        raise UsageError(f"--interval-warn/--interval-crit: {exc}") from exc
    return warn, crit
