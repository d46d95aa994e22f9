"""History size and cost: bytes per host-audit, per rollup, and a projection for a big fleet.

Records audits of N simulated hosts through the same path as ``fleetrst sweep`` (each host's last
sample, its counts since its previous audit, judged, one transaction, retention), with counters taken
from this machine: a *busy* host is this machine's own namespace (its real counter names; every
counter that is not 0 moves, at 50 times its average rate since boot: the counters that move here,
fifty times as fast), a *quiet* host a fresh network namespace's counters (as a test-fleet host: most
counters 0, three of them moving). Then:

- bytes per host-audit kept in full (pages in use / host rows, indexes included);
- bytes per rolled-up host-hour and host-day (after aging the history past ``--keep``);
- the time an audit spends on history per host (previous samples read, since_last, the write);
- a projection for 10,000 hosts audited every 5 minutes for a year with the default retention
  (30 days in full, hourly rollups to 90 days, daily ones after).

    python benchmarks/bench_history.py                      # 300 hosts, 48 audits each kind
    python benchmarks/bench_history.py --hosts 2000 --audits 24
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleetrst.history.retention import Retention  # noqa: E402
from fleetrst.history.store import HistoryStore  # noqa: E402
from fleetrst.measure.counters import measure_rates, parse_netstat, parse_snmp  # noqa: E402
from fleetrst.measure.interval import DEFAULT_INTERVAL_THRESHOLDS, since_last_of  # noqa: E402
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, judge  # noqa: E402
from fleetrst.model import FleetReport, HostResult, Snapshot  # noqa: E402

BOOT = "5b0c8f3a-1d2e-4f60-9a7b-8c9d0e1f2a3b"
EVERY = 300.0
WINDOW = 10.0


def _counters(prefix: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    snmp = subprocess.run(
        [*prefix, "cat", "/proc/net/snmp"], capture_output=True, text=True, check=True
    ).stdout
    netstat = subprocess.run(
        [*prefix, "cat", "/proc/net/netstat"], capture_output=True, text=True, check=True
    ).stdout
    return parse_snmp(snmp), parse_netstat(netstat)


def profiles() -> dict[str, tuple[dict[str, int], dict[str, int], dict[str, float]]]:
    """Per kind of host: its counters now, and how fast each moves (per second)."""
    tcp1, ext1 = _counters([])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    gauges = ("RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "CurrEstab")
    speed = {k: 50 * v / uptime for k, v in (tcp1 | ext1).items() if v > 0 and k not in gauges}
    busy = ({k: v * 50 if v > 0 else v for k, v in tcp1.items()}, {k: v * 50 for k, v in ext1.items()}, speed)
    name = f"fleetrst-bench-history-{int(time.time())}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        qtcp, qext = _counters(["ip", "netns", "exec", name])
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    quiet = (qtcp, qext, {"InSegs": 2.0, "OutSegs": 2.0, "PassiveOpens": 0.01})
    return {"busy": busy, "quiet": quiet}


def _advance(values: dict[str, int], speed: dict[str, float], seconds: float) -> dict[str, int]:
    return {
        k: v + int(speed.get(k, 0.0) * seconds) if speed.get(k, 0.0) > 0 else v for k, v in values.items()
    }


def run(kind: str, n_hosts: int, audits: int, workdir: Path) -> dict[str, float]:
    tcp, ext, speed = profiles_cache[kind]
    path = workdir / f"{kind}.sqlite"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=EVERY * audits)
    state = {f"h{i:05d}": (dict(tcp), dict(ext), 100_000.0) for i in range(n_hosts)}
    history_s = 0.0
    with HistoryStore.open(path) as store:
        for a in range(audits):
            results = []
            for name, (t, e, up) in state.items():
                first = Snapshot(t, e, up, BOOT)
                t2, e2 = _advance(t, speed, WINDOW), _advance(e, speed, WINDOW)
                last = Snapshot(t2, e2, up + WINDOW, BOOT)
                rates = measure_rates(first, last)
                verdict = judge(rates, DEFAULT_THRESHOLDS)
                results.append(
                    HostResult(
                        name,
                        "10.0.0.1",
                        ("fleet", "web"),
                        verdict.level,
                        rates=rates,
                        tripped=verdict.tripped,
                        snapshot=last,
                    )
                )
                state[name] = (
                    _advance(t2, speed, EVERY - WINDOW),
                    _advance(e2, speed, EVERY - WINDOW),
                    up + EVERY,
                )
            t0 = time.perf_counter()
            previous = store.last_samples(r.host for r in results)
            results = [
                replace(r, since_last=since_last_of(r, previous.get(r.host), DEFAULT_INTERVAL_THRESHOLDS))
                for r in results
            ]
            report = FleetReport(
                tuple(results), (start + timedelta(seconds=EVERY * a)).isoformat(), WINDOW + 1, WINDOW
            )
            store.record(report, report.exit_code, retention=Retention())
            history_s += time.perf_counter() - t0
        size = store.size()
        per_audit = size["used_bytes"] / size["host_results"]
        # Age it: every audit past --keep, rolled up into hours (keep 1 s, hourly kept long).
        later = FleetReport((), (start + timedelta(seconds=EVERY * audits + 3600)).isoformat(), 1.0, 1.0)
        store.record(later, 0, retention=Retention(keep_s=1.0))
        hours = store.size()
        # ... and the hours into days.
        store.record(
            replace(later, started_at=(start + timedelta(days=3)).isoformat()),
            0,
            retention=Retention(keep_s=1.0, keep_hourly_s=1.0, keep_daily_s=10 * 86400.0),
        )
        days = store.size()
    base = 64 * 1024  # the schema's own pages: tables and indexes, empty
    return {
        "bytes_per_host_audit": per_audit,
        "bytes_per_hourly_rollup": (hours["used_bytes"] - base) / max(1, hours["rollups"]),
        "bytes_per_daily_rollup": (days["used_bytes"] - base) / max(1, days["rollups"]),
        "history_ms_per_host_audit": 1000 * history_s / (n_hosts * audits),
    }


def projection(
    per_audit: float, per_hour: float, per_day: float, hosts: int = 10_000, days: int = 365
) -> str:
    audits_per_day = 86400 / EVERY
    full = min(days, 30) * audits_per_day * hosts * per_audit
    hourly = max(0, min(days, 90) - 30) * 24 * hosts * per_hour
    daily = max(0, days - 90) * hosts * per_day
    return (
        f"{hosts} hosts every {EVERY / 60:.0f} min for {days} days, default retention: "
        f"{full / 1e9:.1f} GB audits kept in full + {hourly / 1e9:.2f} GB hourly + "
        f"{daily / 1e9:.2f} GB daily "
        f"= {(full + hourly + daily) / 1e9:.1f} GB (without retention: "
        f"{days * audits_per_day * hosts * per_audit / 1e9:.0f} GB)"
    )


profiles_cache: dict[str, tuple[dict[str, int], dict[str, int], dict[str, float]]] = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--audits", type=int, default=48)
    args = parser.parse_args()
    profiles_cache.update(profiles())
    workdir = Path(tempfile.mkdtemp(prefix="fleetrst-bench-history-"))
    try:
        for kind in ("quiet", "busy"):
            tcp, ext, speed = profiles_cache[kind]
            moving = sum(1 for v in speed.values() if v > 0)
            got = run(kind, args.hosts, args.audits, workdir)
            print(
                f"{kind} host ({len(tcp) + len(ext)} counters, {moving} moving): "
                f"{got['bytes_per_host_audit']:.0f} B per host-audit, "
                f"{got['bytes_per_hourly_rollup']:.0f} B per hourly rollup, "
                f"{got['bytes_per_daily_rollup']:.0f} B per daily rollup, "
                f"{got['history_ms_per_host_audit']:.3f} ms of history work per host-audit"
            )
            print(
                "  "
                + projection(
                    got["bytes_per_host_audit"], got["bytes_per_hourly_rollup"], got["bytes_per_daily_rollup"]
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
