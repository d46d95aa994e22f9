"""Watch benchmark: what ``fleetrst watch`` costs the controller per watched host, on a real fleet.

Builds an N-host test fleet (network namespaces, one real sshd each; see fleetrst.testing) and runs the
CLI as users run it (``fleetrst watch -i INV --every E --listen ... -o jsonl --no-history``), then:

- connects: the wall time until every host is connected (read from /proc), and the CPU that took
  per host (the interpreter's start, handshakes: paid once);
- steady state: over ``--spans`` spans of ``--rounds`` rounds after that, the watch process's CPU
  (user + system, from /proc/PID/stat) per host per round, with the samples received counted by the
  watch itself (``fleetrst_watch_samples_total``, scraped between the spans, outside them); the
  median span and the least disturbed one;
- scrapes: the watch's CPU per host for each ``/metrics`` scrape (a host's rates are taken when first
  read, by a scrape or the live table, not every round: what a scrape costs is reported on its own, so
  that a user can add it at the rate Prometheus scrapes);
- memory: the watch's RSS per watched host, as the difference between this watch and a watch of one
  host of the same fleet, divided by N - 1 (what each extra host costs, interpreter and libraries
  apart), read before anything scrapes /metrics (a scrape of N hosts builds its text in memory: the
  RSS after two scrapes is reported too);
- the end: the time from SIGINT to the watch's exit, and the processes the fleet's login user still
  has in any host's namespace a moment later (the remote loops: there must be none);
- with ``--floor``: the bare asyncssh floor (``floor_watch.py``: the same remote loop on the same
  hosts, received and dropped) runs side by side with the watch, over the same spans, and its CPU per
  host per round is reported next to the watch's, with their ratio span by span.

    python benchmarks/bench_watch.py --hosts 200 --every 10 --rounds 6      # as root
    python benchmarks/bench_watch.py --hosts 1000 --every 10 --rounds 6 --floor --json out.json

The issue's targets: at most 0.3 ms of client CPU per host per round, at most 64 KiB RSS per host.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_kib(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def ssh_connections(pid: int) -> int:
    """The process's established TCP connections to port 22 (read from /proc: no scrape, which would
    itself grow the process's memory while the benchmark measures it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[2].endswith(":0016") and fields[9] in inodes:
            count += 1
    return count


def scrape(port: int) -> dict[str, float]:
    """The unlabelled and summed samples of /metrics that the benchmark reads."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    out: dict[str, float] = {"up": 0.0, "samples": 0.0}
    for line in text.splitlines():
        if line.startswith("fleetrst_host_up{"):
            out["up"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("fleetrst_watch_samples_total "):
            out["samples"] = float(line.rsplit(" ", 1)[1])
    return out


def user_processes(fleet: Any) -> list[str]:
    """Processes of the fleet's login user whose network namespace is one of the fleet's hosts'."""
    uid = pwd.getpwnam(fleet.user).pw_uid
    inodes = {h.netns_inode for h in fleet.hosts}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid or os.stat(entry / "ns" / "net").st_ino not in inodes:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append(f"{entry.name} {command}")
        except OSError:
            continue
    return found


class Watcher:
    def __init__(self, inventory: Path, every: float, pattern: str, out: Path) -> None:
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            "fleetrst.cli",
            "watch",
            pattern,
            "-i",
            str(inventory),
            "--every",
            f"{every:g}s",
            "--listen",
            f"127.0.0.1:{self.port}",
            "-o",
            "jsonl",
            "--no-history",
        ]
        self.started = time.monotonic()
        self.out = out.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT)

    def wait_connected(self, hosts: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while ssh_connections(self.proc.pid) < hosts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the watch did not connect to every host (exit {self.proc.poll()})")
            time.sleep(0.2)

    def stop(self) -> tuple[float, int]:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self.out.close()
        return time.monotonic() - start, code


class Floor:
    """``floor_watch.py`` over the fleet: its CPU, and the frames it has received (asked by SIGUSR1)."""

    def __init__(self, fleet: Any, every: float, work: Path) -> None:
        hosts = work / "floor-hosts"
        hosts.write_text("\n".join(h.address for h in fleet.hosts) + "\n")
        self.count_file = work / "floor-count"
        argv = [
            *(sys.executable, str(Path(__file__).with_name("floor_watch.py"))),
            *("--hosts-file", str(hosts), "--user", fleet.user, "--key", str(fleet.client_key_path)),
            # A millisecond longer a round: its loops' sleeps are told from the watch's (the leftovers).
            *("--known-hosts", str(fleet.known_hosts_path), "--every", f"{every + 0.001:g}"),
            *("--count-file", str(self.count_file)),
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)

    def counts(self) -> tuple[int, int]:
        """(hosts connected, frames received), as the floor wrote them on SIGUSR1."""
        self.count_file.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                connected, frames = self.count_file.read_text().split()
                return int(connected), int(frames)
            except (OSError, ValueError):
                time.sleep(0.05)
        raise SystemExit("the floor did not say how many frames it has received")

    def wait_connected(self, hosts: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.count_file.exists():  # written once its SIGUSR1 handler is set
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the floor did not start (exit {self.proc.poll()})")
            time.sleep(0.1)
        while self.counts()[0] < hosts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the floor did not connect to every host (exit {self.proc.poll()})")
            time.sleep(0.5)

    def reading(self) -> tuple[float, int]:
        """(CPU seconds so far, frames so far)."""
        cpu = cpu_seconds(self.proc.pid)
        return cpu, self.counts()[1]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=6, help="rounds in each measured span")
    parser.add_argument(
        "--spans",
        type=int,
        default=3,
        help="measured spans, one after the other (the median and the least disturbed are reported: "
        "on a shared machine other processes inflate a process's CPU time)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run the bare asyncssh floor (floor_watch.py) side by side, over the same spans",
    )
    args = parser.parse_args()

    from fleetrst.testing import TestFleet

    figures: dict[str, Any] = {"hosts": args.hosts, "every_s": args.every, "rounds": args.rounds}
    with TestFleet(n_hosts=args.hosts) as fleet:
        work = Path(fleet.dir) / "bench-watch"
        work.mkdir()

        # One host: the interpreter, the libraries and the watch's own fixed cost.
        one = Watcher(fleet.inventory_path, args.every, fleet.hosts[0].name, work / "one.jsonl")
        one.wait_connected(1, 60)
        time.sleep(2 * args.every)
        rss_one = rss_kib(one.proc.pid)
        one.stop()

        watch = Watcher(fleet.inventory_path, args.every, "all", work / "all.jsonl")
        cpu_start = cpu_seconds(watch.proc.pid)
        watch.wait_connected(args.hosts, 120 + args.hosts * 0.1)
        connect_wall = time.monotonic() - watch.started
        connect_cpu = cpu_seconds(watch.proc.pid) - cpu_start
        time.sleep(2 * args.every)  # two more rounds: every host past its first samples
        rss_held = rss_kib(watch.proc.pid)  # before any scrape
        floor = Floor(fleet, args.every, work) if args.floor else None
        floor_spans: list[tuple[float, float]] = []  # (cpu seconds, frames)
        if floor is not None:
            floor.wait_connected(args.hosts, 120 + args.hosts * 0.1)
            time.sleep(2 * args.every)

        spans: list[tuple[float, float, float]] = []  # (seconds, cpu seconds, samples)
        scrapes: list[float] = []  # cpu seconds of each scrape
        cpu_before = cpu_seconds(watch.proc.pid)
        before = scrape(watch.port)
        scrapes.append(cpu_seconds(watch.proc.pid) - cpu_before)
        assert before["up"] == args.hosts, before
        for _ in range(args.spans):
            floor_before = floor.reading() if floor is not None else (0.0, 0)
            cpu_before = cpu_seconds(watch.proc.pid)  # after the scrape: its CPU is not counted
            span_start = time.monotonic()
            time.sleep(args.rounds * args.every)
            cpu_after = cpu_seconds(watch.proc.pid)
            if floor is not None:
                floor_after = floor.reading()
                floor_spans.append((floor_after[0] - floor_before[0], floor_after[1] - floor_before[1]))
            span = time.monotonic() - span_start
            after = scrape(watch.port)
            scrapes.append(cpu_seconds(watch.proc.pid) - cpu_after)
            spans.append((span, cpu_after - cpu_before, after["samples"] - before["samples"]))
            before = after
        rss_scraped = rss_kib(watch.proc.pid)
        if floor is not None:
            floor.stop()
        stop_s, code = watch.stop()
        time.sleep(0.5)
        left = user_processes(fleet)

        per_sample = sorted(cpu / samples * 1000 for _, cpu, samples in spans if samples)
        figures.update(
            connect_wall_s=round(connect_wall, 2),
            connect_cpu_ms_per_host=round(connect_cpu / args.hosts * 1000, 2),
            measured_s=round(sum(span for span, _, _ in spans), 1),
            samples=int(sum(samples for _, _, samples in spans)),
            expected_samples=int(args.hosts * sum(span for span, _, _ in spans) / args.every),
            cpu_s=round(sum(cpu for _, cpu, _ in spans), 3),
            cpu_ms_per_host_round_spans=[round(x, 3) for x in per_sample],
            cpu_ms_per_host_round=round(statistics.median(per_sample), 3) if per_sample else None,
            cpu_ms_per_host_round_least=round(per_sample[0], 3) if per_sample else None,
            scrape_cpu_ms_per_host=round(statistics.median(scrapes) / args.hosts * 1000, 3),
            rss_one_host_kib=rss_one,
            rss_kib=rss_held,
            rss_kib_per_host=round((rss_held - rss_one) / max(1, args.hosts - 1), 1),
            rss_after_two_scrapes_kib=rss_scraped,
            stop_s=round(stop_s, 2),
            exit_code=code,
            processes_left=len(left),
        )
        if floor is not None:
            floor_per = [cpu / frames * 1000 if frames else None for cpu, frames in floor_spans]
            watch_per = [cpu / samples * 1000 if samples else None for _, cpu, samples in spans]
            ratios = sorted(w / f for w, f in zip(watch_per, floor_per, strict=True) if w and f)
            valid = sorted(x for x in floor_per if x)
            figures.update(
                floor_cpu_ms_per_host_round_spans=[round(x, 3) if x else None for x in floor_per],
                floor_cpu_ms_per_host_round=round(statistics.median(valid), 3) if valid else None,
                watch_over_floor_spans=[round(r, 2) for r in ratios],
                watch_over_floor=round(statistics.median(ratios), 2) if ratios else None,
            )
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if left:
        print("left on the hosts:\n  " + "\n  ".join(left[:10]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
