"""The bare asyncssh floor of a watch: one connection per host, the same remote loop as ``fleetrst watch``
runs (its frames), the output received and dropped; nothing is split, parsed, judged or served.

This is the least any asyncssh-based watch can cost a round, and what ``fleetrst watch`` is measured
against (``bench_watch.py --floor``). The same options as fleetrst's connections: known_hosts and the
client key loaded once, AES-GCM first (fleetrst's cipher order; asyncssh's own default puts
chacha20-poly1305 first, which costs more Python a packet), at most ``--handshakes`` handshakes at once.
Frames are counted by their end markers (``@@end``), in C (``bytes.count``), and the count is written to
``--count-file`` on SIGUSR1 (and every 5 s), as ``CONNECTED FRAMES``.

    python benchmarks/floor_watch.py --hosts-file F --user U --key K --known-hosts KH --every 10 \\
        --count-file C
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import asyncssh
from floor_asyncssh import client_options, fleet_parser  # (this script's directory is on sys.path)

from fleetrst.measure.probe import watch_command

CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")


class Counting(asyncssh.SSHClientSession[bytes]):
    frames = 0

    def data_received(self, data: bytes, datatype: Any) -> None:
        Counting.frames += data.count(b"\n@@end ")


async def one(
    address: str,
    options: asyncssh.SSHClientConnectionOptions,
    command: str,
    handshakes: asyncio.Semaphore,
    connected: list[int],
) -> None:
    try:
        async with handshakes:
            conn = await asyncssh.connect(address, options=options)
        async with conn:
            channel, _ = await conn.create_session(Counting, command, encoding=None, window=256 * 1024)
            connected[0] += 1
            try:
                await channel.wait_closed()
            finally:
                if not channel.is_closing():
                    channel.send_signal("TERM")  # the loop's trap ends its sleep: nothing left running
    except (OSError, asyncssh.Error) as exc:
        print(f"floor: {address}: {exc}", file=sys.stderr)


async def main() -> int:
    parser = fleet_parser(__doc__)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--handshakes", type=int, default=100)
    parser.add_argument("--count-file", required=True)
    args = parser.parse_args()
    addresses = Path(args.hosts_file).read_text().split()
    options = client_options(args.user, args.key, args.known_hosts, encryption_algs=CIPHERS)
    connected = [0]
    count_file = Path(args.count_file)

    def write_count() -> None:
        count_file.write_text(f"{connected[0]} {Counting.frames}\n")

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, write_count)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    handshakes = asyncio.Semaphore(args.handshakes)
    command = watch_command(args.every)
    tasks = [asyncio.create_task(one(a, options, command, handshakes, connected)) for a in addresses]
    while not stop.is_set():
        write_count()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
