"""``python -m fleetrst.testing``: bring a real test fleet up (for demos and benchmarks), or clean up.

    python -m fleetrst.testing up --hosts 5 [--dir DIR] [--group web=h001,h002] [--for SECONDS]
                                  [--storm HOST[:RATE]] [--abort HOST[:PORT]] [--flood HOST[:PORT]]
    python -m fleetrst.testing cleanup      # remove what crashed fleets left behind
    python -m fleetrst.testing check        # can a fleet run here?

``up`` prints the inventory path (alone, on the first line of stdout), then stays up until Ctrl-C,
SIGTERM or ``--for`` seconds, and tears everything down. Details go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from types import FrameType

from ._system import FleetError, cleanup_stale
from .fleet import TestFleet
from .load import MAX_DURATION_S
from .support import fleet_support_problems


def _host_and_number(text: str, default: float) -> tuple[str, float]:
    host, _, number = text.partition(":")
    try:
        return host, float(number) if number else default
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:NUMBER, not {text!r}") from None


def _group(text: str) -> tuple[str, list[str]]:
    name, sep, hosts = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST,HOST..., not {text!r}")
    return name, [h for h in hosts.split(",") if h]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleetrst.testing", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring a fleet up and keep it up until Ctrl-C, SIGTERM or --for")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    up.add_argument("--dir", help="where to write the inventory, keys and known_hosts (default: a temp dir)")
    up.add_argument(
        "--group",
        action="append",
        type=_group,
        default=[],
        metavar="NAME=HOST,HOST",
        help="an extra inventory group (repeatable)",
    )
    up.add_argument(
        "--for",
        dest="seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="tear down after this many seconds (default: wait for Ctrl-C / SIGTERM)",
    )
    up.add_argument(
        "--storm",
        action="append",
        default=[],
        metavar="HOST[:RATE]",
        help="run a closed-port storm in HOST (RATE connects/s, default 100)",
    )
    up.add_argument(
        "--abort",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="run an aborting server (SO_LINGER 0) and its client in HOST (port 9400)",
    )
    up.add_argument(
        "--flood",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="run a never-accepting listener, flooded, in HOST (port 9401)",
    )
    sub.add_parser("cleanup", help="remove the leftovers of fleets whose creator is dead")
    sub.add_parser("check", help="say whether a fleet can run here")
    return parser


def _up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signalled: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = time.monotonic()
    with TestFleet(args.hosts, dict(args.group), dir=args.dir) as fleet:
        print(fleet.inventory_path, flush=True)
        print(
            f"fleet {fleet.id}: {len(fleet.hosts)} hosts up in {time.monotonic() - started:.2f}s "
            f"({fleet.subnet}, bridge {fleet.bridge}, {fleet.hosts[0].name} = {fleet.hosts[0].address})\n"
            f"  inventory    {fleet.inventory_path}\n  known_hosts  {fleet.known_hosts_path}\n"
            f"  client key   {fleet.client_key_path}\n  user         {fleet.user}\n"
            f"  try: ssh -F /dev/null -i {fleet.client_key_path} -o UserKnownHostsFile="
            f"{fleet.known_hosts_path} {fleet.user}@{fleet.hosts[0].address} cat /proc/net/snmp",
            file=sys.stderr,
            flush=True,
        )
        duration = min(args.seconds or MAX_DURATION_S, MAX_DURATION_S)
        for text in args.storm:
            host, rate = _host_and_number(text, 100)
            h = fleet.closed_port_storm(host, rate=rate, duration=duration)
            print(
                f"  closed-port storm in {host}: {rate:g}/s to 127.0.0.1:{h.port} (pid {h.pid})",
                file=sys.stderr,
            )
        for text in args.abort:
            host, port = _host_and_number(text, 9400)
            h = fleet.aborting_server(host, port=int(port), duration=duration)
            print(f"  aborting server in {host}: 127.0.0.1:{h.port} (pid {h.pid})", file=sys.stderr)
        for text in args.flood:
            host, port = _host_and_number(text, 9401)
            h = fleet.listen_queue_flood(host, port=int(port), duration=duration)
            print(f"  flooded listener in {host}: 127.0.0.1:{h.port} (pid {h.pid})", file=sys.stderr)
        how = f"for {args.seconds:g}s" if args.seconds is not None else "until Ctrl-C or SIGTERM"
        print(f"  staying up {how}", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: tear down
            stop.wait(args.seconds)
        down = time.monotonic()
    print(f"fleet {fleet.id}: down in {time.monotonic() - down:.2f}s", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            problems = fleet_support_problems()
            for problem in problems:
                print(problem)
            if not problems:
                print("a test fleet can run here")
            return 1 if problems else 0
        if args.command == "cleanup":
            removed = cleanup_stale()
            print(f"removed {len(removed)} stale fleet(s){': ' + ', '.join(removed) if removed else ''}")
            return 0
        return _up(args)
    except (FleetError, ValueError, KeyError) as exc:
        print(f"fleetrst.testing: {exc}", file=sys.stderr)
        return 64


if __name__ == "__main__":
    sys.exit(main())
