"""The bare asyncssh floor: per host connect, one exec of the two reads with the sleep between, close.

Nothing is parsed, judged or rendered. This is the least any asyncssh-based tool can cost, and what
fleetrst is measured against. known_hosts and the client key are loaded once, as fleetrst does, and at
most ``--handshakes`` handshakes run at once (100, fleetrst's default), each with a 10 s connect
timeout of its own: without a cap, 1,000 simultaneous handshakes on this machine all miss a 5 s one.

    python benchmarks/floor_asyncssh.py --hosts-file F --user U --key K --known-hosts KH --window 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncssh


async def one(
    address: str, options: asyncssh.SSHClientConnectionOptions, command: str, handshakes: asyncio.Semaphore
) -> bool:
    try:
        async with handshakes:
            conn = await asyncssh.connect(address, options=options)
        async with conn:
            result = await conn.run(command, check=False)
            return bool(result.exit_status == 0 and result.stdout)
    except (OSError, asyncssh.Error):
        return False


def client_options(user: str, key: str, known_hosts: str, **more: Any) -> asyncssh.SSHClientConnectionOptions:
    """A floor's connection options: known_hosts and the key loaded once, no GSSAPI, no ~/.ssh/config,
    a 10 s connect timeout of each handshake's own (also for ``floor_watch.py``)."""
    return asyncssh.SSHClientConnectionOptions(
        username=user,
        client_keys=asyncssh.load_keypairs([key]),
        known_hosts=asyncssh.read_known_hosts(known_hosts),
        config=None,
        gss_auth=False,
        gss_kex=False,
        connect_timeout=10,
        **more,
    )


def fleet_parser(description: str | None) -> argparse.ArgumentParser:
    """A floor's command line: the hosts and how to log in to them (also for ``floor_watch.py``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hosts-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--known-hosts", required=True)
    return parser


async def main() -> int:
    parser = fleet_parser(__doc__)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--handshakes", type=int, default=100, help="at most this many at once (100)")
    parser.add_argument("--port", type=int, default=22)
    args = parser.parse_args()
    addresses = Path(args.hosts_file).read_text().split()
    reads = "cat /proc/net/snmp /proc/net/netstat /proc/uptime /proc/sys/kernel/random/boot_id"
    command = f"{reads}; sleep {args.window:g}; {reads}"
    options = client_options(args.user, args.key, args.known_hosts, port=args.port)
    handshakes = asyncio.Semaphore(args.handshakes)
    results = await asyncio.gather(*(one(a, options, command, handshakes) for a in addresses))
    ok = sum(results)
    print(f"floor: {ok}/{len(addresses)} hosts answered")
    return 0 if ok == len(addresses) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
