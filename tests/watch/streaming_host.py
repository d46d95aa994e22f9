"""A fake host for the test transport that streams the watch loop's frames: real /proc files (a real
capture, ``tests/fixtures/proc/host-idle``) whose counters advance at chosen rates, one frame each
``pace`` seconds of real time standing for ``every`` seconds of the host's own uptime (so a test runs
minutes of Netdata's rules in milliseconds). It prints what the watch loop's shell prints (compare
``tests/measure/test_watch_frames.py``, which runs the real loop): the header, cat of the four files,
an empty line, ``@@rc 0``, ``@@end N``, the whole frame in one piece.

Faults a test can set at any time: ``down`` (connects are refused), ``drop_after`` (the connection
drops after that many more frames), ``silent`` (connected, prints nothing), ``garbage`` (frames that
cannot be read), ``end_after`` (each remote loop ends by itself after that many frames).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fleetrst.model import Target
from fleetrst.transport.base import ConnectionLost, Unreachable
from tests.sweep.fake_host import ProcFiles, advance


@dataclass
class StreamingHost:
    rates: dict[str, float] = field(default_factory=dict)  # kernel counter -> per second
    every: float = 10.0  # host seconds between frames
    pace: float = 0.002  # real seconds between frames
    uptime: float = 5000.0
    down: bool = False
    silent: bool = False
    garbage: bool = False
    drop_after: int | None = None
    end_after: int | None = None  # the remote loop ends by itself after this many frames (its rounds)
    files: ProcFiles = field(default_factory=ProcFiles.captured)
    moved: dict[str, int] = field(default_factory=dict)
    frames: int = 0
    streams: int = 0
    ended: int = 0  # streams closed by the client while they ran (the remote loop signalled)

    def connect(self, target: Target) -> None:
        if self.down:
            raise Unreachable.refused(target.connection.address, 22)

    def frame(self, index: int) -> str:
        snmp_lines = self.files.snmp.split("\n")
        tcp_names = next(line for line in snmp_lines if line.startswith("Tcp:")).split()[1:]
        tcp = {k: v for k, v in self.moved.items() if k in tcp_names}
        tcpext = {k: v for k, v in self.moved.items() if k not in tcp_names}
        body = (
            advance(self.files.snmp, "Tcp", tcp)
            + advance(self.files.netstat, "TcpExt", tcpext)
            + f"{self.uptime:.2f} 1000.00\n"
            + self.files.boot_id
        )
        if self.garbage:
            body = body.replace("TcpExt:", "TcpExt: garbage", 1)
        return f"@@fleetrst-watch v2 sample {index}\n{body}\n@@rc 0\n@@end {index}\n"

    async def stream(self, target: Target, command: str) -> AsyncIterator[str]:
        assert "@@fleetrst-watch" in command, "the watch loop's command"
        self.streams += 1
        index = 0
        try:
            while True:
                if self.drop_after is not None:
                    if self.drop_after <= 0:
                        self.drop_after = None
                        raise ConnectionLost.during_command("Connection lost")
                    self.drop_after -= 1
                if self.end_after is not None and index >= self.end_after:
                    return
                if not self.silent:
                    yield self.frame(index)
                    self.frames += 1
                    index += 1
                await asyncio.sleep(self.pace)
                self.uptime += self.every
                for counter, rate in self.rates.items():
                    self.moved[counter] = self.moved.get(counter, 0) + round(rate * self.every)
        except (GeneratorExit, asyncio.CancelledError):  # the client left, or was stopped, mid-stream
            self.ended += 1
            raise
