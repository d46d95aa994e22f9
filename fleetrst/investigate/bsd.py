"""Parsers for FreeBSD's ``netstat -an -p tcp``, ``netstat -Lan`` and ``sockstat`` text: the rows the
Linux parsers give (``ss.SocketRow``: states spelled as ss spells them, ``Endpoint``, ``Owner``), so a
FreeBSD host is analysed like a Linux one. Pure: text in, rows out.

What the tools print (``usr.bin/netstat/inet.c`` protopr(), ``inet6.c``, ``unix.c``;
``usr.bin/sockstat/sockstat.c``; tests/fixtures/freebsd/investigate/PROVENANCE.md has the samples):

- ``netstat -an -p tcp``: ``Proto Recv-Q Send-Q Local-Address Foreign-Address (state)``. Protocol
  ``tcp4``/``tcp6``/``tcp46`` (``toe4``... under TCP offload). An address is ``host.port`` with the port
  after the *last* dot: ``10.0.0.1.22``, ``::1.22``, ``fe80::1%lo0.22``, ``*.22``, ``*.*``. The state
  is a ``tcpstates[]`` name (``ESTABLISHED``, ``SYN_RCVD``...), may carry a ``*`` (T/TCP's hidden
  state) or be a bare number (a state outside the table). Without ``-W`` an IPv6 host is cut to 16
  characters (the port stays right); ``-x``, ``-T``, ``-R``, ``-A``, ``-P`` change the columns, so the
  runbook must not use them. A LISTEN row's Recv-Q/Send-Q there are socket-buffer bytes, not the
  accept queue: that is ``netstat -L``'s job.
- ``netstat -Lan``: ``Proto Listen Local-Address``, the Listen column ``qlen/incqlen/maxqlen``; unix
  (and SCTP) listeners may follow and are skipped; macOS writes the same rows without ``Proto``.
- ``sockstat``: ``USER COMMAND PID FD PROTO LOCAL FOREIGN [state columns]``, addresses ``10.0.0.1:22``,
  ``::1:22`` (IPv6 unbracketed), ``*:22``, ``*:*``. COMMAND is cut to 10 characters and may hold
  spaces. Up to FreeBSD 14 columns are padded to fixed positions and not separated when a field
  overflows: a long user name glues COMMAND to PID (``really-lon62928``) and can glue the local to the
  foreign IPv4 address (``10.0.0.5:8000192.0.2.21:49826``); FreeBSD 10 and older write a dual-stack
  socket as ``tcp4 6``. A socket no process holds (TIME_WAIT...) has ``?`` (``??`` from FreeBSD 15) owners.
"""

from __future__ import annotations

import re

from ..units import ascii_digits
from .errors import InvestigateParseError
from .ss import Endpoint, Owner, SocketRow, parse_endpoint

#: FreeBSD's ``tcpstates[]`` (netinet/tcp_fsm.h) -> the state as ss spells it
STATE_NAMES: dict[str, str] = {
    "CLOSED": "CLOSE",
    "LISTEN": "LISTEN",
    "SYN_SENT": "SYN-SENT",
    "SYN_RCVD": "SYN-RECV",
    "ESTABLISHED": "ESTAB",
    "CLOSE_WAIT": "CLOSE-WAIT",
    "FIN_WAIT_1": "FIN-WAIT-1",
    "CLOSING": "CLOSING",
    "LAST_ACK": "LAST-ACK",
    "FIN_WAIT_2": "FIN-WAIT-2",
    "TIME_WAIT": "TIME-WAIT",
}
ANY = Endpoint("*", None)  # the foreign end of a listener, as ``*.*`` / ``*:*`` write it

_TCP_PROTO = re.compile(r"(?:tcp|toe)(?:4|6|46)?")
_OTHER_PROTO = re.compile(r"[a-z]{2,10}[0-9]{0,2}")  # unix, sctp4, udp6...: rows of other protocols
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_COUNT = r"(0|[1-9][0-9]{0,9})"  # "%u"
_QUEUES = re.compile(rf"{_COUNT}/{_COUNT}/{_COUNT}")
_GONE = re.compile(r"Some \w+ sockets may have been ")  # netstat: the table changed while it was read
_FD = re.compile(r"[0-9]{1,10}|\?\??")
_UNIX_TYPES = frozenset({"stream", "dgram", "seqpac", "seqpack", "seqpacket"})
_SOCK_PROTO = re.compile(r"(?:tcp|toe|udp|udplite|sctp|div)(?:4|6|46)?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_ENDPOINT = re.compile(rf"(?:\*|{_OCTET}(?:\.{_OCTET}){{3}}):(?:\*|[1-9][0-9]{{0,4}})")
_PORT_STATE = re.compile(r"(.*:(?:\*|[0-9]{1,5}))([A-Z][A-Z_0-9]*|\?\??)")
_MAX_PID_DIGITS = 5  # FreeBSD's PID_MAX is 99999


class _Bad(Exception):
    """Why one field is not what the tool prints (turned into InvestigateParseError with its line)."""


def _port(text: str, whole: str) -> int | None:
    if text == "*":
        return None
    if not ascii_digits(text) or len(text) > 5 or int(text) > 65535:
        raise _Bad(f"bad port in {whole[:60]!r}")
    return int(text)


def _bsd_endpoint(text: str) -> Endpoint:
    address, dot, port_text = text.rpartition(".")
    if not dot or not address:
        raise _Bad(f"not an address.port: {text[:60]!r}")
    address = address.split("%", 1)[0]  # fe80::1%lo0: the zone goes, as ss.parse_endpoint drops it
    if address != "*" and not (_IPV4.fullmatch(address) or _IPV6.fullmatch(address)):
        raise _Bad(f"not a numeric address (netstat needs -n): {text[:60]!r}")
    return Endpoint(address, _port(port_text, text))


def parse_bsd_endpoint(text: str, tool: str) -> Endpoint:
    """netstat's ``host.port``: ``10.0.0.1.22``, ``*.22``, ``*.*``, ``::1.22``, ``fe80::1%lo0.22``
    (the port after the last dot; ``*`` -> None; an interface zone is dropped)."""
    try:
        return _bsd_endpoint(text)
    except _Bad as exc:
        raise InvestigateParseError(tool, str(exc)) from None


def _state(text: str) -> str:
    name = text[:-1] if text.endswith("*") else text  # "*": T/TCP's hidden SYN/FIN still to send
    if name in STATE_NAMES:
        return STATE_NAMES[name]
    if ascii_digits(name.removeprefix("-")) and len(name) <= 11:  # "%d": a state outside tcpstates[]
        return "UNKNOWN"
    raise _Bad(f"unknown TCP state {text[:20]!r}")


def _count(text: str) -> int:
    if not ascii_digits(text) or len(text) > 12:
        raise _Bad("Recv-Q and Send-Q must be numbers")
    return int(text)


def parse_netstat_an(text: str) -> list[SocketRow]:
    """Every row of ``netstat -an -p tcp`` (header lines skipped); no owners (sockstat has them).

    Raises InvestigateParseError naming the line when a row is not a TCP row as netstat prints it
    (a UDP or unix row means the command lacked ``-p tcp``).
    """
    rows: list[SocketRow] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if (
            not fields
            or fields[0] == "Proto"
            or line.startswith("Active Internet connections")
            or _GONE.match(line)
        ):
            continue
        try:
            if not _TCP_PROTO.fullmatch(fields[0]):
                raise _Bad(f"not a TCP row ({fields[0][:20]!r}): run netstat -an -p tcp")
            if len(fields) != 6:
                raise _Bad("expected Proto Recv-Q Send-Q Local-Address Foreign-Address (state)")
            rows.append(
                SocketRow(
                    _state(fields[5]),
                    _count(fields[1]),
                    _count(fields[2]),
                    _bsd_endpoint(fields[3]),
                    _bsd_endpoint(fields[4]),
                )
            )
        except _Bad as exc:
            raise InvestigateParseError("netstat", str(exc), line_no, line) from None
    return rows


def parse_netstat_listen(text: str) -> list[SocketRow]:
    """Every TCP listener of ``netstat -Lan``, as ``ss -tln`` reports one: state LISTEN, Recv-Q the
    current accept queue (qlen), Send-Q its limit (maxqlen), peer ``*:*``.

    incqlen is left out: FreeBSD keeps half-open connections in the syncache, not on the socket, so it
    is 0 for TCP. Rows of other protocols (unix, sctp) are skipped; anything else raises
    InvestigateParseError naming the line.
    """
    rows: list[SocketRow] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if (
            not fields
            or fields[0] in ("Proto", "Listen")
            or line.startswith("Current listen queue sizes")
            or _GONE.match(line)
        ):
            continue
        try:
            if _QUEUES.fullmatch(fields[0]):  # macOS: no Proto column
                rest = fields
            elif _TCP_PROTO.fullmatch(fields[0]):
                rest = fields[1:]
            elif len(fields) > 1 and _OTHER_PROTO.fullmatch(fields[0]) and _QUEUES.fullmatch(fields[1]):
                continue  # a unix or SCTP listener
            else:
                raise _Bad(f"not a listen-queue row ({fields[0][:20]!r})")
            queues = _QUEUES.fullmatch(rest[0]) if rest else None
            if queues is None or len(rest) != 2:
                raise _Bad("expected Proto qlen/incqlen/maxqlen Local-Address")
            qlen, _incqlen, maxqlen = (int(q) for q in queues.groups())
            rows.append(SocketRow("LISTEN", qlen, maxqlen, _bsd_endpoint(rest[1]), ANY))
        except _Bad as exc:
            raise InvestigateParseError("netstat", str(exc), line_no, line) from None
    return rows


def _sockstat_endpoint(text: str) -> Endpoint:
    try:
        return parse_endpoint(text, "sockstat")
    except InvestigateParseError as exc:
        raise _Bad(str(exc).split(": ", 1)[-1]) from None


def _unglue(text: str) -> list[tuple[str, str]]:
    """``10.0.0.5:8000192.0.2.21:49826``: a local IPv4 address run into the foreign one (sockstat up to
    FreeBSD 14 leaves no space when the line overflowed). Every split into two IPv4 endpoints."""
    colon = text.find(":")
    return [
        (text[:cut], text[cut:])
        for cut in range(colon + 2, min(len(text), colon + 7))
        if _V4_ENDPOINT.fullmatch(text[:cut])
        and _V4_ENDPOINT.fullmatch(text[cut:])
        and all(p == "*" or int(p) <= 65535 for p in (text[:cut].rsplit(":", 1)[1], text.rsplit(":", 1)[1]))
    ]


def _unstate(text: str) -> str:
    """An address with the state column run into it (``192.0.2.21:49826ESTABLISHED``): the address."""
    glued = _PORT_STATE.fullmatch(text)
    if glued and (glued.group(2) in STATE_NAMES or glued.group(2) in ("?", "??")):
        return glued.group(1)
    return text


def parse_sockstat(text: str) -> list[tuple[Owner, Endpoint, Endpoint]]:
    """(owner, local, foreign) for every TCP socket row of ``sockstat`` that names its process, in order.

    Skipped: the header, rows of other protocols and unix sockets, sockets no process holds (``?``),
    and the rare overflowed row that cannot be split for certain (see the module note). Raises
    InvestigateParseError naming the line when a row is not what sockstat prints.
    """
    found: list[tuple[Owner, Endpoint, Endpoint]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or (fields[0] == "USER" and fields[1:2] == ["COMMAND"]):
            continue
        try:
            parsed = _sockstat_row(fields)
        except _Bad as exc:
            raise InvestigateParseError("sockstat", str(exc), line_no, line) from None
        if parsed is not None:
            found.append(parsed)
    return found


def _sockstat_row(fields: list[str]) -> tuple[Owner, Endpoint, Endpoint] | None:
    at = next(
        (
            i
            for i in range(3, len(fields))
            if (fields[i] in _UNIX_TYPES or _SOCK_PROTO.fullmatch(fields[i])) and _FD.fullmatch(fields[i - 1])
        ),
        None,
    )
    if at is None:
        raise _Bad("expected USER COMMAND PID FD PROTO LOCAL-ADDRESS FOREIGN-ADDRESS")
    proto, addresses = fields[at], fields[at + 1 :]
    if proto.endswith("4") and addresses[:1] == ["6"]:  # FreeBSD <= 10: "tcp4 6" for tcp46
        proto, addresses = proto + "6", addresses[1:]
    if not _TCP_PROTO.fullmatch(proto):
        return None  # udp, sctp, divert or a unix socket
    pid_text, words = fields[at - 2], fields[1 : at - 2]
    if pid_text in ("?", "??"):
        return None  # no process holds it (TIME_WAIT, an unaccepted connection...)
    owner = _owner(pid_text, words)
    if owner is None:
        return None
    ipv6 = proto.endswith("6") and not proto.endswith("46")  # tcp46 sockets are written as IPv4
    if not ipv6 and addresses and addresses[0].count(":") > 1:  # the IPv4 ends run together
        splits = _unglue(_unstate(addresses[0]))
        if not splits:
            raise _Bad(f"not an address:port: {addresses[0][:60]!r}")
        if len(splits) > 1:
            return None  # more than one split is possible: which socket it is cannot be told
        addresses = [*splits[0], *addresses[1:]]
    if len(addresses) < 2:
        raise _Bad("no local and foreign address")
    return owner, _sockstat_endpoint(addresses[0]), _sockstat_endpoint(_unstate(addresses[1]))


def _owner(pid_text: str, words: list[str]) -> Owner | None:
    if ascii_digits(pid_text) and len(pid_text) <= 10:
        if not words:
            raise _Bad("no COMMAND before the PID")
        return Owner(int(pid_text), " ".join(words))
    # COMMAND run into PID ("really-lon62928"): PID is the digits it ends with
    glued = re.fullmatch(r"(.*[^0-9])([0-9]+)", pid_text)
    if glued is None:
        raise _Bad(f"not a PID: {pid_text[:20]!r}")
    command = " ".join([*words, glued.group(1)])
    if len(command) > 10:
        raise _Bad(f"COMMAND longer than sockstat prints: {command[:20]!r}")
    digits = glued.group(2)
    if len(digits) > _MAX_PID_DIGITS or digits.startswith("0"):
        return None  # the command ended in digits too: the PID cannot be told for certain
    return Owner(int(digits), command)


def _same(endpoint: Endpoint) -> tuple[str, int | None]:
    """An endpoint as both tools would agree on it: the any address and IPv4-mapped forms unified."""
    address = endpoint.address.lower()
    if address.startswith("::ffff:") and _IPV4.fullmatch(address[7:]):
        address = address[7:]
    if address in ("0.0.0.0", "::"):
        address = "*"
    return address, endpoint.port


def with_owners(rows: list[SocketRow], sockets: list[tuple[Owner, Endpoint, Endpoint]]) -> list[SocketRow]:
    """``rows`` with ``owners`` filled from sockstat's (owner, local, foreign), matched on (local, peer).

    A socket several processes share (a forked server's listener) gets each of them once, in sockstat's
    order. netstat and sockstat both write the IPv4 and the IPv6 any address as ``*``, so an IPv4 and an
    IPv6 wildcard listener on one port share their owners. Rows nothing matches (TIME_WAIT, sockets
    sockstat did not list) keep their owners as they were. Linear: one dict lookup per row.
    """
    by_pair: dict[tuple[tuple[str, int | None], tuple[str, int | None]], dict[Owner, None]] = {}
    for owner, local, foreign in sockets:
        by_pair.setdefault((_same(local), _same(foreign)), {})[owner] = None
    out: list[SocketRow] = []
    for row in rows:
        owners = by_pair.get((_same(row.local), _same(row.peer)))
        if owners:
            merged = dict.fromkeys(row.owners)
            merged.update(owners)
            row = SocketRow(row.state, row.recv_q, row.send_q, row.local, row.peer, tuple(merged))
        out.append(row)
    return out
