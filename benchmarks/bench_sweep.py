"""Sweep benchmark: fleetrst against the bare asyncssh floor and the peers, in one run, on a real fleet.

Builds an N-host test fleet (network namespaces, one real sshd each; see fleetrst.testing), then runs
each tool as its own process doing the same job (connect, read the TCP counters, sleep the window on
the host, read again) and reports, per tool, the wall time beyond the window and the client CPU
seconds (user + system of the tool and every process it waited for, from wait4). A tool whose hosts
did not all answer is marked, so a fast failure is never mistaken for speed.

    python benchmarks/bench_sweep.py --hosts 200 --window 5            # as root
    python benchmarks/bench_sweep.py --hosts 50 --tools floor,fleetrst --repeat 3

Tools: floor (bare asyncssh, benchmarks/floor_asyncssh.py), fleetrst (the CLI as users run it:
asyncssh, history on, --investigate auto), fleetrst-nohistory and fleetrst-noinvestigate (what
recording and investigating cost; with either of them in the list one host storms, so that one host
is investigated), ansible (ansible ad-hoc ``-m raw``, forks = hosts), pssh (parallel-ssh), clush
(ClusterShell, OpenSSH underneath). The peers come with ``pip install '.[test,bench]'``.
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
    ok: bool
    note: str


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run argv; return wall seconds, CPU seconds (it and its waited-for children), exit code, output."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--tools", default="floor,fleetrst,pssh,clush,ansible")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the median is reported")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    from fleetrst.testing import TestFleet

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    with TestFleet(n_hosts=args.hosts) as fleet:
        work = Path(fleet.dir) / "bench"
        work.mkdir()
        hosts_file = work / "hosts"
        hosts_file.write_text("".join(f"{h.address}\n" for h in fleet.hosts))
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
        sweep = [
            py,
            "-m",
            "fleetrst.cli",
            "sweep",
            "-i",
            str(fleet.inventory_path),
            "--window",
            w,
            "--timeout",
            "60",
            "-f",
            str(args.hosts),
            "-o",
            "json",
        ]

        def fleetrst_ok(rc: int, out: str) -> bool:
            return _fleetrst_ok(out, args.hosts)

        commands: dict[str, tuple[list[str], Callable[[int, str], bool]]] = {
            "floor": (
                [
                    py,
                    str(HERE / "floor_asyncssh.py"),
                    "--hosts-file",
                    str(hosts_file),
                    "--user",
                    user,
                    "--key",
                    key,
                    "--known-hosts",
                    kh,
                    "--window",
                    w,
                ],
                lambda rc, _: rc == 0,
            ),
            "fleetrst": (sweep, fleetrst_ok),  # as users run it: history on, --investigate auto
            "fleetrst-nohistory": ([*sweep, "--no-history"], fleetrst_ok),
            "fleetrst-noinvestigate": ([*sweep, "--investigate", "never"], fleetrst_ok),
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
            ),
        }
        if any(t.startswith("fleetrst-") for t in tools):
            # One storming host, so that --investigate auto has one host to investigate: the rest
            # must not be slowed by it (fleetrst vs fleetrst-noinvestigate).
            fleet.closed_port_storm(fleet.hosts[0], rate=100, duration=3600)
        results: list[Run] = []
        for tool in tools:
            if tool not in commands:
                print(f"unknown tool {tool!r}; known: {', '.join(commands)}", file=sys.stderr)
                return 64
            argv, check = commands[tool]
            walls, cpus, oks = [], [], []
            for _ in range(args.repeat):
                wall, cpu, rc, out = timed(argv, env)
                walls.append(wall)
                cpus.append(cpu)
                oks.append(check(rc, out))
                if not oks[-1]:
                    print(
                        f"--- {tool} did not reach every host (exit {rc}); last lines:\n"
                        + "\n".join(out.splitlines()[-5:]),
                        file=sys.stderr,
                    )
            results.append(
                Run(
                    tool,
                    statistics.median(walls) - args.window,
                    statistics.median(cpus),
                    all(oks),
                    f"{args.repeat} run(s)",
                )
            )

    floor = next((r for r in results if r.tool == "floor"), None)
    print(
        f"\n{args.hosts} hosts, window {args.window:g}s, {os.cpu_count()} cores; "
        f"median of {args.repeat} run(s)\n"
    )
    print(f"{'tool':<24} {'beyond window (s)':>18} {'client CPU (s)':>15} {'vs floor':>16}  all hosts")
    for r in results:
        ratio = (
            f"{r.wall_s / floor.wall_s:.2f}x / {r.cpu_s / floor.cpu_s:.2f}x"
            if floor and floor.wall_s > 0
            else ""
        )
        print(f"{r.tool:<24} {r.wall_s:>18.2f} {r.cpu_s:>15.2f} {ratio:>16}  {'yes' if r.ok else 'NO'}")
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
