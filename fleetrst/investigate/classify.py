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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .ss import Owner

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
class Cause:
    cause: str
    summary: str
    next_step: str
    score: float  # the rate that drives it: causes are listed highest first
    rates: Mapping[str, float] = field(default_factory=dict)
    sockets: Mapping[str, Any] = field(default_factory=dict)
    port: int | None = None
    processes: tuple[Owner, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "summary": self.summary,
            "port": self.port,
            "processes": [{"pid": o.pid, "command": o.command, "port": self.port} for o in self.processes],
            "evidence": {
                "rates": {k: round(v, 3) for k, v in self.rates.items()},
                "sockets": dict(self.sockets),
            },
            "next_step": self.next_step,
        }


def _r(rates: Mapping[str, float], name: str) -> float:
    value = rates.get(name, 0.0)
    return value if value == value else 0.0  # NaN never counts


def _who(owners: Sequence[Owner]) -> str:
    return ", ".join(f"{o.command} (pid {o.pid})" for o in owners[:3]) or "an unknown process"


def _sent_by_port(facts: Facts) -> dict[int, int]:
    counts: dict[int, int] = {}
    for rst in facts.rsts or ():
        if rst.direction in ("sent", "loopback"):
            counts[rst.local_port] = counts.get(rst.local_port, 0) + rst.count
    return counts


def _received_by_peer(facts: Facts) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for rst in facts.rsts or ():
        if rst.direction == "received":
            key = (rst.peer_address, rst.peer_port)
            counts[key] = counts.get(key, 0) + rst.count
    return counts


def classify(rates: Mapping[str, float], facts: Facts) -> list[Cause]:
    """The likely causes, most significant first; empty when nothing points anywhere."""
    causes: list[Cause] = []
    listening = {lf.port for lf in facts.listeners}
    sent = _sent_by_port(facts)
    received = _received_by_peer(facts)

    attempt_fails = _r(rates, "resets_received")
    out_rsts = _r(rates, "resets_sent")
    estab = _r(rates, "estab_resets")
    local_aborts = sum(_r(rates, n) for n in ("aborts_on_data", "aborts_on_close", "aborts_on_linger"))
    challenge = _r(rates, "challenge_acks")
    overflows = max(_r(rates, "listen_overflows"), _r(rates, "listen_drops"))
    on_memory = _r(rates, "aborts_on_memory")
    pressures = _r(rates, "memory_pressures")

    # --- listen_queue_full -----------------------------------------------------------------------
    if overflows >= MIN_RATE:
        full = sorted(facts.listeners, key=lambda lf: (not lf.full, -lf.queue / max(1, lf.backlog), lf.port))
        top = full[0] if full and full[0].queue > 0 else None
        waiting = {
            port: n
            for port, n in _count(s[3] for s in facts.sockets if s[0] == "SYN-SENT").items()
            if port in listening
        }
        somaxconn = facts.sysctls.get("somaxconn")
        sockets: dict[str, Any] = {}
        if top is not None:
            sockets["listener"] = f"{top.address}:{top.port}"
            sockets["accept_queue"] = top.queue
            sockets["backlog"] = top.backlog
            if top.port in waiting:
                sockets["local_clients_in_syn_sent"] = waiting[top.port]
        if somaxconn:
            sockets["somaxconn"] = somaxconn
        if facts.sysctls.get("tcp_abort_on_overflow"):
            sockets["tcp_abort_on_overflow"] = facts.sysctls["tcp_abort_on_overflow"]
        if top is not None:
            owners = top.owners or facts.owners.get(top.port, ())
            summary = (
                f"the listener on port {top.port} ({_who(owners)}) has {top.queue} connections waiting "
                f"for a backlog of {top.backlog}: its accept queue is full and new connections are dropped"
            )
            step = (
                f"{_who(owners)} is not accepting connections on port {top.port} as fast as they arrive: "
                "check that it is alive and not stuck or overloaded (its threads, its logs); if the bursts "
                f"are legitimate, raise its listen() backlog and net.core.somaxconn (now {somaxconn or '?'})"
            )
        else:
            owners = ()
            summary = (
                f"{overflows:.1f} connections/s overflow a listen queue, but no listener was seen with a "
                "full queue at the moment ss looked"
            )
            step = (
                "run `ss -tln` a few times to catch the listener whose Recv-Q reaches its Send-Q (the "
                "backlog), then look at the process that owns it"
            )
        causes.append(
            Cause(
                "listen_queue_full",
                summary,
                step,
                overflows,
                _pick(rates, "listen_overflows", "listen_drops", "req_q_full_drops"),
                sockets,
                top.port if top else None,
                tuple(owners),
            )
        )

    # --- aborted_connection ---------------------------------------------------------------------
    peers_abort = estab >= MIN_RATE and challenge < 0.5 * estab and local_aborts < MIN_RATE
    if local_aborts >= MIN_RATE or peers_abort:
        port: int | None = None
        owners_t: tuple[Owner, ...] = ()
        sockets = {}
        why = ""
        if local_aborts >= MIN_RATE:
            # the port whose RSTs the capture saw, else the listener most involved in live sockets
            candidates = {p: n for p, n in sent.items() if p in listening}
            if candidates:
                port = max(candidates, key=lambda p: (candidates[p], -p))
                sockets["rsts_captured_from_port"] = candidates[port]
                why = "the capture shows the RSTs coming from it"
            else:
                involved = _count(
                    p
                    for s in facts.sockets
                    if s[0] != "LISTEN"
                    for p in (s[1], s[3])
                    if p in listening and p != facts.session_port
                )
                others = sorted(p for p in listening if p != facts.session_port)
                if involved and max(involved.values()) >= 2:
                    port = max(involved, key=lambda p: (involved[p], -p))
                    sockets["connections_seen_on_port"] = involved[port]
                    why = "its connections were seen while it aborted"
                elif len(others) == 1:
                    port = others[0]
                    sockets["only_listener_besides_ssh"] = port
                    why = "the only listener besides SSH; a capture would confirm it"
            if port is not None:
                owners_t = next((lf.owners for lf in facts.listeners if lf.port == port and lf.owners), ())
                owners_t = owners_t or facts.owners.get(port, ())
            where = f"on port {port} ({_who(owners_t)}; {why})" if port is not None else "on this host"
            summary = (
                f"an application {where} aborts its connections: {local_aborts:.1f}/s closed with unread "
                "data or SO_LINGER 0, each sending a RST"
            )
            step = (
                (f"look at {_who(owners_t)} on port {port}: " if port is not None else "find the process: ")
                + "check its logs for errors, timeouts or restarts at this time; an application that "
                "closes sockets it has not read (or sets SO_LINGER 0) resets its clients"
                + ("" if port is not None else "; a capture (--capture 10s) names the port")
            )
            score = local_aborts
        else:
            peers = sorted(received.items(), key=lambda kv: -kv[1])[:3]
            if peers:
                sockets["rsts_captured_from"] = {f"{a}:{p}": n for (a, p), n in peers}
            summary = f"peers reset {estab:.1f} established connections/s"
            step = (
                "find which peers send the resets (a capture: --capture 10s) and look at them: a service "
                "that crashed or restarted, a load balancer or firewall timing out idle connections"
            )
            score = estab
        causes.append(
            Cause(
                "aborted_connection",
                summary,
                step,
                score,
                _pick(
                    rates,
                    "estab_resets",
                    "resets_sent",
                    "aborts_on_data",
                    "aborts_on_close",
                    "aborts_on_linger",
                ),
                sockets,
                port,
                owners_t,
            )
        )

    # --- half_open -----------------------------------------------------------------------------
    qfull = _r(rates, "req_q_full_drops") + _r(rates, "TCPReqQFullDoCookies")
    embryonic = _r(rates, "EmbryonicRsts")
    if (estab >= MIN_RATE and challenge >= MIN_RATE) or qfull >= MIN_RATE or embryonic >= MIN_RATE:
        sockets = {k: facts.states[k] for k in ("SYN-RECV", "CLOSE-WAIT") if facts.states.get(k)}
        if facts.sysctls.get("tcp_syncookies"):
            sockets["tcp_syncookies"] = facts.sysctls["tcp_syncookies"]
        causes.append(
            Cause(
                "half_open",
                "segments arrive for connections one side no longer has (half-open): "
                f"{estab:.1f} established resets/s with {challenge:.1f} challenge ACKs/s, "
                f"{qfull:.1f} SYN-queue drops/s, {embryonic:.1f} embryonic resets/s",
                "look for a restart, failover or middlebox (NAT, firewall, load balancer) that forgot "
                "connections: an idle timeout shorter than the application's keepalive is the usual one; "
                "SYN-RECV piling up points at a SYN flood or lost ACKs (check tcp_syncookies)",
                max(estab if challenge >= MIN_RATE else 0.0, qfull, embryonic),
                _pick(rates, "estab_resets", "challenge_acks", "req_q_full_drops", "EmbryonicRsts"),
                sockets,
            )
        )

    # --- memory_pressure -------------------------------------------------------------------------
    over_pressure = (
        facts.tcp_mem_pages is not None
        and facts.tcp_mem_used_pages is not None
        and facts.tcp_mem_used_pages >= facts.tcp_mem_pages[1]
    )
    if on_memory > 0 or pressures > 0 or over_pressure:
        sockets = {}
        if facts.tcp_mem_pages is not None:
            sockets["tcp_mem_pages"] = list(facts.tcp_mem_pages)
        if facts.tcp_mem_used_pages is not None:
            sockets["tcp_mem_used_pages"] = facts.tcp_mem_used_pages
        if facts.orphans is not None:
            sockets["orphans"] = facts.orphans
        if facts.sysctls.get("tcp_max_orphans"):
            sockets["tcp_max_orphans"] = facts.sysctls["tcp_max_orphans"]
        causes.append(
            Cause(
                "memory_pressure",
                f"the kernel is short of TCP memory: {on_memory:.1f} aborts on memory/s, "
                f"{pressures:.1f} memory-pressure entries/s"
                + (" and TCP memory in use is past tcp_mem's pressure level" if over_pressure else ""),
                "find what holds socket buffers (`ss -tm`: large Recv-Q/Send-Q, many orphans) and fix the "
                "reader that does not keep up, or raise net.ipv4.tcp_mem (and tcp_max_orphans) if the "
                "host simply needs more",
                max(on_memory, pressures, 1.0 if over_pressure else 0.0),
                _pick(rates, "aborts_on_memory", "memory_pressures"),
                sockets,
            )
        )

    # --- time_wait_assassination (only with evidence) ----------------------------------------------
    if facts.rsts:
        tw = {(s[1], s[2], s[3]) for s in facts.sockets if s[0] == "TIME-WAIT"}
        hits = sum(
            r.count
            for r in facts.rsts
            if r.direction in ("received", "loopback") and (r.local_port, r.peer_address, r.peer_port) in tw
        )
        if hits:
            rfc1337 = facts.sysctls.get("tcp_rfc1337", "?")
            causes.append(
                Cause(
                    "time_wait_assassination",
                    f"{hits} RSTs arrived for connections this host holds in TIME-WAIT, ending them early",
                    "set net.ipv4.tcp_rfc1337=1 so that TIME-WAIT ignores RSTs (now "
                    f"{rfc1337}), and find the peer that resets closed connections",
                    float(hits),
                    {},
                    {
                        "rsts_to_time_wait": hits,
                        "time_wait": facts.states.get("TIME-WAIT", 0),
                        "tcp_rfc1337": rfc1337,
                    },
                )
            )

    # --- closed_port ------------------------------------------------------------------------------
    unexplained = (
        out_rsts - local_aborts - (overflows if facts.sysctls.get("tcp_abort_on_overflow") == "1" else 0)
    )
    if (
        attempt_fails >= MIN_RATE and (unexplained >= MIN_RATE or out_rsts < MIN_RATE)
    ) or unexplained >= MIN_RATE:
        refusing = {p: n for p, n in sent.items() if p not in listening}
        sockets = {}
        port = None
        if refusing:
            port = max(refusing, key=lambda p: (refusing[p], -p))
            sockets["rsts_sent_from_closed_port"] = refusing[port]
        peers = sorted(received.items(), key=lambda kv: -kv[1])[:3]
        if peers:
            sockets["rsts_received_from"] = {f"{a}:{p}": n for (a, p), n in peers}
        if attempt_fails >= MIN_RATE and unexplained >= MIN_RATE:
            who = "programs on this host connect to a port of this host where nothing listens"
            if facts.rsts is not None and sent and all(r.direction == "loopback" for r in facts.rsts):
                who += " (the capture shows them on loopback)"
        elif attempt_fails >= MIN_RATE:
            who = (
                "connections from this host are refused by their peers: nothing listens on the port they dial"
            )
        else:
            who = "this host refuses connections to ports where nothing listens"
        where = f" (port {port})" if port is not None else ""
        summary = (
            f"{who}{where}: {attempt_fails:.1f} connects refused/s, {unexplained:.1f} RSTs sent/s not "
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
        causes.append(
            Cause(
                "closed_port",
                summary,
                step,
                max(attempt_fails, unexplained),
                _pick(rates, "resets_received", "resets_sent", "aborts_on_data", "estab_resets"),
                sockets,
                port,
            )
        )

    causes.sort(key=lambda c: -c.score)
    return causes


def _pick(rates: Mapping[str, float], *names: str) -> dict[str, float]:
    return {n: _r(rates, n) for n in names}


def _count(values: Any) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
