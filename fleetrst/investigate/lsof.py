"""A parser for ``lsof -i -P -n`` text (any lsof 4.x): which process owns which inet socket.

Rows read ``COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME``; NAME is ``10.0.0.1:22 (LISTEN)``,
``127.0.0.1:5000->127.0.0.1:9400 (ESTABLISHED)`` or ``*:68`` (UDP, no state). COMMAND is cut to 9
characters unless ``+c`` says otherwise, and lsof escapes spaces in it (``\\x20``). Columns can be
added (``TID``, ``TASKCMD`` with threads) or left blank (``SIZE/OFF``), so a row is found by its NODE
column (``TCP``, ``UDP``...) rather than by counting fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import ascii_digits
from .errors import InvestigateParseError
from .ss import Endpoint, parse_endpoint

_PROTOCOLS = frozenset({"TCP", "UDP", "UDPLITE", "SCTP", "RAW"})
# lsof's spelling of TCP states -> ss's
LSOF_STATES = {
    "ESTABLISHED": "ESTAB",
    "SYN_SENT": "SYN-SENT",
    "SYN_RECV": "SYN-RECV",
    "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2",
    "TIME_WAIT": "TIME-WAIT",
    "CLOSE": "CLOSE",
    "CLOSED": "CLOSE",
    "CLOSE_WAIT": "CLOSE-WAIT",
    "LAST_ACK": "LAST-ACK",
    "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
    "IDLE": "UNCONN",
    "BOUND": "UNCONN",
}


@dataclass(frozen=True)
class LsofRow:
    command: str
    pid: int
    user: str
    protocol: str
    local: Endpoint
    peer: Endpoint | None
    state: str | None  # as ss spells it (ESTAB, LISTEN, ...), None for UDP


def parse_lsof(text: str) -> list[LsofRow]:
    """Every inet row of ``lsof -i -P -n`` output; raises InvestigateParseError naming a bad line."""
    rows: list[LsofRow] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if fields[0] == "COMMAND":
            continue
        if line.startswith("lsof: "):  # its warnings, when stderr is merged
            continue
        if len(fields) < 5 or not ascii_digits(fields[1]) or len(fields[1]) > 10:
            raise InvestigateParseError("lsof", "expected COMMAND PID USER ... NODE NAME", line_no, line)
        node = next((i for i in range(3, len(fields)) if fields[i] in _PROTOCOLS), None)
        if node is None or node + 1 >= len(fields):
            raise InvestigateParseError("lsof", "no protocol (TCP/UDP) and address", line_no, line)
        name = fields[node + 1]
        state: str | None = None
        rest = fields[node + 2 :]
        if rest:
            word = rest[0]
            if not (word.startswith("(") and word.endswith(")")):
                raise InvestigateParseError("lsof", "unexpected text after the address", line_no, line)
            state = LSOF_STATES.get(word[1:-1], word[1:-1])
        local_text, arrow, peer_text = name.partition("->")
        try:
            local = parse_endpoint(local_text, "lsof")
            peer = parse_endpoint(peer_text, "lsof") if arrow else None
        except InvestigateParseError as exc:
            raise InvestigateParseError("lsof", str(exc).split(": ", 1)[-1], line_no, line) from None
        command = fields[0].replace("\\x20", " ")
        rows.append(LsofRow(command, int(fields[1]), fields[2], fields[node], local, peer, state))
    return rows
