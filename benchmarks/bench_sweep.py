"""Sweep benchmark: fleetrst against the bare asyncssh floor and the peers, in one run, on a real fleet.

Builds an N-host test fleet (network namespaces, one real sshd each; see fleetrst.testing), then runs
each tool as its own process doing the same job (connect, read the TCP counters, sleep the window on
the host, read again) and reports, per tool, the wall time beyond the window, the client CPU seconds
(user + system of the tool and every process it waited for, from wait4) and per host, and the peak
memory of the tool's whole process tree (the sum of its processes' RSS, sampled every 20 ms) and per
host (above the same tool sweeping one host: what each host in flight adds). A tool whose hosts did
not all answer is marked, so a fast failure is never mistaken for speed. A first sweep is not
counted (the fleet's neighbour entries are made there), and with ``--repeat`` the tools take turns,
one run each a round, so that what drifts on the machine falls on all of them alike.

    python benchmarks/bench_sweep.py --hosts 200 --window 5            # as root
    python benchmarks/bench_sweep.py --hosts 1000 --tools floor,fleetrst,fleetrst-procs1,fleetrst-procs2
    python benchmarks/bench_sweep.py --hosts 50 --tools floor,fleetrst --repeat 3

Tools: floor (bare asyncssh, benchmarks/floor_asyncssh.py, at most 100 handshakes at once, as
fleetrst), fleetrst (the CLI as users run it: no -f, history on, --investigate auto; from 500 hosts on
it uses every core), fleetrst-procs1 and fleetrst-procs2 (one event loop, two worker processes),
fleetrst-nohistory and fleetrst-noinvestigate (what recording and investigating cost; with any
fleetrst variant in the list one host storms, so that one host is investigated), ansible (ansible
ad-hoc ``-m raw``, forks = hosts), pssh (parallel-ssh), clush (ClusterShell, OpenSSH underneath).
The peers come with ``pip install '.[test,bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
READS = "cat /proc/net/snmp /proc/net/netstat /proc/uptime /proc/sys/kernel/random/boot_id"


@dataclass
class Run:
    tool: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    rss_per_host_kb: float | None  # above the tool sweeping one host (one per process)
    ok: bool
    note: str
    walls_beyond_s: list[float]  # every run's, in the order run
    cpus_s: list[float]


def _tree_memory_kb(root: int) -> tuple[int, int]:
    """The RSS and the PSS of ``root`` and every process under it, summed, in KiB (from /proc).

    RSS counts the pages a forked worker shares with its parent once in each; PSS splits them."""
    rss = pss = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                rss += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{pid}/smaps_rollup") as f:
                pss += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return rss, pss


def compile_bytecode() -> None:
    """fleetrst's modules compiled to bytecode, as ``pip install`` leaves them (and the peers' and
    asyncssh's are): where PYTHONDONTWRITEBYTECODE is set, a checkout's modules would otherwise be
    compiled again by every run, about 0.1 s of CPU that the floor does not pay."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    package = str(HERE.parent / "fleetrst")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env, check=True)


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str, float, float]:
    """Run argv; return wall seconds, CPU seconds (it and its waited-for children), exit code, output,
    and the peaks of its process tree's summed RSS and PSS, in MB."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = [0, 0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                rss, pss = _tree_memory_kb(proc.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, text, peak[0] / 1024, peak[1] / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--tools", default="floor,fleetrst,pssh,clush,ansible")
    parser.add_argument("--handshakes", type=int, default=100, help="the floor's cap (fleetrst's default)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the median is reported")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    from fleetrst.scale import default_procs
    from fleetrst.testing import TestFleet

    compile_bytecode()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    with TestFleet(n_hosts=args.hosts) as fleet:
        work = Path(fleet.dir) / "bench"
        work.mkdir()
        hosts_file = work / "hosts"
        hosts_file.write_text("".join(f"{h.address}\n" for h in fleet.hosts))
        one_host_file = work / "one-host"
        one_host_file.write_text(f"{fleet.hosts[-1].address}\n")
        key, kh, user = str(fleet.client_key_path), str(fleet.known_hosts_path), fleet.user
        w = f"{args.window:g}"
        py = sys.executable
        ssh_opts = (
            f"-F /dev/null -i {key} -o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes -o BatchMode=yes"
        )
        env = dict(
            os.environ,
            ANSIBLE_HOST_KEY_CHECKING="True",
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
            ANSIBLE_HOME=str(work / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
        )
        # fleetrst's history goes to a fresh database in the bench directory, not the user's own.
        env["XDG_STATE_HOME"] = str(work / "state")
        # as users run it: no -f (every host in flight), the default handshake cap and processes
        sweep = [py, "-m", "fleetrst.cli", "sweep", "-i", str(fleet.inventory_path)]
        sweep += ["--window", w, "--timeout", "60", "-o", "json"]
        one_host = ["-l", fleet.hosts[-1].name]
        two_hosts = ["-l", f"{fleet.hosts[-2].name},{fleet.hosts[-1].name}"]  # one per worker process

        def fleetrst_ok(rc: int, out: str) -> bool:
            return _fleetrst_ok(out, args.hosts)

        def floor_argv(hosts: Path) -> list[str]:
            return [
                *(py, str(HERE / "floor_asyncssh.py"), "--hosts-file", str(hosts), "--user", user),
                *("--key", key, "--known-hosts", kh, "--window", w, "--handshakes", str(args.handshakes)),
            ]

        # each tool: its command line, the check of its output, and its command line for one host
        commands: dict[str, tuple[list[str], Callable[[int, str], bool], list[str] | None]] = {
            "floor": (floor_argv(hosts_file), lambda rc, _: rc == 0, floor_argv(one_host_file)),
            # its one-host run has as many processes as its full run (else RSS/host counts a process)
            "fleetrst": (sweep, fleetrst_ok, [*sweep, "--procs", str(default_procs(args.hosts)), *two_hosts]),
            "fleetrst-procs1": ([*sweep, "--procs", "1"], fleetrst_ok, [*sweep, "--procs", "1", *one_host]),
            "fleetrst-procs2": ([*sweep, "--procs", "2"], fleetrst_ok, [*sweep, "--procs", "2", *two_hosts]),
            "fleetrst-nohistory": ([*sweep, "--no-history"], fleetrst_ok, None),
            "fleetrst-noinvestigate": ([*sweep, "--investigate", "never"], fleetrst_ok, None),
            "pssh": (
                [
                    py,
                    str(HERE / "peer_pssh.py"),
                    "--hosts-file",
                    str(hosts_file),
                    "--user",
                    user,
                    "--key",
                    key,
                    "--window",
                    w,
                ],
                lambda rc, _: rc == 0,
                None,
            ),
            "clush": (
                [
                    shutil.which("clush") or "clush",
                    "-b",
                    "-f",
                    str(args.hosts),
                    "-t",
                    "60",
                    "-u",
                    "120",
                    "-l",
                    user,
                    "-o",
                    ssh_opts,
                    "-w",
                    ",".join(h.address for h in fleet.hosts),
                    f"{READS}; sleep {w}; {READS}",
                ],
                lambda rc, _: rc == 0,
                None,
            ),
            "ansible": (
                [
                    shutil.which("ansible") or "ansible",
                    "all",
                    "-i",
                    str(fleet.inventory_path),
                    "-m",
                    "raw",
                    "-a",
                    f"{READS}; sleep {w}; {READS}",
                    "-f",
                    str(args.hosts),
                    "-o",
                ],
                lambda rc, _: rc == 0,
                None,
            ),
        }
        if any(t.startswith("fleetrst") for t in tools):
            # One storming host, so that --investigate auto has one host to investigate: the rest
            # must not be slowed by it (fleetrst vs fleetrst-noinvestigate).
            fleet.closed_port_storm(fleet.hosts[0], rate=100, duration=3600)
        for tool in tools:
            if tool not in commands:
                print(f"unknown tool {tool!r}; known: {', '.join(commands)}", file=sys.stderr)
                return 64
        # A first sweep, not counted: the fleet's neighbour entries and the hosts' first logins are
        # made here, not in whichever tool comes first.
        timed(commands[tools[0]][0], env)
        # Round by round, every tool once a round: what drifts on the machine over the run (its load,
        # its memory) falls on every tool alike, not on the ones that ran last. Each round starts
        # one tool further on, so that no tool always runs straight after the same other one.
        runs: dict[str, list[tuple[float, float, float, float, bool]]] = {tool: [] for tool in tools}
        for round_number in range(args.repeat):
            turn = round_number % len(tools)
            for tool in tools[turn:] + tools[:turn]:
                argv, check, _alone = commands[tool]
                wall, cpu, rc, out, peak_rss, peak_pss = timed(argv, env)
                runs[tool].append((wall, cpu, peak_rss, peak_pss, check(rc, out)))
                if not runs[tool][-1][4]:
                    print(
                        f"--- {tool} did not reach every host (exit {rc}); last lines:\n"
                        + "\n".join(out.splitlines()[-5:]),
                        file=sys.stderr,
                    )
        results: list[Run] = []
        for tool in tools:
            walls, cpus, rss, pss, oks = (list(column) for column in zip(*runs[tool], strict=True))
            alone = commands[tool][2]
            per_host = None
            if alone is not None and args.hosts > 2:
                base = timed(alone, env)[4]
                in_base = 2 if alone[-1] == two_hosts[-1] else 1  # one a worker process
                per_host = (statistics.median(rss) - base) * 1024 / (args.hosts - in_base)
            results.append(
                Run(
                    tool,
                    statistics.median(walls) - args.window,
                    statistics.median(cpus),
                    statistics.median(rss),
                    statistics.median(pss),
                    per_host,
                    all(oks),
                    f"{args.repeat} run(s)",
                    [round(w - args.window, 2) for w in walls],
                    [round(c, 2) for c in cpus],
                )
            )

    floor = next((r for r in results if r.tool == "floor"), None)
    print(
        f"\n{args.hosts} hosts, window {args.window:g}s, {os.cpu_count()} cores; "
        f"median of {args.repeat} run(s)\n"
    )
    print(
        f"{'tool':<24} {'beyond window (s)':>18} {'client CPU (s)':>15} {'CPU/host (ms)':>14} "
        f"{'peak RSS (MB)':>14} {'peak PSS (MB)':>14} {'RSS/host (KB)':>14} {'vs floor':>16}  all hosts"
    )
    for r in results:
        ratio = (
            f"{r.wall_s / floor.wall_s:.2f}x / {r.cpu_s / floor.cpu_s:.2f}x"
            if floor and floor.wall_s > 0
            else ""
        )
        per_host = f"{r.rss_per_host_kb:.1f}" if r.rss_per_host_kb is not None else "-"
        print(
            f"{r.tool:<24} {r.wall_s:>18.2f} {r.cpu_s:>15.2f} {r.cpu_s * 1000 / args.hosts:>14.2f} "
            f"{r.peak_rss_mb:>14.1f} {r.peak_pss_mb:>14.1f} {per_host:>14} {ratio:>16}  "
            + ("yes" if r.ok else "NO")
        )
    if args.repeat > 1:
        print("\nevery run (beyond the window / client CPU, s), in the order run:")
        for r in results:
            pairs = ", ".join(f"{w:.1f}/{c:.2f}" for w, c in zip(r.walls_beyond_s, r.cpus_s, strict=True))
            print(f"{r.tool:<24} {pairs}")
    if floor and args.repeat > 1:
        # Each run against the floor's run of the same round (they ran a minute apart at most): what
        # the machine's load did to that round falls on both sides of the ratio.
        print("\nagainst the floor's run of the same round (wall beyond the window / client CPU):")
        for r in results:
            if r is floor:
                continue
            walls = [w / f for w, f in zip(r.walls_beyond_s, floor.walls_beyond_s, strict=True)]
            cpus = [c / f for c, f in zip(r.cpus_s, floor.cpus_s, strict=True)]
            print(
                f"{r.tool:<24} median {statistics.median(walls):.2f}x / {statistics.median(cpus):.2f}x; "
                f"CPU {min(cpus):.2f}x to {max(cpus):.2f}x, at or under the floor's in "
                f"{sum(c <= 1.0 for c in cpus)} of {len(cpus)} rounds"
            )
            r.note += f"; paired CPU ratios {[round(c, 3) for c in cpus]}"
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


def _fleetrst_ok(output: str, hosts: int) -> bool:
    try:
        doc = json.loads(output[output.index("{") :])
    except ValueError:
        return False
    return bool(doc["summary"]["ok"] + doc["summary"]["warning"] + doc["summary"]["critical"] == hosts)


if __name__ == "__main__":
    sys.exit(main())
