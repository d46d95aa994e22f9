"""A fake host for the test transport: it answers the real probe command with real /proc files whose
counters advance at chosen rates, so that parse -> measure -> judge run for real on what it prints.

The files are a real capture (``tests/fixtures/proc/host-idle/before``: see CAPTURED.md and
capture.py there); every line is the kernel's own. The host changes only what time would change:
the counters named in ``rates`` (kernel names, events per second) and its uptime, by each sleep the
command asks for. It prints the frames as the probe's shell does (compare
``tests/fixtures/proc/probe/*.out``): the header and sleep markers are read from the command itself,
so a probe with a baseline gets three samples. The sleeps cost nothing: the uptime says they happened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fleetrst.transport.base import ExecResult

PROC = Path(__file__).parents[1] / "fixtures" / "proc"
NEW_BOOT_ID = "00000000-0000-4000-8000-000000000000"

_HEADER = re.compile(r"echo '(@@fleetrst-probe v[0-9]+ sample [0-9]+ of [0-9]+)'")
_SLEEP = re.compile(r"echo '@@sleep ([0-9.]+)'")


@dataclass(frozen=True)
class ProcFiles:
    """The four files one probe sample cats, as text."""

    snmp: str
    netstat: str
    uptime: str
    boot_id: str

    @classmethod
    def captured(cls, load: str = "host-idle", when: str = "before") -> ProcFiles:
        where = PROC / load / when
        return cls(*((where / name).read_text() for name in ("snmp", "netstat", "uptime", "boot_id")))


def advance(text: str, section: str, increments: Mapping[str, int]) -> str:
    """``text`` (/proc/net/snmp or netstat) with the ``section`` counters in ``increments`` increased.

    Only those values change; every other byte stays as the kernel printed it.
    """
    lines = text.split("\n")
    at = _section_line(text, section)
    names = lines[at].split(" ")
    values = lines[at + 1].split(" ")
    for name, increment in increments.items():
        column = names.index(name)
        values[column] = str(int(values[column]) + increment)
    lines[at + 1] = " ".join(values)
    return "\n".join(lines)


@dataclass(frozen=True)
class FakeHost:
    """A host whose kernel counters move at ``rates`` per second (e.g. ``{"OutRsts": 120.0}``)."""

    rates: Mapping[str, float] = field(default_factory=dict)
    files: ProcFiles = field(default_factory=ProcFiles.captured)
    reboots_before_sample: int | None = None  # from this sample on, the boot_id is another one

    def answer(self, command: str) -> ExecResult:
        """What the host prints for the probe ``command``, with exit status 0."""
        return ExecResult(self.probe_output(command), "", 0)

    def probe_output(self, command: str) -> str:
        headers = _HEADER.findall(command)
        sleeps = _SLEEP.findall(command)
        if not headers or len(sleeps) != len(headers) - 1:
            raise ValueError(f"not a probe command: {command[:80]!r}")
        out: list[str] = []
        elapsed = 0.0
        for index, header in enumerate(headers):
            if index:
                out.append(f"@@sleep {sleeps[index - 1]}\n\n@@rc 0\n")
                elapsed += float(sleeps[index - 1])
            out.append(f"{header}\n{self._cat(index, elapsed)}\n@@rc 0\n@@end {index}\n")
        return "".join(out)

    def _cat(self, index: int, elapsed: float) -> str:
        """``cat`` of the four files, ``elapsed`` seconds after the first sample."""
        tcp_names = self.files.snmp.split("\n")[_section_line(self.files.snmp, "Tcp")].split()[1:]
        moved = {name: round(rate * elapsed) for name, rate in self.rates.items()}
        tcp = {name: n for name, n in moved.items() if name in tcp_names}
        tcpext = {name: n for name, n in moved.items() if name not in tcp_names}
        up, idle = (float(field) for field in self.files.uptime.split())
        boot_id = self.files.boot_id
        if self.reboots_before_sample is not None and index >= self.reboots_before_sample:
            boot_id = NEW_BOOT_ID + "\n"
        return (
            advance(self.files.snmp, "Tcp", tcp)
            + advance(self.files.netstat, "TcpExt", tcpext)
            + f"{up + elapsed:.2f} {idle + elapsed:.2f}\n"
            + boot_id
        )


def _section_line(text: str, section: str) -> int:
    return next(n for n, line in enumerate(text.split("\n")) if line.split(" ", 1)[0] == f"{section}:")
