"""The cause classifier: counter rates plus socket facts in, likely causes with their evidence out.

Pure: no I/O, no clock. Each rule follows the kernel's own bookkeeping (see DESIGN.md, "What the
kernel gives us"):

- ``closed_port``: RSTs sent (``OutRsts``) or connects refused (``AttemptFails``) with no aborts to
  explain them — a SYN to a port where nothing listens.
- ``aborted_connection``: an application closing with unread data or ``SO_LINGER 0``
  (``TCPAbortOnData``/``OnClose``/``OnLinger``), or peers resetting established connections
  (``EstabResets`` without challenge ACKs).
- ``half_open``: established resets met by challenge ACKs (the peer no longer knows the connection),
  SYN-queue drops (``TCPReqQFull*``) or resets of embryonic connections.
- ``listen_queue_full``: ``ListenOverflows``/``ListenDrops``, with the listener whose accept queue is
  full named from ``ss``.
- ``memory_pressure``: ``TCPAbortOnMemory``/``TCPMemoryPressures``, or TCP memory past ``tcp_mem``.
- ``time_wait_assassination``: no counter of its own; claimed only when a capture shows RSTs arriving
  for connections that ``ss`` shows in TIME-WAIT.

One function per cause, each reading a ``RateView`` (the rates and the capture's RSTs, derived once) and
the ``Facts``; each names, from its own evidence only, what it points at (``Cause.top``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .result import CauseResult, Evidence, ProcessRef
from .ss import Endpoint, Owner

MIN_RATE = 1.0  # events/s below which a counter is not evidence of anything

CAUSES = (
    "closed_port",
    "aborted_connection",
    "half_open",
    "listen_queue_full",
    "memory_pressure",
    "time_wait_assassination",
)


@dataclass(frozen=True)
class ListenerFact:
    address: str
    port: int
    queue: int  # Recv-Q of a listener: connections waiting for accept()
    backlog: int  # Send-Q of a listener: the accept queue's size
    owners: tuple[Owner, ...] = ()

    @property
    def full(self) -> bool:
        return self.queue >= self.backlog and self.backlog >= 0 and self.queue > 0


@dataclass(frozen=True)
class RstSeen:
    """RSTs of one (direction, local port, peer) from a capture, ports exact (not folded)."""

    direction: str  # "sent", "received", "loopback"
    local_port: int
    peer_address: str
    peer_port: int
    count: int


@dataclass(frozen=True)
class Facts:
    """What the host's tools showed, in the shape the rules need. Everything is optional."""

    states: Mapping[str, int] = field(default_factory=dict)
    listeners: Sequence[ListenerFact] = ()
    # (state, local port, peer address, peer port) of every socket seen (ss, samples)
    sockets: Sequence[tuple[str, int, str, int]] = ()
    # local port -> owning processes, from ss -p or lsof
    owners: Mapping[int, tuple[Owner, ...]] = field(default_factory=dict)
    rsts: Sequence[RstSeen] | None = None  # None: no capture
    sysctls: Mapping[str, str] = field(default_factory=dict)
    tcp_mem_pages: tuple[int, int, int] | None = None  # min, pressure, max
    tcp_mem_used_pages: int | None = None
    orphans: int | None = None
    # the port our own SSH session came in on: its one ESTAB socket is not evidence of anything
    session_port: int | None = None


@dataclass(frozen=True)
class Top:
    """What one cause's evidence points at: the table's TOP PORT/PROCESS.

    ``port`` is a local port this host serves (a listener, or the closed port its RSTs come from),
    with the ``processes`` that own it; ``peer`` is the remote ``address:port`` that resets this host
    when it is the client. An ephemeral port is never named: a client's local port says nothing.
    """

    port: int | None = None
    peer: str | None = None
    processes: tuple[Owner, ...] = ()
    why: str = ""  # the evidence, in a few words: "the capture shows 94 RSTs received from it"


@dataclass(frozen=True)
class Cause:
    cause: str
    summary: str
    next_step: str
    score: float  # the rate that drives it: causes are listed highest first
    rates: Mapping[str, float] = field(default_factory=dict)
    sockets: Mapping[str, Any] = field(default_factory=dict)
    port: int | None = None
    processes: tuple[Owner, ...] = ()
    top: Top | None = None  # what this cause's own evidence points at; None when it names nothing

    def as_result(self) -> CauseResult:
        """The cause as the investigation reports it (its rates rounded to 3 places)."""
        return CauseResult(
            self.cause,
            self.summary,
            self.next_step,
            self.port,
            tuple(ProcessRef(o.pid, o.command, self.port) for o in self.processes),
            Evidence({k: round(v, 3) for k, v in self.rates.items()}, dict(self.sockets)),
        )


def _r(rates: Mapping[str, float], name: str) -> float:
    value = rates.get(name, 0.0)
    return value if value == value else 0.0  # NaN never counts


@dataclass(frozen=True)
class RateView:
    """What the rules share, derived once: the rates they read and what the capture's RSTs add up to."""

    rates: Mapping[str, float]
    attempt_fails: float  # connects refused (AttemptFails): "resets received"
    out_rsts: float  # OutRsts: "resets sent"
    estab: float  # EstabResets
    local_aborts: float  # TCPAbortOnData + OnClose + OnLinger
    challenge: float  # TCPChallengeACK
    overflows: float  # the larger of ListenOverflows and ListenDrops
    on_memory: float  # TCPAbortOnMemory
    pressures: float  # TCPMemoryPressures
    qfull: float  # TCPReqQFullDrop + TCPReqQFullDoCookies
    embryonic: float  # EmbryonicRsts
    listening: frozenset[int]  # local ports with a listener
    sent: Mapping[int, int]  # RSTs this host sent (or on loopback), by local port
    received: Mapping[tuple[str, int], int]  # RSTs received, by peer (address, port)
    received_rsts: tuple[RstSeen, ...]  # the received ones as the capture saw them

    @classmethod
    def of(cls, rates: Mapping[str, float], facts: Facts) -> RateView:
        sent: dict[int, int] = {}
        received: dict[tuple[str, int], int] = {}
        for rst in facts.rsts or ():
            if rst.direction in ("sent", "loopback"):
                sent[rst.local_port] = sent.get(rst.local_port, 0) + rst.count
            elif rst.direction == "received":
                key = (rst.peer_address, rst.peer_port)
                received[key] = received.get(key, 0) + rst.count
        return cls(
            rates=rates,
            attempt_fails=_r(rates, "resets_received"),
            out_rsts=_r(rates, "resets_sent"),
            estab=_r(rates, "estab_resets"),
            local_aborts=sum(_r(rates, n) for n in ("aborts_on_data", "aborts_on_close", "aborts_on_linger")),
            challenge=_r(rates, "challenge_acks"),
            overflows=max(_r(rates, "listen_overflows"), _r(rates, "listen_drops")),
            on_memory=_r(rates, "aborts_on_memory"),
            pressures=_r(rates, "memory_pressures"),
            qfull=_r(rates, "req_q_full_drops") + _r(rates, "TCPReqQFullDoCookies"),
            embryonic=_r(rates, "EmbryonicRsts"),
            listening=frozenset(lf.port for lf in facts.listeners),
            sent=sent,
            received=received,
            received_rsts=tuple(rst for rst in facts.rsts or () if rst.direction == "received"),
        )

    def top_received(self, n: int = 3) -> list[tuple[tuple[str, int], int]]:
        """The peers this host received most RSTs from, most first."""
        return sorted(self.received.items(), key=lambda kv: -kv[1])[:n]


def _who(owners: Sequence[Owner]) -> str:
    return ", ".join(f"{o.command} (pid {o.pid})" for o in owners[:3]) or "an unknown process"


def _owners_of(port: int, facts: Facts) -> tuple[Owner, ...]:
    owners = next((lf.owners for lf in facts.listeners if lf.port == port and lf.owners), ())
    return owners or facts.owners.get(port, ())


def _top_of_rsts(rsts: Iterable[RstSeen], r: RateView, facts: Facts, what: str) -> Top | None:
    """The end that captured RSTs point at, by what this host is in each connection.

    On a listening local port this host is the server: that port (and its owners) is named. Anywhere
    else it is the client, on an ephemeral port that says nothing: the peer ``address:port`` is named.
    """
    counts: dict[tuple[int | None, str | None], int] = {}
    for rst in rsts:
        if rst.local_port in r.listening:
            key: tuple[int | None, str | None] = (rst.local_port, None)
        else:
            key = (None, str(Endpoint(rst.peer_address, rst.peer_port)))
        counts[key] = counts.get(key, 0) + rst.count
    if not counts:
        return None
    (port, peer), n = min(counts.items(), key=lambda kv: (-kv[1], kv[0][0] or 0, kv[0][1] or ""))
    if port is not None:
        return Top(port, None, _owners_of(port, facts), f"the capture shows {n} {what} on this port")
    return Top(None, peer, (), f"the capture shows {n} {what} from it")


# --- one rule per cause ---------------------------------------------------------------------------


def _listen_queue_full(r: RateView, facts: Facts) -> Cause | None:
    """Listen queue overflows or drops (``ListenOverflows``/``ListenDrops`` >= MIN_RATE).

    Names the listener whose accept queue ``ss -tln`` shows fullest (Recv-Q against the backlog in
    Send-Q) and its owners, the local clients stuck in SYN-SENT to it, and ``somaxconn``.
    """
    if r.overflows < MIN_RATE:
        return None
    full = sorted(facts.listeners, key=lambda lf: (not lf.full, -lf.queue / max(1, lf.backlog), lf.port))
    fullest = full[0] if full and full[0].queue > 0 else None
    waiting = {
        port: n
        for port, n in _count(s[3] for s in facts.sockets if s[0] == "SYN-SENT").items()
        if port in r.listening
    }
    somaxconn = facts.sysctls.get("somaxconn")
    sockets: dict[str, Any] = {}
    if fullest is not None:
        sockets["listener"] = f"{fullest.address}:{fullest.port}"
        sockets["accept_queue"] = fullest.queue
        sockets["backlog"] = fullest.backlog
        if fullest.port in waiting:
            sockets["local_clients_in_syn_sent"] = waiting[fullest.port]
    if somaxconn:
        sockets["somaxconn"] = somaxconn
    if facts.sysctls.get("tcp_abort_on_overflow"):
        sockets["tcp_abort_on_overflow"] = facts.sysctls["tcp_abort_on_overflow"]
    rates = _pick(r.rates, "listen_overflows", "listen_drops", "req_q_full_drops")
    if fullest is None:
        summary = (
            f"{r.overflows:.1f} connections/s overflow a listen queue, but no listener was seen with a "
            "full queue at the moment ss looked"
        )
        step = (
            "run `ss -tln` a few times to catch the listener whose Recv-Q reaches its Send-Q (the "
            "backlog), then look at the process that owns it"
        )
        return Cause("listen_queue_full", summary, step, r.overflows, rates, sockets)
    owners = tuple(fullest.owners or facts.owners.get(fullest.port, ()))
    summary = (
        f"the listener on port {fullest.port} ({_who(owners)}) has {fullest.queue} connections waiting "
        f"for a backlog of {fullest.backlog}: its accept queue is full and new connections are dropped"
    )
    step = (
        f"{_who(owners)} is not accepting connections on port {fullest.port} as fast as they arrive: "
        "check that it is alive and not stuck or overloaded (its threads, its logs); if the bursts "
        f"are legitimate, raise its listen() backlog and net.core.somaxconn (now {somaxconn or '?'})"
    )
    why = f"ss shows {fullest.queue} connections waiting for accept() with a backlog of {fullest.backlog}"
    return Cause(
        "listen_queue_full",
        summary,
        step,
        r.overflows,
        rates,
        sockets,
        fullest.port,
        owners,
        Top(fullest.port, None, owners, why),
    )


def _aborting_port(r: RateView, facts: Facts, sockets: dict[str, Any]) -> tuple[int | None, str]:
    """The listener an aborting application most likely owns, and why: the capture's RSTs, else the
    listener most involved in live sockets, else the only listener besides SSH (a guess, said so)."""
    candidates = {p: n for p, n in r.sent.items() if p in r.listening}
    if candidates:
        port = max(candidates, key=lambda p: (candidates[p], -p))
        sockets["rsts_captured_from_port"] = candidates[port]
        return port, "the capture shows the RSTs coming from it"
    involved = _count(
        p
        for s in facts.sockets
        if s[0] != "LISTEN"
        for p in (s[1], s[3])
        if p in r.listening and p != facts.session_port
    )
    others = sorted(p for p in r.listening if p != facts.session_port)
    if involved and max(involved.values()) >= 2:
        port = max(involved, key=lambda p: (involved[p], -p))
        sockets["connections_seen_on_port"] = involved[port]
        return port, "its connections were seen while it aborted"
    if len(others) == 1:
        sockets["only_listener_besides_ssh"] = others[0]
        return others[0], "the only listener besides SSH; a capture would confirm it"
    return None, ""


def _aborted_connection(r: RateView, facts: Facts) -> Cause | None:
    """An application on this host aborting its connections (``TCPAbortOnData``/``OnClose``/
    ``OnLinger`` >= MIN_RATE), or peers resetting established ones (``EstabResets`` >= MIN_RATE with
    challenge ACKs under half of them and no local aborts).

    A local abort names the listening port (see ``_aborting_port``) and its owners. Peers aborting are
    named only by a capture: the listener whose connections they reset, or the peer that resets this
    host's outgoing connections (see ``_top_of_rsts``).
    """
    rates = _pick(
        r.rates, "estab_resets", "resets_sent", "aborts_on_data", "aborts_on_close", "aborts_on_linger"
    )
    sockets: dict[str, Any] = {}
    if r.local_aborts >= MIN_RATE:
        port, why = _aborting_port(r, facts, sockets)
        owners = _owners_of(port, facts) if port is not None else ()
        where = f"on port {port} ({_who(owners)}; {why})" if port is not None else "on this host"
        summary = (
            f"an application {where} aborts its connections: {r.local_aborts:.1f}/s closed with unread "
            "data or SO_LINGER 0, each sending a RST"
        )
        step = (
            (f"look at {_who(owners)} on port {port}: " if port is not None else "find the process: ")
            + "check its logs for errors, timeouts or restarts at this time; an application that "
            "closes sockets it has not read (or sets SO_LINGER 0) resets its clients"
            + ("" if port is not None else "; a capture (--capture 10s) names the port")
        )
        top = Top(port, None, owners, why) if port is not None else None
        return Cause("aborted_connection", summary, step, r.local_aborts, rates, sockets, port, owners, top)
    if r.estab >= MIN_RATE and r.challenge < 0.5 * r.estab:
        peers = r.top_received()
        if peers:
            sockets["rsts_captured_from"] = {f"{a}:{p}": n for (a, p), n in peers}
        summary = f"peers reset {r.estab:.1f} established connections/s"
        step = (
            "find which peers send the resets (a capture: --capture 10s) and look at them: a service "
            "that crashed or restarted, a load balancer or firewall timing out idle connections"
        )
        top = _top_of_rsts(r.received_rsts, r, facts, "RSTs received")
        return Cause("aborted_connection", summary, step, r.estab, rates, sockets, top=top)
    return None


def _half_open(r: RateView, facts: Facts) -> Cause | None:
    """Segments for connections one side no longer has: established resets met by challenge ACKs
    (both >= MIN_RATE), SYN-queue drops (``TCPReqQFull*``) or resets of embryonic connections.

    Its evidence is counters and socket states (SYN-RECV, CLOSE-WAIT): it names no port.
    """
    if not (
        (r.estab >= MIN_RATE and r.challenge >= MIN_RATE) or r.qfull >= MIN_RATE or r.embryonic >= MIN_RATE
    ):
        return None
    sockets: dict[str, Any] = {k: facts.states[k] for k in ("SYN-RECV", "CLOSE-WAIT") if facts.states.get(k)}
    if facts.sysctls.get("tcp_syncookies"):
        sockets["tcp_syncookies"] = facts.sysctls["tcp_syncookies"]
    return Cause(
        "half_open",
        "segments arrive for connections one side no longer has (half-open): "
        f"{r.estab:.1f} established resets/s with {r.challenge:.1f} challenge ACKs/s, "
        f"{r.qfull:.1f} SYN-queue drops/s, {r.embryonic:.1f} embryonic resets/s",
        "look for a restart, failover or middlebox (NAT, firewall, load balancer) that forgot "
        "connections: an idle timeout shorter than the application's keepalive is the usual one; "
        "SYN-RECV piling up points at a SYN flood or lost ACKs (check tcp_syncookies)",
        max(r.estab if r.challenge >= MIN_RATE else 0.0, r.qfull, r.embryonic),
        _pick(r.rates, "estab_resets", "challenge_acks", "req_q_full_drops", "EmbryonicRsts"),
        sockets,
    )


def _memory_pressure(r: RateView, facts: Facts) -> Cause | None:
    """The kernel short of TCP memory: any ``TCPAbortOnMemory`` or ``TCPMemoryPressures``, or the pages
    in use (sockstat ``mem``) at or past ``tcp_mem``'s pressure level. Names no port."""
    over_pressure = (
        facts.tcp_mem_pages is not None
        and facts.tcp_mem_used_pages is not None
        and facts.tcp_mem_used_pages >= facts.tcp_mem_pages[1]
    )
    if not (r.on_memory > 0 or r.pressures > 0 or over_pressure):
        return None
    sockets: dict[str, Any] = {}
    if facts.tcp_mem_pages is not None:
        sockets["tcp_mem_pages"] = list(facts.tcp_mem_pages)
    if facts.tcp_mem_used_pages is not None:
        sockets["tcp_mem_used_pages"] = facts.tcp_mem_used_pages
    if facts.orphans is not None:
        sockets["orphans"] = facts.orphans
    if facts.sysctls.get("tcp_max_orphans"):
        sockets["tcp_max_orphans"] = facts.sysctls["tcp_max_orphans"]
    return Cause(
        "memory_pressure",
        f"the kernel is short of TCP memory: {r.on_memory:.1f} aborts on memory/s, "
        f"{r.pressures:.1f} memory-pressure entries/s"
        + (" and TCP memory in use is past tcp_mem's pressure level" if over_pressure else ""),
        "find what holds socket buffers (`ss -tm`: large Recv-Q/Send-Q, many orphans) and fix the "
        "reader that does not keep up, or raise net.ipv4.tcp_mem (and tcp_max_orphans) if the "
        "host simply needs more",
        max(r.on_memory, r.pressures, 1.0 if over_pressure else 0.0),
        _pick(r.rates, "aborts_on_memory", "memory_pressures"),
        sockets,
    )


def _time_wait_assassination(r: RateView, facts: Facts) -> Cause | None:
    """RSTs the capture saw arriving (received or on loopback) for connections ``ss`` shows in
    TIME-WAIT. No counter shows this: without a capture it is never claimed. Names the end of those
    connections that the RSTs point at (see ``_top_of_rsts``)."""
    if not facts.rsts:
        return None
    tw = {(s[1], s[2], s[3]) for s in facts.sockets if s[0] == "TIME-WAIT"}
    hits = [
        rst
        for rst in facts.rsts
        if rst.direction in ("received", "loopback")
        and (rst.local_port, rst.peer_address, rst.peer_port) in tw
    ]
    count = sum(rst.count for rst in hits)
    if not count:
        return None
    rfc1337 = facts.sysctls.get("tcp_rfc1337", "?")
    return Cause(
        "time_wait_assassination",
        f"{count} RSTs arrived for connections this host holds in TIME-WAIT, ending them early",
        "set net.ipv4.tcp_rfc1337=1 so that TIME-WAIT ignores RSTs (now "
        f"{rfc1337}), and find the peer that resets closed connections",
        float(count),
        {},
        {"rsts_to_time_wait": count, "time_wait": facts.states.get("TIME-WAIT", 0), "tcp_rfc1337": rfc1337},
        top=_top_of_rsts(hits, r, facts, "RSTs to connections in TIME-WAIT"),
    )


def _closed_port(r: RateView, facts: Facts) -> Cause | None:
    """SYNs to a port where nothing listens: connects refused (``AttemptFails``) or RSTs sent
    (``OutRsts``) that aborts (and ``tcp_abort_on_overflow``) do not explain, >= MIN_RATE.

    The closed port this host refuses on is named only by a capture (RSTs sent from a port without a
    listener); a client refused by its peers is pointed at the peer the capture received RSTs from.
    Without a capture it names nothing, and its next step says that a capture would.
    """
    unexplained = (
        r.out_rsts
        - r.local_aborts
        - (r.overflows if facts.sysctls.get("tcp_abort_on_overflow") == "1" else 0)
    )
    if not (
        (r.attempt_fails >= MIN_RATE and (unexplained >= MIN_RATE or r.out_rsts < MIN_RATE))
        or unexplained >= MIN_RATE
    ):
        return None
    refusing = {p: n for p, n in r.sent.items() if p not in r.listening}
    sockets: dict[str, Any] = {}
    port = None
    top: Top | None = None
    if refusing:
        port = max(refusing, key=lambda p: (refusing[p], -p))
        sockets["rsts_sent_from_closed_port"] = refusing[port]
        top = Top(
            port, None, (), f"the capture shows {refusing[port]} RSTs sent from it, where nothing listens"
        )
    peers = r.top_received()
    if peers:
        sockets["rsts_received_from"] = {f"{a}:{p}": n for (a, p), n in peers}
        top = top or _top_of_rsts(r.received_rsts, r, facts, "RSTs received")
    if r.attempt_fails >= MIN_RATE and unexplained >= MIN_RATE:
        who = "programs on this host connect to a port of this host where nothing listens"
        if facts.rsts is not None and r.sent and all(rst.direction == "loopback" for rst in facts.rsts):
            who += " (the capture shows them on loopback)"
    elif r.attempt_fails >= MIN_RATE:
        who = "connections from this host are refused by their peers: nothing listens on the port they dial"
    else:
        who = "this host refuses connections to ports where nothing listens"
    where = f" (port {port})" if port is not None else ""
    summary = (
        f"{who}{where}: {r.attempt_fails:.1f} connects refused/s, {unexplained:.1f} RSTs sent/s not "
        "explained by aborts"
    )
    if port is None and not peers:
        step = (
            "a capture (--capture 10s, with -b for tcpdump's privileges) names the port and the "
            "client; then start the service that should listen there, or fix the client's configuration"
        )
    else:
        step = (
            "find the client that dials the closed port (the capture's peer) and the service that "
            "should be listening: start or fix that service, or correct the client's address/port"
        )
    return Cause(
        "closed_port",
        summary,
        step,
        max(r.attempt_fails, unexplained),
        _pick(r.rates, "resets_received", "resets_sent", "aborts_on_data", "estab_resets"),
        sockets,
        port,
        top=top,
    )


Rule = Callable[[RateView, Facts], Cause | None]
#: every rule, in the order causes of equal score are listed
RULES: tuple[Rule, ...] = (
    _listen_queue_full,
    _aborted_connection,
    _half_open,
    _memory_pressure,
    _time_wait_assassination,
    _closed_port,
)


def classify(rates: Mapping[str, float], facts: Facts) -> list[Cause]:
    """The likely causes, most significant first; empty when nothing points anywhere."""
    view = RateView.of(rates, facts)
    causes = [cause for rule in RULES if (cause := rule(view, facts)) is not None]
    causes.sort(key=lambda c: -c.score)
    return causes


def _pick(rates: Mapping[str, float], *names: str) -> dict[str, float]:
    return {n: _r(rates, n) for n in names}


def _count(values: Any) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
