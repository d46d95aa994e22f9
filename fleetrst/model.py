"""The values that flow through fleetrst, from inventory to report.

Everything here is plain data: frozen dataclasses with no I/O. Every other module may read this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .errors import EXIT_CRITICAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING

if TYPE_CHECKING:  # values of the investigation (pure, stdlib only): named here, never imported at run time
    from .investigate.result import Finding, Investigation

# --- what a host is and how to reach it -------------------------------------------------------------

ConnectionKind = Literal["ssh", "paramiko", "local"]
HostKeyChecking = Literal["yes", "no", "accept-new"]


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one host: resolved from inventory variables, ssh args and CLI flags.

    Secrets (``password``, ``become_password``) are excluded from ``repr`` so that they cannot reach a
    log line by accident.
    """

    address: str
    connection: ConnectionKind = "ssh"
    port: int | None = None  # None: the transport's default (22, or ~/.ssh/config)
    user: str | None = None
    private_keys: tuple[str, ...] = ()
    password: str | None = field(default=None, repr=False)
    known_hosts: tuple[str, ...] = ()  # extra known_hosts files (UserKnownHostsFile, --known-hosts)
    host_key_checking: HostKeyChecking = "yes"
    proxy_jump: str | None = None
    # ProxyCommand: the program and its arguments (tokens already replaced), run without a shell; its
    # standard input and output carry the SSH connection instead of a TCP socket.
    proxy_command: tuple[str, ...] = ()
    connect_timeout: float | None = None
    become: bool = False
    become_user: str = "root"
    become_method: str = "sudo"
    become_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Target:
    """One selected host, ready for a transport: its name, groups, connection and our own settings.

    ``fleetrst_vars`` holds the host's ``fleetrst_*`` variables (templates rendered), e.g.
    ``fleetrst_thresholds``; ``error`` is set when the host's variables could not be resolved (a
    template that does not render, a port that is not an integer): such a host is reported as an
    ``error`` without connecting.
    """

    name: str
    groups: tuple[str, ...]
    connection: ConnectionSettings
    fleetrst_vars: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


# --- what the kernel told us ------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One reading of a host's TCP counters (one network namespace), as the kernel printed them."""

    tcp: Mapping[str, int]  # /proc/net/snmp, the "Tcp:" line, by name
    tcpext: Mapping[str, int]  # /proc/net/netstat, the "TcpExt:" line, by name
    uptime_s: float  # /proc/uptime, first field: the host's own clock for the interval
    boot_id: str  # /proc/sys/kernel/random/boot_id


@dataclass(frozen=True)
class Rates:
    """Per-second rates between two snapshots over the host's own interval.

    ``per_second`` holds every monotonic counter under its kernel name (``AttemptFails``,
    ``TCPAbortOnData``, ...) and the named rates (``resets_received``, ``resets_sent``, ...).
    ``gauges`` holds values that are levels, not counters (``CurrEstab``, ``MaxConn``, ...), as read in
    the second snapshot. ``wrapped`` names counters whose decrease was taken as a wrap, ``reset`` those
    whose decrease was too large to be a wrap (rate 0).
    """

    interval_s: float
    per_second: Mapping[str, float]
    gauges: Mapping[str, int] = field(default_factory=dict)
    wrapped: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()


# --- judgement --------------------------------------------------------------------------------------

Level = Literal["ok", "warning", "critical"]
Status = Literal["ok", "warning", "critical", "unreachable", "error", "interrupted"]

# Every status, in the order of the JSON summary, the history's columns and the Prometheus samples.
STATUSES: tuple[Status, ...] = ("ok", "warning", "critical", "unreachable", "error", "interrupted")
# Worst first: the order of the fleet table and of exit-code precedence.
STATUS_ORDER: tuple[Status, ...] = ("critical", "warning", "error", "unreachable", "interrupted", "ok")
# The statuses of a host that was measured (it has rates), and of one that tripped.
MEASURED: frozenset[Status] = frozenset({"ok", "warning", "critical"})
TRIPPED: frozenset[Status] = frozenset({"warning", "critical"})
NOT_MEASURED: frozenset[Status] = frozenset({"unreachable", "error", "interrupted"})

# The headline rates: the reset rates every output shows, sums and records in columns of their own
# (their kernel counters are in fleetrst.measure.counters.NAMED_RATES).
HEADLINE_RATES: tuple[str, ...] = (
    "resets_received",
    "resets_sent",
    "estab_resets",
    "listen_overflows",
    "listen_drops",
)


@dataclass(frozen=True)
class Threshold:
    """A metric's limits in events per second; ``None`` means that level is not checked."""

    warning: float | None = None
    critical: float | None = None


@dataclass(frozen=True)
class Trip:
    """One metric over one limit."""

    metric: str
    level: Literal["warning", "critical"]
    value: float
    limit: float
    rule: Literal["threshold", "spike"] = "threshold"
    baseline: float | None = None  # with the spike rule: the baseline rate the limit came from

    def describe(self) -> str:
        level = " (critical)" if self.level == "critical" else ""
        if self.rule == "spike":
            return f"{self.metric} {self.value:.1f}/s > 10×max(5, {self.baseline or 0:.1f}) spike{level}"
        return f"{self.metric} {self.value:.1f}/s > {self.limit:g}{level}"


@dataclass(frozen=True)
class Verdict:
    level: Level
    tripped: tuple[Trip, ...] = ()


# --- outcome ----------------------------------------------------------------------------------------

ErrorKind = Literal[
    "refused",
    "timeout",
    "lost",
    "no_route",
    "dns",
    "host_key",
    "auth",
    "parse",
    "output_cap",
    "rebooted",
    "command",
    "config",
    "interrupted",
    "internal",
]


@dataclass(frozen=True)
class HostResult:
    """One host's outcome. A failure is a value: ``status`` says which, ``error`` says what."""

    host: str
    address: str
    groups: tuple[str, ...]
    status: Status
    error: str | None = None
    error_kind: ErrorKind | None = None
    rates: Rates | None = None
    baseline: Rates | None = None  # with --baseline: the rates over the earlier interval
    tripped: tuple[Trip, ...] = ()
    investigation: Investigation | None = None
    elapsed_s: float = 0.0  # controller wall time spent on this host, connect to close

    @property
    def interval_s(self) -> float | None:
        return self.rates.interval_s if self.rates else None


@dataclass(frozen=True)
class FleetReport:
    """A whole sweep: what was asked, and every host's result."""

    hosts: tuple[HostResult, ...]
    started_at: str  # ISO 8601, UTC
    duration_s: float
    window_s: float
    baseline_s: float | None = None
    pattern: str = "all"
    limit: str | None = None
    inventories: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()  # what the hosts' investigations show together
    interrupted_by: str | None = None  # "SIGINT" or "SIGTERM" when the sweep was stopped early

    def count(self, status: Status) -> int:
        return sum(1 for h in self.hosts if h.status == status)

    @property
    def exit_code(self) -> int:
        """Nagios-style: 2 some critical, 1 some warning, 3 some host not measured (and none warned),
        0 all OK. A sweep stopped by SIGINT or SIGTERM exits 130 or 143, whatever the hosts showed."""
        if self.interrupted_by:
            return EXIT_INTERRUPTED.get(self.interrupted_by, 130)
        statuses = {h.status for h in self.hosts}
        if "critical" in statuses:
            return EXIT_CRITICAL
        if "warning" in statuses:
            return EXIT_WARNING
        if statuses & NOT_MEASURED:
            return EXIT_UNKNOWN
        return EXIT_OK


# --- recorded audits (what the history store hands back) --------------------------------------------


@dataclass(frozen=True)
class SweepRow:
    """One recorded sweep."""

    id: int
    started_at: str
    started_ts: float
    duration_s: float
    window_s: float
    pattern: str
    inventories: tuple[str, ...]
    rules: str
    exit_code: int
    interrupted_by: str | None
    counts: Mapping[str, int]  # hosts, ok, warning, critical, unreachable, error, interrupted


@dataclass(frozen=True)
class HostRow:
    """One host in one recorded sweep. ``rates`` is None when the host was not measured; a rate not
    in it was 0 (only non-zero rates are stored)."""

    sweep_id: int
    started_at: str
    started_ts: float
    host: str
    groups: tuple[str, ...]
    status: str
    error: str | None
    rates: Mapping[str, float] | None
    tripped: tuple[Mapping[str, Any], ...] = ()
    causes: tuple[str, ...] = ()

    @property
    def is_tripped(self) -> bool:
        return self.status in TRIPPED

    def rate(self, metric: str) -> float | None:
        return None if self.rates is None else float(self.rates.get(metric, 0.0))

    def tripped_text(self) -> str:
        return "; ".join(
            f"{t.get('metric')} {float(t.get('value') or 0):.1f}/s"
            + (" (critical)" if t.get("level") == "critical" else "")
            for t in self.tripped
        )
