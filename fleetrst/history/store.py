"""The history store: every sweep and every host's result in one SQLite file.

- One transaction per sweep (the sweep row and all its host rows, or nothing): a crash or ``kill -9``
  at any moment leaves the file consistent and every earlier audit intact. Write-ahead log,
  ``synchronous=FULL``: a committed audit survives a power cut too.
- The schema is versioned (``PRAGMA user_version``); :data:`MIGRATIONS` take it forward one version at
  a time, each in its own transaction. A file newer than this fleetrst is refused, never rewritten.
- The file is created 0600 and its directory 0700 (SQLite gives its ``-wal``/``-shm`` files the
  database's mode). Nothing secret is stored: a ``HostResult`` holds no passwords, and of an
  investigation only its ``causes`` are kept (process command lines can hold secrets).
- Only non-zero rates are kept (most of a quiet host's hundred-odd counters are 0): a rate missing
  from a measured host's ``rates`` was 0. The reset rates also have columns of their own, for the
  baseline query.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import UsageError
from ..model import HEADLINE_RATES, STATUSES, FleetReport, HostResult, HostRow, SweepRow

if TYPE_CHECKING:
    from ..investigate.result import CauseResult

RATE_COLUMNS = HEADLINE_RATES
COUNT_COLUMNS = STATUSES

# MIGRATIONS[i] takes the schema from version i to i + 1. Append; never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,          -- ISO 8601, UTC
        started_ts REAL NOT NULL,          -- the same, in Unix seconds (for --since)
        duration_s REAL NOT NULL,
        window_s REAL NOT NULL,
        baseline_s REAL,
        pattern TEXT NOT NULL,
        host_limit TEXT,
        inventories TEXT NOT NULL,         -- JSON list
        rules TEXT NOT NULL,               -- threshold | netdata-history
        exit_code INTEGER NOT NULL,
        interrupted_by TEXT,
        hosts INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        warning INTEGER NOT NULL,
        critical INTEGER NOT NULL,
        unreachable INTEGER NOT NULL,
        error INTEGER NOT NULL,
        interrupted INTEGER NOT NULL,
        fleetrst_version TEXT NOT NULL
    );
    CREATE INDEX sweeps_by_time ON sweeps (started_ts);
    CREATE TABLE host_results (
        sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        address TEXT NOT NULL,
        groups TEXT NOT NULL,              -- JSON list
        status TEXT NOT NULL,              -- ok | warning | critical | unreachable | error | interrupted
        error TEXT,
        error_kind TEXT,
        interval_s REAL,                   -- NULL: not measured
        resets_received REAL,
        resets_sent REAL,
        estab_resets REAL,
        listen_overflows REAL,
        listen_drops REAL,
        rates TEXT,                        -- JSON object of the non-zero rates; NULL: not measured
        tripped TEXT NOT NULL,             -- JSON list of {metric, level, value, limit, rule, baseline}
        causes TEXT,                       -- JSON list, from the investigation; NULL: none ran
        elapsed_s REAL NOT NULL,
        PRIMARY KEY (sweep_id, host)
    ) WITHOUT ROWID;
    CREATE INDEX host_results_by_host ON host_results (host, sweep_id);
    """,
]


class HistoryError(UsageError):
    """The history database cannot be used (exit 64, one line naming the file)."""


def schema_version() -> int:
    return len(MIGRATIONS)


def _private_file(path: Path) -> None:
    """Create the directory (0700, if we make it) and the file (0600) before SQLite opens it."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # whatever the umask
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        os.close(fd)


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class HistoryStore:
    """An open history database. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True) -> HistoryStore:
        p = Path(path).expanduser()
        try:
            if not p.exists():
                if not create:
                    raise HistoryError(f"no history at {p} yet: record a sweep first (fleetrst sweep)")
                _private_file(p)
            db = sqlite3.connect(p, timeout=30.0, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            raise HistoryError(f"cannot create the history database {p}: {exc.strerror or exc}") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history database {p}: {exc}") from None
        store = cls(p, db)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            store._migrate()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise HistoryError(f"{p} is not a usable fleetrst history database: {exc}") from None
        except BaseException:
            db.close()
            raise
        return store

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise HistoryError(
                f"{self.path} has history schema version {current}, newer than this fleetrst knows "
                f"({len(MIGRATIONS)}): upgrade fleetrst"
            )
        if current == len(MIGRATIONS):
            return
        self._db.execute("BEGIN IMMEDIATE")  # one writer migrates; the others wait, then see it done
        try:
            current = self.version
            for version in range(current, len(MIGRATIONS)):
                for statement in _statements(MIGRATIONS[version]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # --- writing ---

    def record(self, report: FleetReport, exit_code: int, rules: str = "threshold") -> int:
        """Store one sweep and all its hosts in one transaction; return the sweep's id."""
        counts: dict[str, int] = {status: report.count(status) for status in COUNT_COLUMNS}
        sweep_values: dict[str, Any] = {
            "started_at": report.started_at,
            "started_ts": _timestamp(report.started_at),
            "duration_s": report.duration_s,
            "window_s": report.window_s,
            "baseline_s": report.baseline_s,
            "pattern": report.pattern,
            "host_limit": report.limit,
            "inventories": json.dumps(list(report.inventories)),
            "rules": rules,
            "exit_code": exit_code,
            "interrupted_by": report.interrupted_by,
            "hosts": len(report.hosts),
            **counts,
            "fleetrst_version": __version__,
        }
        columns = ", ".join(sweep_values)
        marks = ", ".join(f":{name}" for name in sweep_values)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._db.execute(f"INSERT INTO sweeps ({columns}) VALUES ({marks})", sweep_values)
            sweep_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO host_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_host_values(sweep_id, h) for h in report.hosts),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return sweep_id

    # --- reading ---

    def sweeps(self, since_ts: float | None = None) -> list[SweepRow]:
        query = "SELECT * FROM sweeps" + (" WHERE started_ts >= ?" if since_ts is not None else "")
        cursor = self._db.execute(query + " ORDER BY started_ts, id", () if since_ts is None else (since_ts,))
        names = [d[0] for d in cursor.description]
        rows = []
        for values in cursor:
            r = dict(zip(names, values, strict=True))
            rows.append(
                SweepRow(
                    id=r["id"],
                    started_at=r["started_at"],
                    started_ts=r["started_ts"],
                    duration_s=r["duration_s"],
                    window_s=r["window_s"],
                    pattern=r["pattern"],
                    inventories=tuple(json.loads(r["inventories"])),
                    rules=r["rules"],
                    exit_code=r["exit_code"],
                    interrupted_by=r["interrupted_by"],
                    counts={name: r[name] for name in ("hosts", *COUNT_COLUMNS)},
                )
            )
        return rows

    def host_rows(self, since_ts: float | None = None) -> list[HostRow]:
        """Every host result from ``since_ts`` on, oldest first."""
        query = (
            "SELECT h.sweep_id, s.started_at, s.started_ts, h.host, h.groups, h.status, h.error, h.rates,"
            " h.tripped, h.causes FROM host_results h JOIN sweeps s ON s.id = h.sweep_id"
        )
        args: tuple[Any, ...] = ()
        if since_ts is not None:
            query += " WHERE s.started_ts >= ?"
            args = (since_ts,)
        cursor = self._db.execute(query + " ORDER BY s.started_ts, h.sweep_id, h.host", args)
        return [_host_row(values) for values in cursor]

    def host_history(self, host: str, limit: int) -> list[HostRow]:
        """A host's latest ``limit`` results, newest first (through the (host, sweep) index)."""
        cursor = self._db.execute(
            "SELECT h.sweep_id, s.started_at, s.started_ts, h.host, h.groups, h.status, h.error, h.rates,"
            " h.tripped, h.causes FROM host_results h JOIN sweeps s ON s.id = h.sweep_id"
            " WHERE h.host = ? ORDER BY h.sweep_id DESC LIMIT ?",
            (host, limit),
        )
        return [_host_row(values) for values in cursor]

    def recent_rates(
        self, hosts: Iterable[str], metrics: Sequence[str], audits: int
    ) -> dict[str, list[dict[str, float]]]:
        """Per host, its ``metrics`` in its latest ``audits`` measured results (newest first).

        One indexed query per host: the cost grows with the hosts swept, not with the history kept.
        """
        columns = [m for m in metrics if m in RATE_COLUMNS]
        if len(columns) != len(metrics):
            raise ValueError(f"baselines are kept for {', '.join(RATE_COLUMNS)} only")
        query = (
            f"SELECT {', '.join(columns)} FROM host_results WHERE host = ? AND interval_s IS NOT NULL"
            " ORDER BY sweep_id DESC LIMIT ?"
        )
        result: dict[str, list[dict[str, float]]] = {}
        for host in hosts:
            samples = [
                dict(zip(columns, row, strict=True)) for row in self._db.execute(query, (host, audits))
            ]
            if samples:
                result[host] = samples
        return result

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _statements(script: str) -> list[str]:
    """A migration's statements (split on ';', which our schema text uses only as a terminator)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _host_values(sweep_id: int, h: HostResult) -> tuple[Any, ...]:
    per_second = h.rates.per_second if h.rates else None
    causes = None
    if h.investigation is not None:
        causes = json.dumps([_cause_record(c) for c in h.investigation.causes])
    return (
        sweep_id,
        h.host,
        h.address,
        json.dumps(list(h.groups)),
        h.status,
        h.error,
        h.error_kind,
        h.interval_s,
        *((per_second.get(m, 0.0) if per_second is not None else None) for m in RATE_COLUMNS),
        None if per_second is None else json.dumps({k: round(v, 3) for k, v in per_second.items() if v}),
        json.dumps(
            [
                {
                    "metric": t.metric,
                    "level": t.level,
                    "value": round(t.value, 3),
                    "limit": t.limit,
                    "rule": t.rule,
                    "baseline": t.baseline,
                }
                for t in h.tripped
            ]
        ),
        causes,
        h.elapsed_s,
    )


def _cause_record(cause: CauseResult) -> dict[str, object]:
    """What the ``causes`` column keeps of a cause: ``{cause, summary, port, next_step}``.

    Only what names it: its processes' command lines (which can hold secrets) and its raw evidence
    stay out of the history.
    """
    return {"cause": cause.cause, "summary": cause.summary, "port": cause.port, "next_step": cause.next_step}


def _cause_name(record: object) -> str:
    """A recorded cause's name (its ``cause``, as :func:`_cause_record` wrote it).

    A record without one (a file edited by hand) is shown whole rather than dropped.
    """
    if isinstance(record, dict) and isinstance(record.get("cause"), str):
        return str(record["cause"])
    return json.dumps(record, sort_keys=True)


def _host_row(values: Sequence[Any]) -> HostRow:
    sweep_id, started_at, started_ts, host, groups, status, error, rates, tripped, causes = values
    return HostRow(
        sweep_id=sweep_id,
        started_at=started_at,
        started_ts=started_ts,
        host=host,
        groups=tuple(json.loads(groups)),
        status=status,
        error=error,
        rates=None if rates is None else json.loads(rates),
        tripped=tuple(json.loads(tripped)),
        causes=tuple(_cause_name(c) for c in json.loads(causes)) if causes else (),
    )
