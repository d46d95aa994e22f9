"""Retention: a history aged artificially (audits months back) is rolled up and pruned in the same
transaction as the next write, nothing is counted twice or lost, the file stays within the size the
README states, and ``kill -9`` in the middle of it loses nothing."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetrst.history.retention import Retention
from fleetrst.history.store import HistoryStore
from tests.helpers import run_cli

from .simulate import SimHost, audit

# The figures the README states (benchmarks/bench_history.py: a busy host, 150 counters, 42 of them
# moving): at most this many bytes in the file per host-audit kept in full, per rolled-up host-hour
# or host-day.
BYTES_PER_HOST_AUDIT = 600
BYTES_PER_ROLLUP = 700

NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = 120
EVERY = timedelta(hours=3)
PER_DAY = 8
HOSTS = ("h001", "h002", "h003", "h004", "h005", "h006")


def _storms(i: int) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """Audit ``i``'s window storms, and the storms between audit i-1 and audit i."""
    window = {"h004": (0, 900)} if i % 40 == 0 else {}  # h004: a storm in some windows (90/s)
    between = {"h003": (0, 540_000)} if i % PER_DAY == 5 else {}  # h003: 50/s for 3 h once a day, between
    return window, between


def build_aged(path: Path) -> dict[str, Counter[str]]:
    """Audits every 3 hours for 120 days, the last one now; what the hosts really did, per host."""
    truth: dict[str, Counter[str]] = {h: Counter() for h in HOSTS}
    hosts = [SimHost(name) for name in HOSTS]
    n = int(timedelta(days=DAYS) / EVERY)
    with HistoryStore.open(path) as store:
        store._db.execute("PRAGMA synchronous=OFF")  # building the fixture only: no fsync per audit
        for i in range(n):
            window, between = _storms(i)
            if i:
                for h in hosts:
                    received, sent = between.get(h.name, (0, 0))
                    h.happen(EVERY.total_seconds() - 10, received, sent)
                    truth[h.name]["between_sent"] += sent  # counted by the interval that ends at audit i
            rep = audit(store, hosts, NOW - (n - 1 - i) * EVERY, storm=window)
            for r in rep.hosts:
                truth[r.host]["audits"] += 1
                truth[r.host]["tripped"] += r.status != "ok"
                truth[r.host]["interval_tripped"] += r.interval_level != "ok"
                if r.interval is not None:
                    truth[r.host]["counted_sent"] += r.interval.counts.get("resets_sent", 0)
    return truth


@pytest.fixture(scope="module")
def aged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Counter[str]]]:
    path = tmp_path_factory.mktemp("aged") / "h.sqlite"
    truth = build_aged(path)
    return path, truth


def copy(src: Path, dst: Path) -> Path:
    with HistoryStore.open(src) as store:
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(src, dst)
    return dst


def kept(path: Path) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Per host, what the file holds: audits, intervals that tripped, resets_sent counted between
    audits, summed over the audits kept in full and the rollups."""
    audits: Counter[str] = Counter()
    between: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    with HistoryStore.open(path) as store:
        for r in store.host_rows():
            audits[r.host] += 1
            between[r.host] += r.is_interval_tripped
            sent[r.host] += r.since_count("resets_sent") or 0
        for ru in store.rollups():
            audits[ru.host] += ru.audits
            between[ru.host] += ru.interval_tripped
            sent[ru.host] += ru.counts.get("resets_sent", 0)
    return audits, between, sent


def test_the_aged_history_counts_every_reset_between_audits(
    aged: tuple[Path, dict[str, Counter[str]]],
) -> None:
    _, truth = aged
    assert truth["h003"]["counted_sent"] == truth["h003"]["between_sent"] > 0, "every reset counted"
    assert truth["h003"]["tripped"] == 0 and truth["h003"]["interval_tripped"] == DAYS, "quiet at every audit"
    assert truth["h004"]["tripped"] > 0


def test_an_old_history_is_rolled_up_and_pruned_in_the_next_write_and_nothing_is_lost(
    aged: tuple[Path, dict[str, Counter[str]]], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    src, truth = aged
    path = copy(src, tmp_path / "h.sqlite")
    before = path.stat().st_size
    hosts = [SimHost(name) for name in HOSTS]
    with HistoryStore.open(path) as store:
        for h, sample in store.last_samples(HOSTS).items():  # carry on from the history's last counters
            hosts[HOSTS.index(h)].tcp.update(sample.snapshot.tcp)
            hosts[HOSTS.index(h)].tcpext.update(sample.snapshot.tcpext)
            hosts[HOSTS.index(h)].uptime = sample.snapshot.uptime_s
        for h in hosts:
            h.happen(600)
        started = time.monotonic()
        audit(store, hosts, NOW + timedelta(minutes=10), retention=Retention())
        took = time.monotonic() - started
        pruned = store.pruned
        wal = Path(f"{path}-wal").stat().st_size
        sweeps = store.sweeps()
        rollups = store.rollups()
        size = store.size()
    print(f"\nfirst prune of {pruned.sweeps} audits ({pruned.host_results} host rows): {took:.2f}s; {size}")
    assert pruned.sweeps > 0 and pruned.hourly_merged > 0
    cut = (NOW + timedelta(minutes=10) - timedelta(days=30)).timestamp()
    assert min(s.started_ts for s in sweeps) >= cut, "no audit older than --keep is kept in full"
    assert len(sweeps) == 30 * PER_DAY + 1
    hours = [r for r in rollups if r.period == "hour"]
    days = [r for r in rollups if r.period == "day"]
    hour_cut = (NOW + timedelta(minutes=10) - timedelta(days=90)).timestamp()
    assert hours and days and all(r.start_ts >= hour_cut - 3600 for r in hours)
    assert all(r.start_ts < cut for r in days + hours)
    assert max(r.start_ts for r in days) < hour_cut

    audits, between, sent = kept(path)
    for h in HOSTS:
        assert audits[h] == truth[h]["audits"] + 1, f"{h}: every audit is somewhere, once"
        assert between[h] == truth[h]["interval_tripped"], h
        assert sent[h] == truth[h]["counted_sent"], f"{h}: every reset counted between audits, once"

    assert (
        size["used_bytes"]
        <= BYTES_PER_HOST_AUDIT * size["host_results"] + BYTES_PER_ROLLUP * size["rollups"] + 64 * 1024
    )
    assert path.stat().st_size < before / 2, "the pages pruning freed were given back"
    assert wal == 0, "the write-ahead log was checkpointed and truncated after the write"

    hist = run_cli(
        "history", "h003", "--db", str(path), "--since", "365d", "-o", "json", env=cli_env, cwd=tmp_path
    )
    assert hist.returncode == 0, hist.stderr
    [h003] = json.loads(hist.stdout)
    assert h003["audits"] == truth["h003"]["audits"] + 1 and h003["tripped"] == 0
    assert h003["between_audits"]["counted"] == truth["h003"]["counted_sent"]
    assert h003["between_audits"]["quiet_tripped"] == DAYS
    rep = run_cli("report", "--db", str(path), "--since", "365d", env=cli_env, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    quiet = rep.stdout.split("Quiet at every audit, yet resetting in between")[1].split("New offenders")[0]
    assert "h003" in quiet and "h004" not in quiet, rep.stdout


def test_steady_writes_keep_the_file_the_same_size(tmp_path: Path) -> None:
    """Audits every 5 minutes with --keep 2h: once the first audits age out, each write rolls up and
    prunes about what it adds, and the file reuses its pages instead of growing."""
    path = tmp_path / "h.sqlite"
    hosts = [SimHost(f"h{i:03d}") for i in range(20)]
    retention = Retention(keep_s=7200.0, keep_hourly_s=86400.0, keep_daily_s=86400.0 * 30)
    sizes = []
    with HistoryStore.open(path) as store:
        store._db.execute("PRAGMA synchronous=OFF")
        for i in range(96):  # 8 hours
            for h in hosts:
                h.happen(290, sent=100 if i % 7 == 0 else 0)
            audit(store, hosts, NOW + timedelta(minutes=5 * i), retention=retention)
            sizes.append(path.stat().st_size)
        assert store.size()["sweeps"] == 24 + 1
    plateau = sizes[40:]
    assert max(plateau) <= min(plateau) * 1.15, f"the file stays the same size once pruning starts: {plateau}"


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from fleetrst.history.retention import Retention
    from fleetrst.history.store import HistoryStore
    from tests.history.simulate import SimHost, audit
    hosts = [SimHost(f"h{i:03d}") for i in range(1, 7)]
    with HistoryStore.open(sys.argv[1]) as store:
        for h, sample in store.last_samples([h.name for h in hosts]).items():
            host = next(x for x in hosts if x.name == h)
            host.tcp.update(sample.snapshot.tcp); host.tcpext.update(sample.snapshot.tcpext)
            host.uptime = sample.snapshot.uptime_s + 600
        print("recording", flush=True)
        audit(store, hosts, datetime.now(UTC) + timedelta(minutes=10), retention=Retention())
        print("done", flush=True)
    """
)


def test_kill_9_while_pruning_loses_nothing(
    aged: tuple[Path, dict[str, Counter[str]]], tmp_path: Path
) -> None:
    """The write that rolls up and prunes months of audits is killed with SIGKILL at moments along
    it: each time the file opens, passes SQLite's integrity check, and holds every audit once (in full
    or rolled up) with every reset counted between audits: the prune happened whole or not at all."""
    src, truth = aged
    root = Path(__file__).resolve().parents[2]
    interrupted = 0
    for delay in (0.05, 0.2, 0.4, 0.7):
        path = copy(src, tmp_path / f"h{delay}.sqlite")
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "recording"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
        interrupted += "done" not in rest
        with HistoryStore.open(path) as store:
            assert store.integrity_check() == "ok"
            written = len(store.sweeps())
        audits, between, sent = kept(path)
        finished = (
            "done" in rest
            or written == 30 * PER_DAY + 1
            or any(a == truth[h]["audits"] + 1 for h, a in audits.items())
        )
        for h in HOSTS:
            assert audits[h] in (truth[h]["audits"], truth[h]["audits"] + 1), (
                f"{h}: nothing lost, nothing twice"
            )
            assert between[h] == truth[h]["interval_tripped"], h
            assert sent[h] == truth[h]["counted_sent"], h
        assert finished or all(audits[h] == truth[h]["audits"] for h in HOSTS)
    assert interrupted >= 2, "most kills landed before the write committed"


@pytest.mark.parametrize(
    ("retention", "periods"),
    [
        (Retention(keep_s=3600.0, keep_hourly_s=0.0, keep_daily_s=86400.0 * 30), {"day"}),
        (Retention(keep_s=3600.0, keep_hourly_s=86400.0 * 30, keep_daily_s=0.0), {"hour"}),
        (Retention(keep_s=3600.0, keep_hourly_s=0.0, keep_daily_s=0.0), set()),
    ],
    ids=["days only", "hours only", "no rollups"],
)
def test_each_rollup_can_be_switched_off(tmp_path: Path, retention: Retention, periods: set[str]) -> None:
    hosts = [SimHost("h001")]
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        for i in range(6):
            hosts[0].happen(1790, sent=100)
            audit(store, hosts, NOW + timedelta(minutes=30 * i), retention=retention)
        rollups = store.rollups()
        kept = store.sweeps()
    assert {r.period for r in rollups} == periods
    assert len(kept) == 3, "audits within the hour (and the one just made) are kept in full"
    if periods:
        assert (
            sum(r.audits for r in rollups) == 3
            and sum(r.counts.get("resets_sent", 0) for r in rollups) == 200
        )
