"""Where a host's memory goes: one in-process sweep of the stand-in (bench_standin.py), measured at
three moments.

NOT real hosts: asyncssh's own SSH server answers every address of 127.0.0.0/8 as a host (see
bench_standin.py). The sweep runs in this process, on one event loop (as ``--procs 1``), with real
transports. Three moments, each as KB per host above the moment before the sweep started:

- in flight: every host connected and sleeping its window (the first progress tick with all of them
  sampling; the window must be longer than the handshake queue, e.g. 30 s for 1,000 hosts);
- results: the sweep over, its connections closed, every host's result kept for the report;
- report: the JSON document rendered (``-o json``), the peak while it was built.

By default under tracemalloc, with the lines of code that allocated most of it: Python's allocations
only (not the interpreter's, OpenSSL's or the heap's slack), so below RSS. ``--rss``: the process's
resident memory instead (no tracemalloc; the last figure is the peak of the whole run).

    python benchmarks/bench_memory.py --hosts 1000 --window 30
    python benchmarks/bench_memory.py --hosts 1500 --window 40 --rss
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_standin import make_keys  # noqa: E402  (the stand-in's keys, as it makes them)

FIRST = ipaddress.IPv4Address("127.1.0.1")


def top(now: tracemalloc.Snapshot, before: tracemalloc.Snapshot, hosts: int, lines: int) -> str:
    rows = []
    for stat in now.compare_to(before, "lineno")[:lines]:
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[0]
        where = frame.filename.replace(str(HERE.parent) + "/", "").split("site-packages/")[-1]
        rows.append(f"    {stat.size_diff / hosts:8.0f} B/host  {where}:{frame.lineno}")
    return "\n".join(rows)


def status_kib(field: str) -> int:
    """A line of /proc/self/status (VmRSS, VmHWM), in KiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def headline(report: Any, args: argparse.Namespace) -> str:
    measured = sum(h.status in ("ok", "warning", "critical") for h in report.hosts)
    return f"\nSTAND-IN, {args.hosts} hosts, window {args.window:g}s: {measured}/{args.hosts} measured"


def rss(report_json: Any, args: argparse.Namespace, targets: list[Any], options: Any) -> None:
    """The three moments by resident memory (VmRSS; VmHWM for the peak of the whole run)."""
    from fleetrst.sweep import Progress, run_sweep

    base = status_kib("VmRSS")
    in_flight: list[int] = []

    def on_progress(p: Progress) -> None:
        if not in_flight and p.sampling == args.hosts:
            in_flight.append(status_kib("VmRSS"))

    report = run_sweep(targets, options, on_progress=on_progress, on_note=lambda _: None)
    kept = status_kib("VmRSS")
    report_json(report)
    peak = status_kib("VmHWM")
    print(headline(report, args))
    print("resident memory (RSS), KB per host above the start:")
    if in_flight:
        print(f"  in flight (all {args.hosts} sampling): {(in_flight[0] - base) / args.hosts:6.1f}")
    else:
        print("  in flight: the hosts were never all in flight at once (a longer --window)")
    print(f"  results, kept for the report:     {(kept - base) / args.hosts:6.1f}")
    print(f"  peak of the run (-o json rendered): {(peak - base) / args.hosts:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--servers", type=int, default=2, help="stand-in server processes (default 2)")
    parser.add_argument("--lines", type=int, default=12, help="allocation sites shown per moment")
    parser.add_argument("--rss", action="store_true", help="resident memory, not tracemalloc's count")
    args = parser.parse_args()

    from fleetrst.model import ConnectionSettings, Target
    from fleetrst.render.schema import render_json
    from fleetrst.sweep import Progress, SweepOptions, run_sweep

    work = Path(tempfile.mkdtemp(prefix="fleetrst-memory-"))
    port, known = make_keys(work)
    settings = {
        "port": port,
        "user": "bench",
        "private_keys": (str(work / "id_ed25519"),),
        "known_hosts": (str(known),),
    }
    targets = [
        Target(f"s{i:05d}", ("standin",), ConnectionSettings(address=str(FIRST + i), **settings))  # type: ignore[arg-type]
        for i in range(args.hosts)
    ]
    serve = [sys.executable, str(HERE / "bench_standin.py"), "--serve", str(port)]
    servers = [
        subprocess.Popen([*serve, str(work / "host_key"), str(work / "id_ed25519.pub")])
        for _ in range(args.servers)
    ]
    try:
        time.sleep(2.0)
        options = SweepOptions(window_s=args.window, timeout_s=60.0)
        run_sweep(targets[:2], options, on_note=lambda _: None)  # imports and caches, outside the count
        gc.collect()
        if args.rss:
            rss(report_json=render_json, args=args, targets=targets, options=options)
            return 0
        tracemalloc.start()
        start = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        in_flight: list[tuple[float, tracemalloc.Snapshot]] = []

        def on_progress(p: Progress) -> None:
            if not in_flight and p.sampling == args.hosts:
                in_flight.append((tracemalloc.get_traced_memory()[0], tracemalloc.take_snapshot()))

        report = run_sweep(targets, options, on_progress=on_progress, on_note=lambda _: None)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
        results = tracemalloc.take_snapshot()
        tracemalloc.reset_peak()
        text = render_json(report)
        rendered = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        kb = 1024 * args.hosts
        print(headline(report, args))
        print("tracemalloc, KB per host above the start (Python's allocations only, not RSS):")
        if in_flight:
            print(f"  in flight (all {args.hosts} sampling): {(in_flight[0][0] - base) / kb:6.1f}")
            print(top(in_flight[0][1], start, args.hosts, args.lines))
        else:
            print("  in flight: the hosts were never all in flight at once (a longer --window)")
        print(f"  results, kept for the report:     {(kept - base) / kb:6.1f}")
        print(top(results, start, args.hosts, args.lines))
        print(f"  peak while rendering -o json:     {(rendered - base) / kb:6.1f}")
        print(f"  JSON: {len(text) / args.hosts / 1024:.1f} KB a host as text")
        batch = pickle.dumps(report.hosts[:100])
        print(f"  a result pickled in a batch of 100 (--procs, Dask): {len(batch) / 100 / 1024:.1f} KB")
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
