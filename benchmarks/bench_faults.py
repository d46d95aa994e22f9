"""Fault benchmark: how long the fault sweep takes and how much memory it needs, next to a fleet of as
many healthy hosts. The tight figures the test suite only guards loosely (it checks for hangs).

Builds the fault matrix of tests/sweep/faultmatrix.py (one real host per fault: refused, blackholed,
re-keyed, hanging login, a command that never returns, garbage, a 400 MB flood, a slow link, an sshd
killed in the window, ...), sweeps it, then sweeps a fleet of as many healthy hosts (one storming),
and reports per sweep the wall time, the report's own duration and the peak RSS, with the bound the
design promises: the whole sweep ends within window + timeout plus a little, whatever the hosts do.

    python benchmarks/bench_faults.py                    # as root; --repeat 3 for a median
    python benchmarks/bench_faults.py --margin 1.5       # exit 1 when a sweep misses the bound

Window 2 s, timeout 3 s (the test suite's): bound = 5 s + margin for the report's duration, and one
more second for the process's start-up in the wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--margin", type=float, default=1.5, help="seconds over window + timeout (1.5)")
    args = parser.parse_args()

    from fleetrst.testing import TestFleet, require_fleet_support
    from tests.sweep.faultmatrix import N_HOSTS, TIMEOUT, WINDOW, make_faults, storms, sweep, sweep_the_faults

    require_fleet_support()
    bound = WINDOW + TIMEOUT + args.margin
    rows: list[tuple[str, list[float], list[float], list[int], str]] = []
    with TestFleet(n_hosts=N_HOSTS) as fleet, tempfile.TemporaryDirectory() as tmp:
        inventory = make_faults(fleet, Path(tmp))
        walls, durations, rss, notes = [], [], [], []
        for _ in range(args.repeat):
            run, killed_after = sweep_the_faults(fleet, inventory)
            walls.append(run.wall_s)
            durations.append(run.doc["duration_s"])
            rss.append(run.peak_rss_kib)
            notes.append("h012 killed" if killed_after is not None else "h012 NOT killed")
        rows.append((f"{N_HOSTS} hosts, 15 faulty", walls, durations, rss, ", ".join(sorted(set(notes)))))
    with TestFleet(n_hosts=N_HOSTS) as fleet:
        walls, durations, rss = [], [], []
        for _ in range(args.repeat):
            with storms(fleet, ("h002",)):
                run = sweep(fleet.inventory_path)
            walls.append(run.wall_s)
            durations.append(run.doc["duration_s"])
            rss.append(run.peak_rss_kib)
            ok = run.doc["summary"].get("ok", 0)
        rows.append((f"{N_HOSTS} hosts, healthy", walls, durations, rss, f"{ok} ok"))

    print(f"window {WINDOW:g}s + timeout {TIMEOUT:g}s + margin {args.margin:g}s = bound {bound:g}s")
    print(f"{'sweep':<24} {'wall s':>8} {'duration s':>11} {'peak RSS MiB':>13}  note")
    missed = False
    for name, walls, durations, rss, note in rows:
        wall, duration = statistics.median(walls), statistics.median(durations)
        over = duration >= bound or wall >= bound + 1.0
        missed |= over
        flag = "  OVER THE BOUND" if over else ""
        print(f"{name:<24} {wall:8.2f} {duration:11.2f} {max(rss) / 1024:13.0f}  {note}{flag}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
