"""Parsers for ``ss -tan``, ``ss -tanp`` and ``ss -tln`` text (iproute2).

Columns are found by position after the header: ``State Recv-Q Send-Q Local Address:Port Peer
Address:Port [Process]``. iproute2 up to 4.x printed no ``Process`` header and older ones wrote IPv6
addresses bare (``:::22``, ``::ffff:127.0.0.1:5432``); newer ones bracket them (``[::1]:22``), may add
an interface (``127.0.0.53%lo:53``) and glue ``Port`` and ``Process`` in the header. The process column,
when ``-p`` can see the owner, reads ``users:(("sshd",pid=123,fd=4),("sshd",pid=124,fd=4))``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..units import ascii_digits
from .errors import InvestigateParseError

#: every state ss prints for TCP sockets, as it spells them
STATES = frozenset(
    {
        "ESTAB",
        "SYN-SENT",
        "SYN-RECV",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
        "CLOSE",
        "UNCONN",
        "CLOSE-WAIT",
        "LAST-ACK",
        "LISTEN",
        "CLOSING",
        "NEW-SYN-RECV",
        "UNKNOWN",
    }
)
_USER = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d{1,10}),fd=(\d{1,10})\)')


@dataclass(frozen=True)
class Endpoint:
    address: str  # "*" for any address
    port: int | None  # None for "*"

    def __str__(self) -> str:
        port = "*" if self.port is None else str(self.port)
        return f"[{self.address}]:{port}" if ":" in self.address else f"{self.address}:{port}"


@dataclass(frozen=True)
class Owner:
    pid: int
    command: str


@dataclass(frozen=True)
class SocketRow:
    state: str
    recv_q: int
    send_q: int
    local: Endpoint
    peer: Endpoint
    owners: tuple[Owner, ...] = ()


def parse_endpoint(text: str, tool: str = "ss") -> Endpoint:
    """``10.0.0.1:22``, ``*:22``, ``[::1]:22``, ``:::22``, ``::ffff:1.2.3.4:22``, ``a%lo:53``,
    ``0.0.0.0:*``."""
    address, sep, port_text = text.rpartition(":")
    if not sep or not address:
        raise InvestigateParseError(tool, f"not an address:port: {text[:60]!r}")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    address = address.split("%", 1)[0]
    if not address:
        raise InvestigateParseError(tool, f"empty address in {text[:60]!r}")
    if port_text == "*":
        return Endpoint(address, None)
    if not ascii_digits(port_text) or len(port_text) > 5 or int(port_text) > 65535:
        raise InvestigateParseError(tool, f"bad port in {text[:60]!r}")
    return Endpoint(address, int(port_text))


def parse_owners(text: str) -> tuple[Owner, ...]:
    """The ``users:((...))`` column: every (command, pid) once, in order."""
    seen: dict[tuple[int, str], None] = {}
    for command, pid, _fd in _USER.findall(text):
        seen.setdefault((int(pid), command.replace('\\"', '"')), None)
    return tuple(Owner(pid, command) for pid, command in seen)


def parse_ss(text: str) -> list[SocketRow]:
    """Every socket row of ``ss -tan``/``-tanp``/``-tln`` output (with or without its header line).

    Raises InvestigateParseError naming the line when a row is not what ss prints.
    """
    rows: list[SocketRow] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(None, 5)
        if fields[0] == "State" or (fields[0] == "Netid" and line_no == 1):
            continue
        if fields[0] not in STATES:
            raise InvestigateParseError("ss", f"unknown socket state {fields[0][:20]!r}", line_no, line)
        if len(fields) < 5:
            raise InvestigateParseError("ss", "fewer than 5 columns", line_no, line)
        state, recv_q, send_q, local, peer = fields[:5]
        if not (ascii_digits(recv_q) and ascii_digits(send_q)) or len(recv_q) > 12 or len(send_q) > 12:
            raise InvestigateParseError("ss", "Recv-Q and Send-Q must be numbers", line_no, line)
        try:
            local_ep, peer_ep = parse_endpoint(local), parse_endpoint(peer)
        except InvestigateParseError as exc:
            raise InvestigateParseError("ss", str(exc).split(": ", 1)[-1], line_no, line) from None
        owners = parse_owners(fields[5]) if len(fields) > 5 else ()
        rows.append(SocketRow(state, int(recv_q), int(send_q), local_ep, peer_ep, owners))
    return rows
