"""A STAND-IN for a fleet too big for this machine: asyncssh's own SSH server playing N hosts.

NOT real hosts. One or more server processes listen on one port of 0.0.0.0 and answer every address
of 127.0.0.0/8 dialled (127.1.0.1, 127.1.0.2, ...): each address is a "host". A host answers fleetrst's
probe as ``tests/sweep/fake_host.py`` does (real /proc captures, counters advanced by the window it
was asked to sleep), after sleeping the window on the server's event loop. What it stands in for is
sshd and the kernel; what it measures is the client: fleetrst's wall time beyond the window, its CPU
and memory per host at a scale (10,000 hosts) whose real sshds would not fit beside everything else
on this machine. The server's own CPU shares the machine's cores with the client, as the real
fleet's sshds do.

Memory per host is the peak RSS of the tool's process tree above the same tool sweeping one host (one
per worker process, so that the base has as many processes as the sweep: ``fleetrst``'s default
starts one worker per core from 500 hosts on, and a worker's own ~45 MB is not a host's), divided by
the hosts: it is memory per host *in flight* only when every host is in flight at the peak, that is
when the window is longer than the handshake queue (say --window 60 for 3,000 hosts here); with a
short window, the first hosts are done before the last connect. ``benchmarks/bench_memory.py`` says
where it goes. PSS per host is the same with the tree's summed PSS (proportional set size: a page that
k processes share counts 1/k in each), which is what the machine spends: summed RSS counts what forked
workers share with the parent (the inventory, the targets) once per process.

    python benchmarks/bench_standin.py --hosts 10000 --window 5 --servers 2
    python benchmarks/bench_standin.py --hosts 2000 --tools fleetrst-procs1,fleetrst-procs2

Tools as in bench_sweep.py: floor (bare asyncssh, 100 handshakes at once), fleetrst (defaults),
fleetrst-procs1, fleetrst-procs2; all with --no-history --investigate never (nothing resets here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_sweep import compile_bytecode, timed  # noqa: E402

FIRST = ipaddress.IPv4Address("127.1.0.1")


def addresses(n: int) -> list[str]:
    return [str(FIRST + i) for i in range(n)]


# --- the stand-in server ------------------------------------------------------------------------------


def serve(port: int, host_key: str, client_pub: str) -> None:
    """One server process (SO_REUSEPORT: several share the port)."""
    import asyncssh

    from tests.sweep.fake_host import FakeHost

    host = FakeHost({"OutRsts": 1.0})
    floor_reads = "cat /proc/net/snmp"

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        try:
            if "@@fleetrst-probe" in command:
                output = host.probe_output(command)
                await asyncio.sleep(sum(float(s) for s in re.findall(r"echo '@@sleep ([0-9.]+)'", command)))
                process.stdout.write(output)
            elif command.startswith(floor_reads):  # the floor's "cat ...; sleep W; cat ..."
                window = float(command.split("sleep ")[1].split(";")[0])
                files = host.probe_output("echo '@@fleetrst-probe v1 sample 0 of 1'")
                process.stdout.write(files)
                await asyncio.sleep(window)
                process.stdout.write(files)
            process.exit(0)
        except (OSError, asyncssh.Error):
            process.close()

    async def main() -> None:
        await asyncssh.create_server(
            lambda: asyncssh.SSHServer(),
            "0.0.0.0",
            port,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.read_authorized_keys(client_pub),
            process_factory=handle,
            reuse_port=True,
            backlog=4096,
            encoding="utf-8",
        )
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the benchmark ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(work: Path) -> tuple[int, Path]:
    """The stand-in's host key, the client's key pair (``id_ed25519``) and a known_hosts for every
    127.* address on a free port, in ``work``: the port and the known_hosts path."""
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(work / "host_key"))
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(work / "id_ed25519"))
    (work / "id_ed25519").chmod(0o600)
    client_key.write_public_key(str(work / "id_ed25519.pub"))
    port = free_port()
    known = work / "known_hosts"
    known.write_text(f"[127.*]:{port} {host_key.export_public_key().decode().strip()}\n")
    return port, known


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--servers", type=int, default=2, help="stand-in server processes (default 2)")
    parser.add_argument("--tools", default="floor,fleetrst-procs1,fleetrst-procs2")
    parser.add_argument(
        "--serve", nargs=3, metavar=("PORT", "HOST_KEY", "CLIENT_PUB"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2])
        return 0

    import yaml

    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="fleetrst-standin-"))
    port, known = make_keys(work)
    hosts = addresses(args.hosts)
    (work / "hosts").write_text("".join(f"{a}\n" for a in hosts))
    (work / "one-host").write_text(f"{hosts[-1]}\n")
    inventory = {
        "all": {
            "children": {
                "standin": {
                    "hosts": {f"s{i:05d}": {"ansible_host": a} for i, a in enumerate(hosts)},
                    "vars": {
                        "ansible_port": port,
                        "ansible_user": "bench",
                        "ansible_ssh_private_key_file": str(work / "id_ed25519"),
                        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}",
                    },
                }
            }
        }
    }
    (work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(port),
                str(work / "host_key"),
                str(work / "id_ed25519.pub"),
            ]
        )
        for _ in range(args.servers)
    ]
    try:
        time.sleep(2.0)
        env = dict(os.environ, XDG_STATE_HOME=str(work / "state"))
        w = f"{args.window:g}"
        py = sys.executable
        sweep = [py, "-m", "fleetrst.cli", "sweep", "-i", str(work / "inventory.yml"), "-o", "json"]
        sweep += ["--window", w, "--timeout", "60", "--no-history", "--investigate", "never"]
        floor = [py, str(HERE / "floor_asyncssh.py"), "--user", "bench", "--key", str(work / "id_ed25519")]
        floor += ["--known-hosts", str(known), "--window", w, "--port", str(port)]
        from fleetrst.scale import default_procs

        default = default_procs(args.hosts)
        names = [f"s{i:05d}" for i in range(args.hosts)]
        commands = {
            "floor": (
                [*floor, "--hosts-file", str(work / "hosts")],
                [*floor, "--hosts-file", str(work / "one-host")],
                1,
            ),
            # The default: one process under 500 hosts, else one per core; its base the same.
            "fleetrst": (
                sweep,
                [*sweep, "--procs", str(default), "-l", ",".join(names[-default:])],
                default,
            ),
            "fleetrst-procs1": (
                [*sweep, "--procs", "1"],
                [*sweep, "--procs", "1", "-l", f"s{args.hosts - 1:05d}"],
                1,
            ),
            "fleetrst-procs2": (
                [*sweep, "--procs", "2"],
                [*sweep, "--procs", "2", "-l", f"s{args.hosts - 2:05d},s{args.hosts - 1:05d}"],
                2,
            ),
        }
        print(
            f"\nSTAND-IN (asyncssh's server playing {args.hosts} hosts on 127.0.0.0/8, {args.servers} server "
            f"processes; NOT real sshd), window {args.window:g}s, {os.cpu_count()} cores\n"
        )
        print(
            f"{'tool':<18} {'beyond window (s)':>18} {'client CPU (s)':>15} {'CPU/host (ms)':>14} "
            f"{'peak RSS (MB)':>14} {'base RSS (MB)':>14} {'RSS/host (KB)':>14} "
            f"{'PSS/host (KB)':>14}  measured"
        )
        for tool in [t.strip() for t in args.tools.split(",") if t.strip()]:
            argv, alone, in_base = commands[tool]
            wall, cpu, _, out, rss, pss = timed(argv, env)
            at = alone.index("--window") + 1
            # memory, not time: a short window
            _, _, _, _, base, base_pss = timed([*alone[:at], "1", *alone[at + 1 :]], env)
            measured = _measured(out, tool)
            per_host = (rss - base) * 1024 / (args.hosts - in_base)
            # Summed RSS counts a page the processes share (what a forked worker inherited from the
            # parent: the interpreter, the inventory) once per process; PSS divides it among them.
            pss_per_host = (pss - base_pss) * 1024 / (args.hosts - in_base)
            print(
                f"{tool:<18} {wall - args.window:>18.2f} {cpu:>15.2f} {cpu * 1000 / args.hosts:>14.2f} "
                f"{rss:>14.1f} {base:>14.1f} {per_host:>14.1f} {pss_per_host:>14.1f}  "
                f"{measured}/{args.hosts}",
                flush=True,
            )
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
            if server.poll() is None:
                server.kill()
    return 0


def _measured(out: str, tool: str) -> int:
    if tool == "floor":
        first = out.split("hosts answered")[0].rsplit("floor: ", 1)[-1]
        return int(first.split("/")[0]) if "/" in first else 0
    import json

    try:
        doc = json.loads(out[out.index("{") :])
    except ValueError:
        return 0
    summary = doc["summary"]
    return int(summary["ok"] + summary["warning"] + summary["critical"])


if __name__ == "__main__":
    sys.exit(main())
