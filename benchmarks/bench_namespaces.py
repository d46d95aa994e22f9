#!/usr/bin/env python3
"""What ``--containers`` costs on a host with many processes and many namespaces (needs root).

    sudo python3 benchmarks/bench_namespaces.py [--namespaces 200] [--processes 3000] [--runs 5]

A test machine (``fleetrst.testing.containers.Machine``: its own PID and mount namespace, in a network
namespace of its own) holds ``--namespaces`` ``ip netns`` namespaces with one sleeping process each
and ``--processes`` more sleeping processes. The probe runs inside it as root, window 1 s, with and
without ``--containers``; printed: the probe's wall time beyond its window (median of ``--runs``), its
output size, the programs it ran, and the client's CPU to parse and judge it (per namespace).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleetrst.measure.namespaces import namespace_judge
from fleetrst.measure.probe import parse_probe_output, probe_command
from fleetrst.testing import _system as system
from fleetrst.testing.containers import Machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--processes", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    netns = f"frstnsbench-{os.getpid()}"
    system.run_ip_batch([f"netns add {netns}"])
    machine = Machine(["sleep", "100000"], netns=netns).start()
    try:
        setup = (
            f"i=0; while [ $i -lt {args.namespaces} ]; do ip netns add b$i; "
            f"ip netns exec b$i sleep 100000 </dev/null >/dev/null 2>&1 & i=$((i+1)); done; "
            f"i=0; while [ $i -lt {args.processes} ]; do sleep 100000 </dev/null >/dev/null 2>&1 & "
            "i=$((i+1)); done; sleep 2"
        )
        machine.run(["sh", "-c", setup], timeout=600)
        procs = int(machine.run(["sh", "-c", "ls -d /proc/[0-9]* | wc -l"]).strip())
        for containers in (False, True):
            command = probe_command(1, containers=containers)
            walls, sizes, cpus, text = [], [], [], ""
            for _ in range(args.runs):
                t0 = time.monotonic()
                text = subprocess.run(
                    machine.command(["sh", "-c", command]), capture_output=True, text=True, check=True
                ).stdout
                walls.append(time.monotonic() - t0 - 1.0)
                sizes.append(len(text.encode()))
                c0 = time.process_time()
                snapshots = parse_probe_output(text)
                results, _ = namespace_judge({}, "bench", {}, {}).results(text, snapshots[-1].boot_id)
                cpus.append(time.process_time() - c0)
            n = len(results or ())
            print(
                f"containers={'on ' if containers else 'off'} processes={procs} namespaces={n}: "
                f"probe {statistics.median(walls) * 1000:.0f} ms beyond its 1 s window, "
                f"output {statistics.median(sizes) / 1024:.0f} KiB, client parse+judge "
                f"{statistics.median(cpus) * 1000:.1f} ms"
                + (f" ({statistics.median(cpus) / n * 1e6:.0f} µs a namespace)" if n else "")
            )
    finally:
        machine.close()
        system.run_ip_batch([f"netns del {netns}"], force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
