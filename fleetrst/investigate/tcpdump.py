"""A parser for what ``tcpdump -nn`` prints about TCP segments, and the RST summary built from it.

Lines look like (tcpdump 4.99 on ``-i any``, which names the interface and the direction)::

    06:26:56.582125 lo    In  IP 127.0.0.1.51177 > 127.0.0.1.40468: Flags [R.], seq 0, ack 1, win 0, length 0
    06:26:56.582125 eth0  Out IP6 fe80::1.443 > fe80::2.50000: Flags [R], seq 1, win 0, length 0

and, from tcpdump 4.9 and older (or a single interface), without interface and direction::

    06:26:56.582125 IP 10.0.0.1.5432 > 10.0.0.2.40468: Flags [R.], seq 0, ack 1, win 0, length 0

tcpdump's own lines (``listening on any ...``, ``20 packets captured``, ``reading from file``) are
read for the packet counts; any other line that is not a packet is a parse error.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..units import ascii_digits
from .errors import InvestigateParseError
from .ss import Endpoint

_PACKET = re.compile(
    r"^(?P<time>\d{1,2}:\d{2}:\d{2}\.\d{1,9}|\d{1,12}\.\d{1,9})\s+"
    r"(?:(?P<iface>[^\s]{1,32})\s+(?P<dir>In|Out|M|B|P|H|F|Unknown)\s+)?"
    r"(?P<proto>IP6?)\s+(?P<src>[0-9a-fA-F:.]{3,60})\s+>\s+(?P<dst>[0-9a-fA-F:.]{3,60}):\s+"
    r"Flags\s+\[(?P<flags>[A-Za-z.]{1,12})\]"
)
_COUNT = re.compile(r"^(\d{1,15}) packets? (captured|received by filter|dropped by kernel)")
_NOISE = (
    "tcpdump: ",
    "listening on ",
    "reading from file ",
    "Warning: ",
    "tcpdump: verbose output suppressed",
)


@dataclass(frozen=True)
class Segment:
    interface: str | None
    direction: str | None  # "In", "Out", ... as tcpdump prints it; None when it does not
    src: Endpoint
    dst: Endpoint
    flags: str  # "R", "R.", "S", ...

    @property
    def is_rst(self) -> bool:
        return "R" in self.flags


@dataclass
class Capture:
    segments: list[Segment] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # "captured", "received by filter", ...


def _split_address(text: str, line_no: int, line: str) -> Endpoint:
    address, sep, port = text.rpartition(".")
    if not sep or not address or not ascii_digits(port) or int(port) > 65535:
        raise InvestigateParseError("tcpdump", f"not an address.port: {text!r}", line_no, line)
    return Endpoint(address, int(port))


def parse_tcpdump(text: str) -> Capture:
    """Every TCP segment line and tcpdump's packet counts; InvestigateParseError for anything else."""
    capture = Capture()
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(_NOISE):
            continue
        count = _COUNT.match(stripped)
        if count:
            capture.counts[count.group(2)] = int(count.group(1))
            continue
        match = _PACKET.match(stripped)
        if not match:
            raise InvestigateParseError("tcpdump", "not a TCP segment line", line_no, line)
        src = _split_address(match.group("src"), line_no, line)
        dst = _split_address(match.group("dst"), line_no, line)
        capture.segments.append(
            Segment(match.group("iface"), match.group("dir"), src, dst, match.group("flags"))
        )
    return capture


@dataclass(frozen=True)
class RstFlow:
    """RSTs between one local port and one peer (a ``None`` port: many ports, ``spread`` of them)."""

    direction: str  # "sent" (this host sent it), "received", or "loopback" (both ends here)
    local_port: int | None
    peer_address: str
    peer_port: int | None
    count: int
    spread: int = 1  # how many distinct ports the None side stood for

    @property
    def peer(self) -> str:
        return str(Endpoint(self.peer_address, self.peer_port))


def orient_rst(seg: Segment, local_addresses: frozenset[str]) -> tuple[str, int, Endpoint]:
    """(direction, local port, peer) of one RST as this host saw it."""
    if seg.interface == "lo" or (seg.src.address in local_addresses and seg.dst.address in local_addresses):
        return "loopback", seg.src.port or 0, seg.dst  # the sender's port is the one that reset
    if seg.direction == "Out" or (seg.direction is None and seg.src.address in local_addresses):
        return "sent", seg.src.port or 0, seg.dst
    return "received", seg.dst.port or 0, seg.src


def summarise_rsts(
    segments: list[Segment], local_addresses: frozenset[str] = frozenset(), limit: int = 20
) -> list[RstFlow]:
    """RST counts by (direction, local port, peer address:port), biggest first.

    Ephemeral ports would split one story into a row per connection, so a side that varies while the
    other stays put is folded into ``None`` ("many ports") with ``spread`` saying how many.
    """
    exact: Counter[tuple[str, int, str, int]] = Counter()
    for seg in segments:
        if seg.is_rst:
            direction, local_port, peer = orient_rst(seg, local_addresses)
            exact[(direction, local_port, peer.address, peer.port or 0)] += 1
    # fold varying peer ports: same (direction, local port, peer address), several peer ports
    by_local: defaultdict[tuple[str, int, str], list[tuple[int, int]]] = defaultdict(list)
    for (direction, lport, paddr, pport), n in exact.items():
        by_local[(direction, lport, paddr)].append((pport, n))
    flows: list[RstFlow] = []
    singles: defaultdict[tuple[str, str, int], list[tuple[int, int]]] = defaultdict(list)
    for (direction, lport, paddr), ports in by_local.items():
        if len(ports) > 1:
            flows.append(RstFlow(direction, lport, paddr, None, sum(n for _, n in ports), len(ports)))
        else:
            pport, n = ports[0]
            singles[(direction, paddr, pport)].append((lport, n))
    # then varying local ports: same (direction, peer address:port), several local ports
    for (direction, paddr, pport), lports in singles.items():
        if len(lports) > 1:
            flows.append(RstFlow(direction, None, paddr, pport, sum(n for _, n in lports), len(lports)))
        else:
            flows.append(RstFlow(direction, lports[0][0], paddr, pport, lports[0][1]))
    flows.sort(key=lambda f: (-f.count, f.direction, f.local_port or 0, f.peer))
    return flows[:limit]
