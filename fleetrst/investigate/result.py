"""The investigation's result: one host's ``Investigation`` and the fleet's ``Finding``s, as values.

Pure, frozen, stdlib only. ``analyse`` builds an ``Investigation`` (``failed_investigation`` too, from
the same defaults), the runner adds the pcap file it wrote and the time taken, ``correlate`` builds the
``Finding``s, and every reader (the table, the investigation report, the history store, correlation)
reads attributes. ``fleetrst.render.schema`` is the one place that turns them into JSON, in the shape
README.md documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: the ``version`` of the JSON ``investigation`` object
INVESTIGATION_VERSION = 1


@dataclass(frozen=True)
class Process:
    """A process that owns a socket: a listener's or a captured flow's."""

    pid: int
    command: str  # as the host named it: untrusted text, cleaned where it is shown


@dataclass(frozen=True)
class ProcessRef:
    """A process behind a cause, a listener or a captured port, with that port (None: not known)."""

    pid: int
    command: str
    port: int | None = None


@dataclass(frozen=True)
class Evidence:
    """What a cause rests on: the rates that drive it (rounded to 3 places) and what the sockets,
    listeners, capture and sysctls showed (JSON values, by name: ``listener``, ``accept_queue``, ...)."""

    rates: Mapping[str, float] = field(default_factory=dict)
    sockets: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class CauseResult:
    """One likely cause of the host's resets (``cause`` is one of ``classify.CAUSES``)."""

    cause: str
    summary: str
    next_step: str
    port: int | None = None
    processes: tuple[ProcessRef, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True)
class Top:
    """The table's TOP PORT/PROCESS: what the first cause's own evidence points at.

    A local ``port`` this host serves (with the process that owns it, when known), or the ``peer``
    ``address:port`` that resets this host; ``why`` is ``"<cause>: <the evidence>"``.
    """

    port: int | None = None
    peer: str | None = None
    pid: int | None = None
    command: str | None = None
    why: str = ""


@dataclass(frozen=True)
class PortCount:
    port: int
    count: int


@dataclass(frozen=True)
class StatePorts:
    """Sockets in one troubled state (``SYN-SENT``, ``CLOSE-WAIT``, ...): the ports most seen."""

    state: str
    count: int
    local: tuple[PortCount, ...] = ()
    peer: tuple[PortCount, ...] = ()


@dataclass(frozen=True)
class Listener:
    """A listening socket: connections waiting for ``accept()`` (``queue``) against its backlog."""

    address: str
    port: int
    queue: int
    backlog: int
    processes: tuple[Process, ...] = ()

    @property
    def fill(self) -> float | None:
        """How full the accept queue is (1 or more: full); None without a backlog."""
        return round(self.queue / self.backlog, 3) if self.backlog > 0 else None

    @property
    def full(self) -> bool:
        return bool(self.backlog) and self.queue >= self.backlog


@dataclass(frozen=True)
class Flow:
    """RSTs between one local port and one peer, as the capture saw them.

    A ``local_port`` of None, or a peer ``addr:*``, stands for many ports: ``ports`` says how many
    (None: one). ``processes``: the owners of the local port, None when none is known.
    """

    direction: str  # "sent", "received" or "loopback"
    local_port: int | None
    peer: str
    count: int
    ports: int | None = None
    processes: tuple[Process, ...] | None = None


@dataclass(frozen=True)
class Capture:
    """The RST capture. ``error`` says why there is none (tcpdump missing, not permitted, cut short);
    ``pcap`` and ``pcap_bytes``: the file the runner wrote (``--save-pcap DIR``), else None."""

    duration_s: float
    max_packets: int
    packets: int = 0
    dropped: int | None = None
    flows: tuple[Flow, ...] = ()
    error: str | None = None
    pcap: str | None = None
    pcap_bytes: int | None = None


@dataclass(frozen=True)
class Context:
    """What the host said about itself; a field it did not say (or the runbook did not reach) is None.

    ``tcp_mem_pages`` is tcp_mem's (min, pressure, max); ``sysctls`` by their last name
    (``somaxconn``, ``tcp_syncookies``, ...); ``login_user`` the user the runbook logged in as.
    """

    loadavg: tuple[float, ...] | None = None
    tcp_inuse: int | None = None
    orphans: int | None = None
    time_wait: int | None = None
    tcp_mem_used_pages: int | None = None
    tcp_mem_pages: tuple[int, ...] | None = None
    mem_total_kib: int | None = None
    mem_available_kib: int | None = None
    sysctls: Mapping[str, str] | None = None
    login_user: str | None = None


@dataclass(frozen=True)
class Logs:
    """The kernel log / journal / syslog lines that mention TCP or network trouble (the last ones)."""

    sources: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Become:
    """Whether the privileged steps were asked to run through ``sudo -n``, as whom, and how it went."""

    requested: bool = False
    user: str | None = None
    ok: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Investigation:
    """One host's investigation. The defaults are an investigation that saw nothing: a runbook that did
    not run is one of these with its ``unseen`` and ``errors`` said (``analyse.failed_investigation``).
    """

    version: int = INVESTIGATION_VERSION
    causes: tuple[CauseResult, ...] = ()  # most significant first
    top: Top | None = None
    processes: tuple[ProcessRef, ...] = ()
    states: Mapping[str, int] = field(default_factory=dict)  # socket counts by state, by name
    sockets_seen: int = 0
    top_ports: tuple[StatePorts, ...] = ()
    stuck_peers: Mapping[str, int] = field(default_factory=dict)  # peer address:port -> SYN-SENT sockets
    listeners: tuple[Listener, ...] = ()
    capture: Capture | None = None  # None: no capture was asked for
    context: Context = field(default_factory=Context)
    logs: Logs | None = None  # None: no logs were asked for
    become: Become = field(default_factory=Become)
    privileged: bool = False
    unseen: tuple[str, ...] = ()  # what could not be seen, and why
    errors: tuple[str, ...] = ()  # steps that failed
    elapsed_s: float | None = None  # the time the runner took (None: not run by the runner)


@dataclass(frozen=True)
class Finding:
    """What several hosts' investigations show together (``kind`` ``common_peer``: one peer resets
    them all)."""

    kind: str
    peer: str
    hosts: tuple[str, ...]
    count: int
    seen_in: tuple[str, ...]  # "capture", "sockets"
    summary: str
    next_step: str
