"""What audits add to a sweep: its flags, and around it the run lock, baselines from history, then
the record (history, textfile).

- sweep flags: ``--db``, ``--no-history``, ``--rules``, ``--history-audits``, ``--textfile``,
  ``--lock-wait``, ``--lock``, ``-q``;
- around each sweep (:func:`audit_sweep`): the run lock, baselines from history, then the record.
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
from ..model import FleetReport, Target
from ..settings import default_history_path
from . import options

if TYPE_CHECKING:
    from ..history.store import HistoryStore

RULES = ("threshold", "netdata-history")
DEFAULT_HISTORY_AUDITS = 10
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
        help="table: print only hosts that are not OK, and nothing at all when every host is OK",
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

    def record(self, report: FleetReport) -> None:
        """Store the sweep (history) and feed monitoring (textfile).

        A failure here is a warning on stderr: the sweep's output and exit code still stand.
        """
        import sqlite3

        if self.store is not None:
            try:
                self.recorded_sweep = self.store.record(report, report.exit_code, self.rules)
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
    from ..history.store import HistoryStore
    from ..measure.trends import median_baselines
    from .lock import RunLock

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
