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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .. import __version__
from ..errors import UsageError
from ..model import (
    HEADLINE_RATES,
    STATUSES,
    FleetReport,
    HostResult,
    HostRow,
    NameIndex,
    NamespaceResult,
    RecordedSnapshot,
    RollupRow,
    SinceLast,
    SinceLastMissing,
    Snapshot,
    SweepRow,
    Trip,
)
from . import counters as stored
from .retention import ROLLUP_COLUMNS, Pruned, Retention, prune, rollup_from_values

if TYPE_CHECKING:
    from ..investigate.result import CauseResult, Investigation
    from ..measure.alarms import AlarmState, WatchEvent

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
    # 2: fleetrst watch's events (raised, cleared, lost, back), one row each, as they happen.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,                  -- when, in Unix seconds (controller time)
        at TEXT NOT NULL,                  -- the same, ISO 8601, UTC
        event TEXT NOT NULL,               -- raised | cleared | lost | back
        host TEXT NOT NULL,
        groups TEXT NOT NULL,              -- JSON list
        metric TEXT,                       -- raised, cleared: the alarm's metric
        level TEXT,                        -- raised, cleared: the level it went to (ok when cleared)
        previous TEXT,                     -- raised, cleared: the level it came from
        value REAL,                        -- raised, cleared: the rate judged, per second
        limit_value REAL,                  -- raised, cleared: the limit it was judged against
        baseline REAL,                     -- spike rule: the baseline rate
        rule TEXT,                         -- spike | average | threshold
        error TEXT,                        -- lost: why
        error_kind TEXT,                   -- lost: refused | timeout | lost | auth | ...
        down_s REAL,                       -- back: how long the host was lost
        watch_started_ts REAL NOT NULL,    -- the watch that saw it (its start, Unix seconds)
        fleetrst_version TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events (ts);
    CREATE INDEX events_by_host ON events (host, ts);
    """,
    # 3: since the last audit (each host's raw counters from its last sample, and the counts since its
    # previous audit), and retention (audits older than --keep rolled up per host: hours, then days).
    """
    CREATE TABLE counter_layouts (
        id INTEGER PRIMARY KEY,
        names TEXT NOT NULL UNIQUE         -- JSON {"Tcp": [...], "TcpExt": [...]}: the order of the values
    );
    ALTER TABLE host_results ADD COLUMN boot_id BLOB;      -- 16 bytes (a UUID), or text; NULL: not measured
    ALTER TABLE host_results ADD COLUMN uptime_s REAL;     -- the host's uptime at the last sample
    ALTER TABLE host_results ADD COLUMN netns TEXT;        -- the namespace's identity; NULL: the host's own
    ALTER TABLE host_results ADD COLUMN layout INTEGER REFERENCES counter_layouts (id);
    ALTER TABLE host_results ADD COLUMN counters BLOB;     -- every counter of the last sample: LEB128 varints
    ALTER TABLE host_results ADD COLUMN window_counts BLOB; -- the window's counts (rates: NULL): varint pairs
    ALTER TABLE host_results ADD COLUMN since_ts REAL;     -- the previous audit's start; NULL: no interval
    ALTER TABLE host_results ADD COLUMN since_s REAL;      -- the interval, by the host's uptime
    ALTER TABLE host_results ADD COLUMN since_counts BLOB; -- the non-zero named counts: varint pairs
    ALTER TABLE host_results ADD COLUMN since_tripped TEXT; -- JSON list, as tripped; NULL: none
    ALTER TABLE host_results ADD COLUMN since_reason TEXT; -- no interval: first_audit, rebooted, ...
    CREATE TABLE rollups (
        host TEXT NOT NULL,
        period TEXT NOT NULL,              -- hour | day (UTC)
        start_ts REAL NOT NULL,            -- the period's start, Unix seconds
        groups TEXT NOT NULL,              -- JSON list, as last recorded
        audits INTEGER NOT NULL,
        measured INTEGER NOT NULL,
        tripped INTEGER NOT NULL,          -- audits whose window warned or was critical
        critical INTEGER NOT NULL,
        interval_tripped INTEGER NOT NULL, -- audits whose interval tripped
        quiet_tripped INTEGER NOT NULL,    -- of them, with an OK window
        interval_s REAL NOT NULL,          -- seconds covered by usable intervals
        counts TEXT NOT NULL,              -- JSON: named counts summed over those intervals
        peaks TEXT NOT NULL,               -- JSON: highest window rate per named rate
        interval_peaks TEXT NOT NULL,      -- JSON: highest interval average per named rate
        PRIMARY KEY (host, period, start_ts)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_by_time ON rollups (period, start_ts);
    """,
    # 4: every other network namespace of a host (--containers): one row per namespace per sweep.
    """
    CREATE TABLE namespace_results (
        sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
        host TEXT NOT NULL,
        ns_key TEXT NOT NULL,              -- inode:holder pid:its start ticks (inodes are reused)
        inode INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        start_ticks INTEGER NOT NULL,
        runtime TEXT NOT NULL,             -- kubernetes | docker | podman | runc | lxc | nspawn | netns | ...
        name TEXT NOT NULL,                -- as the runtime knows it (namespace/pod, container name, ...)
        status TEXT NOT NULL,              -- ok | warning | critical | error
        error TEXT,
        interval_s REAL,                   -- NULL: not measured
        resets_received REAL,
        resets_sent REAL,
        estab_resets REAL,
        listen_overflows REAL,
        listen_drops REAL,
        rates TEXT,                        -- JSON object of the non-zero rates; NULL: not measured
        tripped TEXT NOT NULL,             -- JSON list, as host_results.tripped
        PRIMARY KEY (sweep_id, host, ns_key)
    ) WITHOUT ROWID;
    CREATE INDEX namespace_results_by_name ON namespace_results (host, name, sweep_id);
    """,
    # 5: fleetrst watch's investigated events: what the investigation found (what an audit keeps of
    # one: each cause's name, summary, port and next step; never process command lines) and what
    # started it. Its worst trigger fills metric ... rule, as a raised event's alarm does.
    """
    ALTER TABLE events ADD COLUMN cause TEXT;     -- investigated: the top cause's name; NULL: none found
    ALTER TABLE events ADD COLUMN summary TEXT;   -- investigated: its summary, or no cause found (why)
    ALTER TABLE events ADD COLUMN causes TEXT;    -- investigated: JSON list, as host_results.causes
    ALTER TABLE events ADD COLUMN triggers TEXT;  -- investigated: JSON list of the alarms raised then
    """,
]


class InvestigatedEvent(Protocol):
    """What :meth:`HistoryStore.record_events` reads of a watch's ``investigated`` event
    (:class:`fleetrst.render.watch.InvestigatedEvent`, which this layer does not import)."""

    @property
    def event(self) -> Literal["investigated"]: ...
    @property
    def host(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def triggers(self) -> tuple[AlarmState, ...]: ...
    @property
    def investigation(self) -> Investigation | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...


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
        self._layouts: dict[stored.Layout, int] = {}
        self._layout_names: dict[int, stored.Layout] = {}
        self._layout_indexes: dict[int, tuple[NameIndex, NameIndex]] = {}
        self.pruned = Pruned()  # what the last write rolled up and removed

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
            if store.version == 0 and not db.execute("SELECT 1 FROM sqlite_master").fetchone():
                # A new file: pages that pruning frees can be given back (PRAGMA incremental_vacuum).
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
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

    def record(
        self,
        report: FleetReport,
        exit_code: int,
        rules: str = "threshold",
        retention: Retention | None = None,
    ) -> int:
        """Store one sweep and all its hosts in one transaction; return the sweep's id.

        With ``retention``, what aged out by this sweep's start is rolled up and deleted in the same
        transaction (``self.pruned`` says what), and the write-ahead log is checkpointed after it.
        """
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
        self.pruned = Pruned()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._db.execute(f"INSERT INTO sweeps ({columns}) VALUES ({marks})", sweep_values)
            sweep_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                f"INSERT INTO host_results ({', '.join(HOST_COLUMNS)}) VALUES ({HOST_MARKS})",
                [
                    (*_host_values(sweep_id, h, rates_json=h.snapshot is None), *self._sample_values(h))
                    for h in report.hosts
                ],
            )
            self._db.executemany(
                f"INSERT INTO namespace_results VALUES ({', '.join('?' * 18)})",
                [_namespace_values(sweep_id, h.host, n) for h in report.hosts for n in h.namespaces or ()],
            )
            if retention is not None:
                self.pruned = prune(self._db, sweep_values["started_ts"], retention, self._rows_of_sweeps)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if self.pruned.anything:
            self._give_back_space()
        return sweep_id

    def _give_back_space(self) -> None:
        """After pruning: fold the write-ahead log into the file and truncate it; when pruning freed
        more than a quarter of the file (an old history's first prune), give the pages back."""
        page_count = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        if free * 4 > page_count:
            # executescript steps it to the end (execute() would free one page: one step, one page)
            self._db.executescript("PRAGMA incremental_vacuum;")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _layout_id(self, layout: stored.Layout) -> int:
        found = self._layouts.get(layout)
        if found is not None:
            return found
        text = stored.layout_text(layout)
        self._db.execute("INSERT OR IGNORE INTO counter_layouts (names) VALUES (?)", (text,))
        found_id = self._db.execute("SELECT id FROM counter_layouts WHERE names = ?", (text,)).fetchone()
        layout_id = int(found_id[0])
        self._layouts[layout] = layout_id
        self._layout_names[layout_id] = layout
        return layout_id

    def _layout(self, layout_id: int) -> stored.Layout:
        found = self._layout_names.get(layout_id)
        if found is None:
            row = self._db.execute("SELECT names FROM counter_layouts WHERE id = ?", (layout_id,)).fetchone()
            if row is None:
                raise stored.CorruptCounters(f"no counter layout {layout_id}")
            found = self._layout_names[layout_id] = stored.layout_from_text(row[0])
        return found

    def _names_of_layout(self, layout_id: int) -> tuple[NameIndex, NameIndex]:
        found = self._layout_indexes.get(layout_id)
        if found is None:
            found = self._layout_indexes[layout_id] = stored.layout_names(self._layout(layout_id))
        return found

    def _sample_values(self, h: HostResult) -> tuple[Any, ...]:
        """The host's last sample (boot_id, uptime, namespace, counters) and its interval."""
        snap = h.snapshot
        sample: tuple[Any, ...] = (None, None, None, None, None, None)
        if snap is not None:
            layout = stored.layout_of(snap.tcp, snap.tcpext)
            sample = (
                stored.encode_boot_id(snap.boot_id),
                snap.uptime_s,
                snap.netns,
                self._layout_id(layout),
                stored.encode_counters(layout, snap.tcp, snap.tcpext),
                None
                if h.rates is None
                else stored.encode_window(layout, h.rates.per_second, h.rates.interval_s),
            )
        since = h.since_last
        interval: tuple[Any, ...] = (None, None, None, None, None)
        if isinstance(since, SinceLast):
            interval = (
                _timestamp(since.from_at),
                since.interval_s,
                stored.encode_named(since.counts),
                _trips_json(since.tripped) if since.tripped else None,
                None,
            )
        elif isinstance(since, SinceLastMissing):
            interval = (None, None, None, None, since.reason)
        return (*sample, *interval)

    def record_events(self, events: Iterable[WatchEvent | InvestigatedEvent], watch_started_ts: float) -> int:
        """Store a watch's events (in one transaction); return how many."""
        rows = [(*_event_values(e), watch_started_ts, __version__) for e in events]
        if not rows:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(EVENT_INSERT, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)

    def events(self, since_ts: float | None = None) -> list[RecordedEvent]:
        """The recorded watch events since ``since_ts``, oldest first."""
        query = f"SELECT {', '.join(RECORDED_EVENT_COLUMNS)} FROM events"
        if since_ts is not None:
            query += " WHERE ts >= ?"
        cursor = self._db.execute(query + " ORDER BY ts, id", () if since_ts is None else (since_ts,))
        return [_recorded_event(values) for values in cursor]

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
        query = ROW_QUERY
        args: tuple[Any, ...] = ()
        if since_ts is not None:
            query += " WHERE s.started_ts >= ?"
            args = (since_ts,)
        cursor = self._db.execute(query + " ORDER BY s.started_ts, h.sweep_id, h.host", args)
        return [_host_row(values, self._layout) for values in cursor]

    def host_history(self, host: str, limit: int) -> list[HostRow]:
        """A host's latest ``limit`` results, newest first (through the (host, sweep) index)."""
        cursor = self._db.execute(
            ROW_QUERY + " WHERE h.host = ? ORDER BY h.sweep_id DESC LIMIT ?",
            (host, limit),
        )
        return [_host_row(values, self._layout) for values in cursor]

    def _rows_of_sweeps(self, sweep_ids: Sequence[int]) -> list[HostRow]:
        rows: list[HostRow] = []
        for start in range(0, len(sweep_ids), 500):
            chunk = list(sweep_ids[start : start + 500])
            cursor = self._db.execute(
                ROW_QUERY + f" WHERE h.sweep_id IN ({', '.join('?' * len(chunk))})", chunk
            )
            rows += [_host_row(values, self._layout) for values in cursor]
        return rows

    def last_samples(self, hosts: Iterable[str]) -> dict[str, RecordedSnapshot]:
        """Per host, the last sample its latest measured audit recorded: what this audit counts from.

        One indexed query per host: the cost grows with the hosts swept, not with the history kept.
        A sample that does not decode (a damaged or hand-edited file) is left out, as if none.
        """
        query = (
            "SELECT h.sweep_id, s.started_at, h.boot_id, h.uptime_s, h.netns, h.layout, h.counters"
            " FROM host_results h JOIN sweeps s ON s.id = h.sweep_id"
            " WHERE h.host = ? AND h.counters IS NOT NULL ORDER BY h.sweep_id DESC LIMIT 1"
        )
        result: dict[str, RecordedSnapshot] = {}
        for host in hosts:
            row = self._db.execute(query, (host,)).fetchone()
            if row is None:
                continue
            sweep_id, started_at, boot_id, uptime_s, netns, layout_id, data = row
            try:
                tcp, tcpext = stored.decode_counters(self._names_of_layout(layout_id), data)
            except (stored.CorruptCounters, ValueError, KeyError, TypeError):
                continue
            result[host] = RecordedSnapshot(
                sweep_id=sweep_id,
                started_at=started_at,
                snapshot=Snapshot(
                    tcp=tcp,
                    tcpext=tcpext,
                    uptime_s=uptime_s,
                    boot_id=stored.decode_boot_id(boot_id),
                    netns=netns,
                ),
            )
        return result

    def rollups(self, since_ts: float | None = None) -> list[RollupRow]:
        """The rolled-up hours and days whose period ends after ``since_ts``, oldest first."""
        query = f"SELECT {ROLLUP_COLUMNS} FROM rollups"
        args: tuple[Any, ...] = ()
        if since_ts is not None:
            query += " WHERE start_ts + (CASE period WHEN 'hour' THEN 3600 ELSE 86400 END) > ?"
            args = (since_ts,)
        return [rollup_from_values(v) for v in self._db.execute(query + " ORDER BY start_ts, host", args)]

    def size(self) -> dict[str, int]:
        """Bytes in use (pages holding data), the file's bytes, and the rows kept."""
        page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        return {
            "used_bytes": (pages - free) * page,
            "file_bytes": pages * page,
            "sweeps": int(self._db.execute("SELECT count(*) FROM sweeps").fetchone()[0]),
            "host_results": int(self._db.execute("SELECT count(*) FROM host_results").fetchone()[0]),
            "rollups": int(self._db.execute("SELECT count(*) FROM rollups").fetchone()[0]),
        }

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

    def namespace_history(self, host: str, limit: int = 100) -> list[dict[str, Any]]:
        """A host's recorded namespaces (containers), newest sweep first, worst first within a sweep:
        ``sweep_id``, ``started_at``, ``key``, ``runtime``, ``name``, ``status``, ``error``,
        ``rates`` (non-zero ones; None when not measured) and ``tripped``."""
        cursor = self._db.execute(
            "SELECT n.sweep_id, s.started_at, n.ns_key, n.runtime, n.name, n.status, n.error, n.rates,"
            " n.tripped FROM namespace_results n JOIN sweeps s ON s.id = n.sweep_id WHERE n.host = ?"
            " ORDER BY n.sweep_id DESC, CASE n.status WHEN 'critical' THEN 0 WHEN 'warning' THEN 1"
            " WHEN 'error' THEN 2 ELSE 3 END, n.name LIMIT ?",
            (host, limit),
        )
        rows = []
        for sweep_id, started_at, key, runtime, name, status, error, rates, tripped in cursor:
            rows.append(
                {
                    "sweep_id": sweep_id,
                    "started_at": started_at,
                    "key": key,
                    "runtime": runtime,
                    "name": name,
                    "status": status,
                    "error": error,
                    "rates": None if rates is None else json.loads(rates),
                    "tripped": json.loads(tripped),
                }
            )
        return rows

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


def _statements(script: str) -> list[str]:
    """A migration's statements (split on ';', which our schema text uses only as a terminator)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _namespace_values(sweep_id: int, host: str, n: NamespaceResult) -> tuple[Any, ...]:
    per_second = n.rates.per_second if n.rates else None
    return (
        sweep_id,
        host,
        n.key,
        n.inode,
        n.pid,
        n.start_ticks,
        n.runtime,
        n.name,
        n.status,
        n.error,
        n.rates.interval_s if n.rates else None,
        *((per_second.get(m, 0.0) if per_second is not None else None) for m in RATE_COLUMNS),
        None if per_second is None else json.dumps({k: round(v, 3) for k, v in per_second.items() if v}),
        json.dumps([_trip_record(t) for t in n.tripped]),
    )


def _trip_record(t: Trip) -> dict[str, Any]:
    return {
        "metric": t.metric,
        "level": t.level,
        "value": round(t.value, 3),
        "limit": t.limit,
        "rule": t.rule,
        "baseline": t.baseline,
    }


def _host_values(sweep_id: int, h: HostResult, rates_json: bool = True) -> tuple[Any, ...]:
    """The host's row up to ``elapsed_s``. ``rates_json``: keep its rates as JSON (a result without
    its last sample); otherwise they go, smaller, into ``window_counts``."""
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
        None
        if per_second is None or not rates_json
        else json.dumps({k: round(v, 3) for k, v in per_second.items() if v}),
        _trips_json(h.tripped),
        causes,
        h.elapsed_s,
    )


def _trips_json(tripped: Sequence[Trip]) -> str:
    return json.dumps(
        [
            {
                "metric": t.metric,
                "level": t.level,
                "value": round(t.value, 3),
                "limit": t.limit,
                "rule": t.rule,
                "baseline": t.baseline,
            }
            for t in tripped
        ]
    )


def _cause_record(cause: CauseResult) -> dict[str, object]:
    """What the ``causes`` column keeps of a cause: ``{cause, summary, port, next_step}``.

    Only what names it: its processes' command lines (which can hold secrets) and its raw evidence
    stay out of the history.
    """
    return {"cause": cause.cause, "summary": cause.summary, "port": cause.port, "next_step": cause.next_step}


EVENT_COLUMNS = (
    "ts",
    "at",
    "event",
    "host",
    "groups",
    "metric",
    "level",
    "previous",
    "value",
    "limit_value",
    "baseline",
    "rule",
    "error",
    "error_kind",
    "down_s",
    "cause",
    "summary",
    "causes",
    "triggers",
    "watch_started_ts",
    "fleetrst_version",
)
RECORDED_EVENT_COLUMNS = EVENT_COLUMNS[:-2]
EVENT_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)


def _event_values(e: WatchEvent | InvestigatedEvent) -> tuple[Any, ...]:
    """An event's values, in :data:`EVENT_COLUMNS` order up to ``watch_started_ts``."""
    when = (e.at, datetime.fromtimestamp(e.at, UTC).isoformat(timespec="milliseconds"), e.event, e.host)
    groups = json.dumps(list(e.groups))
    if e.event != "investigated":
        return (
            *when,
            groups,
            e.metric,
            e.level,
            e.previous,
            e.value,
            e.limit,
            e.baseline,
            e.rule,
            e.error,
            e.error_kind,
            e.down_s,
            None,
            None,
            None,
            None,
        )
    worst = e.triggers[0] if e.triggers else None
    found = e.investigation
    return (
        *when,
        groups,
        worst.metric if worst else None,
        worst.level if worst else None,
        None,
        worst.value if worst else None,
        worst.limit if worst else None,
        worst.baseline if worst else None,
        worst.rule if worst else None,
        e.error,
        "internal" if e.error is not None else None,
        None,
        e.cause,
        e.summary,
        None if found is None else json.dumps([_cause_record(c) for c in found.causes]),
        json.dumps(
            [
                {
                    "metric": a.metric,
                    "level": a.level,
                    "value": round(a.value, 3),
                    "limit": a.limit,
                    "rule": a.rule,
                    "baseline": a.baseline,
                }
                for a in e.triggers
            ]
        ),
    )


@dataclass(frozen=True)
class RecordedEvent:
    """One of a watch's events as the history has it (``at``: ISO 8601 UTC; ``causes``: each cause's
    name, summary, port and next step; ``triggers``: the alarms an investigation was started by)."""

    ts: float
    at: str
    event: str
    host: str
    groups: tuple[str, ...]
    metric: str | None
    level: str | None
    previous: str | None
    value: float | None
    limit: float | None
    baseline: float | None
    rule: str | None
    error: str | None
    error_kind: str | None
    down_s: float | None
    cause: str | None
    summary: str | None
    causes: tuple[dict[str, Any], ...]
    triggers: tuple[dict[str, Any], ...]

    def describe(self) -> str:
        """One line: ``2026-11-29T14:41:42.731+00:00 investigated h002: closed_port: ...``. Its text
        came from the hosts (names, errors, summaries): clean it (``render.text.clean``) for a terminal."""
        head = f"{self.at} {self.event} {self.host}"
        if self.event == "investigated":
            if self.error is not None:
                return f"{head}: {self.error}"
            what = f"{self.cause}: {self.summary}" if self.cause else (self.summary or "no cause found")
            started = ", ".join(str(t.get("metric")) for t in self.triggers)
            return f"{head}: {what}" + (f" (raised: {started})" if started else "")
        if self.event in ("raised", "cleared"):
            value = f" {self.value:.1f}/s" if self.value is not None else ""
            limit = f" (limit {self.limit:g})" if self.limit is not None else ""
            level = f" {self.level}" if self.event == "raised" and self.level else ""
            return f"{self.at} {self.event}{level} {self.host} {self.metric}{value}{limit}"
        if self.event == "lost":
            return f"{head}: {self.error or ''}"
        return head + (f" after {self.down_s:.1f}s" if self.down_s is not None else "")


def _recorded_event(values: Sequence[Any]) -> RecordedEvent:
    ts, at, event, host, groups, metric, level, previous, value, limit, baseline, rule = values[:12]
    error, error_kind, down_s, cause, summary, causes, triggers = values[12:]
    return RecordedEvent(
        ts,
        at,
        event,
        host,
        tuple(json.loads(groups)),
        metric,
        level,
        previous,
        value,
        limit,
        baseline,
        rule,
        error,
        error_kind,
        down_s,
        cause,
        summary,
        tuple(json.loads(causes)) if causes else (),
        tuple(json.loads(triggers)) if triggers else (),
    )


def _cause_name(record: object) -> str:
    """A recorded cause's name (its ``cause``, as :func:`_cause_record` wrote it).

    A record without one (a file edited by hand) is shown whole rather than dropped.
    """
    if isinstance(record, dict) and isinstance(record.get("cause"), str):
        return str(record["cause"])
    return json.dumps(record, sort_keys=True)


HOST_COLUMNS = (
    "sweep_id",
    "host",
    "address",
    "groups",
    "status",
    "error",
    "error_kind",
    "interval_s",
    *RATE_COLUMNS,
    "rates",
    "tripped",
    "causes",
    "elapsed_s",
    "boot_id",
    "uptime_s",
    "netns",
    "layout",
    "counters",
    "window_counts",
    "since_ts",
    "since_s",
    "since_counts",
    "since_tripped",
    "since_reason",
)
HOST_MARKS = ", ".join("?" * len(HOST_COLUMNS))
ROW_QUERY = (
    "SELECT h.sweep_id, s.started_at, s.started_ts, h.host, h.groups, h.status, h.error, h.rates,"
    " h.tripped, h.causes, h.interval_s, h.since_ts, h.since_s, h.since_counts, h.since_tripped,"
    " h.since_reason, h.layout, h.window_counts FROM host_results h JOIN sweeps s ON s.id = h.sweep_id"
)


def _named_counts(data: bytes | None) -> dict[str, int] | None:
    if data is None:
        return None
    try:
        return stored.decode_named(data)
    except stored.CorruptCounters:
        return None


def _host_row(values: Sequence[Any], layout_of: Callable[[int], stored.Layout]) -> HostRow:
    sweep_id, started_at, started_ts, host, groups, status, error, rates, tripped, causes = values[:10]
    interval_s, since_ts, since_s, since_counts, since_tripped, since_reason, layout, window = values[10:]
    per_second: dict[str, float] | None = None if rates is None else json.loads(rates)
    if window is not None and layout is not None and interval_s:
        try:
            per_second = stored.decode_window(layout_of(layout), window, interval_s)
        except (stored.CorruptCounters, KeyError, ValueError):
            per_second = None
    return HostRow(
        sweep_id=sweep_id,
        started_at=started_at,
        started_ts=started_ts,
        host=host,
        groups=tuple(json.loads(groups)),
        status=status,
        error=error,
        rates=per_second,
        tripped=tuple(json.loads(tripped)),
        causes=tuple(_cause_name(c) for c in json.loads(causes)) if causes else (),
        interval_s=interval_s,
        since_from_ts=since_ts,
        since_s=since_s,
        since_counts=_named_counts(since_counts),
        since_tripped=tuple(json.loads(since_tripped)) if since_tripped else (),
        since_reason=since_reason,
    )
