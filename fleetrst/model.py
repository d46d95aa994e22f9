"""The values that flow through fleetrst, from inventory to report.

Everything here is plain data: frozen dataclasses with no I/O. Every other module may read this one.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

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

# A sweep keeps every host's result until its report: its last sample's ~150 counters and its ~160
# rates. As dicts they cost ~20 KB a host (a hash table, a float or int object a value, and the
# host's own copy of every counter name); packed, ~3 KB: the names once per kernel layout, shared by
# every host with that layout, and the values in an array of machine numbers.

_V = TypeVar("_V", int, float)

_NAMES_KEPT = 256  # distinct layouts remembered (a fleet has a handful: one per kernel version)


class NameIndex:
    """Names in order with their positions: one kernel layout's, shared by every mapping over it.

    Get one with :func:`names_of`, which hands back the one already made for the same names (and
    pickles as that call: a receiving process shares its own).
    """

    __slots__ = ("index", "names")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.index = {name: position for position, name in enumerate(names)}

    def __reduce__(self) -> tuple[Any, ...]:
        return names_of, (self.names,)

    def __repr__(self) -> str:
        return f"names_of({self.names!r})"


_names: dict[tuple[str, ...], NameIndex] = {}


def picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at ``positions`` of a sequence, as a tuple whatever their number: one C call
    (``itemgetter``) for two or more, which alone returns a bare value for one."""
    if len(positions) >= 2:
        return itemgetter(*positions)
    if positions:
        (position,) = positions
        return lambda values: (values[position],)
    return lambda values: ()


def names_of(names: Iterable[str]) -> NameIndex:
    """The shared :class:`NameIndex` of ``names`` (made, its names interned, the first time they are seen)."""
    key = names if isinstance(names, tuple) else tuple(names)
    found = _names.get(key)
    if found is None:
        if len(set(key)) != len(key):
            raise ValueError("duplicate names")
        if len(_names) >= _NAMES_KEPT:  # not a fleet's layouts: some host's garbage; start afresh
            _names.clear()
        key = tuple(sys.intern(name) for name in key)
        found = _names[key] = NameIndex(key)
    return found


def _int_range(code: str) -> tuple[str, int, int]:
    bits = 8 * array(code).itemsize
    return (code, 0, 2**bits - 1) if code.isupper() else (code, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


# Integer arrays, narrowest first (unsigned, then signed), with the least and most each holds.
_INT_CODES: tuple[tuple[str, int, int], ...] = tuple(
    map(_int_range, ("B", "H", "I", "Q", "b", "h", "i", "q"))
)


def packed_ints(values: Sequence[int]) -> Sequence[int]:
    """Integers as the narrowest array that holds them all (a 0 to 255 a byte, a 64-bit counter 8);
    a tuple for integers no array holds (a value past 2**63 beside a negative one)."""
    if not values:
        return array("B")
    low, high = min(values), max(values)
    for code, least, most in _INT_CODES:
        if least <= low and high <= most:
            return array(code, values)
    return tuple(values)


class Packed(Mapping[str, _V]):
    """A read-only mapping of names to numbers, packed: shared :class:`NameIndex` and an array of values.

    It behaves as the dict it replaces: iteration in the order the names were given, ``in``, ``get``,
    ``items()``, equality with any mapping of the same items (a dict included), ``repr`` as the dict's;
    it pickles as its names (shared within one pickle, and again in the process that reads it) and
    the array's bytes.
    """

    __slots__ = ("_names", "_values")

    def __init__(self, names: NameIndex, values: Sequence[Any]) -> None:
        if len(values) != len(names.names):
            raise ValueError(f"{len(values)} values for {len(names.names)} names")
        self._names = names
        self._values = values

    @staticmethod
    def of_ints(items: Mapping[str, int]) -> Packed[int]:
        """``items`` packed, in their order, in the narrowest array that holds them."""
        return Packed(names_of(tuple(items)), packed_ints(tuple(items.values())))

    @property
    def names(self) -> NameIndex:
        """The shared names, in order: two mappings over one layout have the very same object."""
        return self._names

    @property
    def packed_values(self) -> Sequence[Any]:
        """The values as stored, in the names' order (an array, or a tuple of what no array holds)."""
        return self._values

    def _value(self, position: int) -> _V:
        return self._values[position]  # type: ignore[no-any-return]

    def _iter_values(self) -> Iterator[_V]:
        return iter(self._values)

    def __getitem__(self, key: str) -> _V:
        return self._value(self._names.index[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.names)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._names.index

    @overload
    def get(self, key: str, /) -> _V | None: ...
    @overload
    def get(self, key: str, default: _V, /) -> _V: ...
    @overload
    def get(self, key: str, default: Any, /) -> Any: ...
    def get(self, key: str, default: Any = None, /) -> Any:
        position = self._names.index.get(key)
        return default if position is None else self._value(position)

    def items(self) -> ItemsView[str, _V]:
        return _PackedItems(self)

    def values(self) -> ValuesView[_V]:
        return _PackedValues(self)

    def _same_packing(self, other: Packed[Any]) -> bool:
        return (
            type(other) is type(self)
            and other._names is self._names
            and isinstance(self._values, array)
            and isinstance(other._values, array)
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Packed) and self._same_packing(other):
            return self._values == other._values
        if not isinstance(other, Mapping):
            return NotImplemented
        return len(self) == len(other) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self._names, self._values)


class PackedRates(Packed[float]):
    """Per-second rates packed as what each counter counted over one interval: integers, in the
    narrowest array that holds them (a window's counts fit in 2 or 4 bytes where a double takes 8).
    A rate is ``count / interval_s``, computed when read: the very division that made it, so the same
    float to the last bit."""

    __slots__ = ("_interval",)

    def __init__(self, names: NameIndex, counts: Sequence[int], interval_s: float) -> None:
        super().__init__(names, counts)
        self._interval = interval_s

    @staticmethod
    def of_counts(counts: Mapping[str, int], interval_s: float) -> PackedRates:
        """The rates of ``counts`` (by name, in order) over ``interval_s`` seconds."""
        return PackedRates(names_of(tuple(counts)), packed_ints(tuple(counts.values())), interval_s)

    def _value(self, position: int) -> float:
        return self._values[position] / self._interval  # type: ignore[no-any-return]

    def rate_of(self, count: int) -> float:
        """The rate a stored count stands for: the division every read of it makes."""
        return count / self._interval

    def _iter_values(self) -> Iterator[float]:
        return map(self._interval.__rtruediv__, self._values)  # count / interval, each

    def _same_packing(self, other: Packed[Any]) -> bool:
        return super()._same_packing(other) and other._interval == self._interval  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple[Any, ...]:
        return PackedRates, (self._names, self._values, self._interval)


class _PackedItems(ItemsView[str, _V]):
    _mapping: Packed[_V]

    def __iter__(self) -> Iterator[tuple[str, _V]]:
        packed = self._mapping
        return zip(packed._names.names, packed._iter_values(), strict=True)


class _PackedValues(ValuesView[_V]):
    _mapping: Packed[_V]

    def __iter__(self) -> Iterator[_V]:
        return self._mapping._iter_values()


@dataclass(frozen=True)
class Snapshot:
    """One reading of a host's TCP counters (one network namespace), as the kernel printed them.

    The counters are mappings by name: dicts as the full parser reads them, or packed
    (:class:`Packed`) as its cheap path for a known layout reads them and as a sweep keeps a result's
    last sample (:func:`fleetrst.measure.counters.packed_snapshot`): the same mapping, in less memory.
    """

    tcp: Mapping[str, int]  # /proc/net/snmp, the "Tcp:" line, by name
    tcpext: Mapping[str, int]  # /proc/net/netstat, the "TcpExt:" line, by name
    uptime_s: float  # /proc/uptime, first field: the host's own clock for the interval
    boot_id: str  # /proc/sys/kernel/random/boot_id
    # The network namespace's identity, when the probe can tell it (a container's: inode + holder pid +
    # its start time). None for the host's own namespace: it is not recreated without a reboot, so
    # boot_id covers it.
    netns: str | None = None


@dataclass(frozen=True)
class Rates:
    """Per-second rates between two snapshots over the host's own interval.

    ``per_second`` holds every monotonic counter under its kernel name (``AttemptFails``,
    ``TCPAbortOnData``, ...) and the named rates (``resets_received``, ``resets_sent``, ...).
    ``gauges`` holds values that are levels, not counters (``CurrEstab``, ``MaxConn``, ...), as read in
    the second snapshot. ``wrapped`` names counters whose decrease was taken as a wrap, ``reset`` those
    whose decrease was too large to be a wrap (rate 0). :func:`~fleetrst.measure.counters.measure_rates`
    gives them packed (:class:`PackedRates`, :class:`Packed`): a sweep keeps every host's until its
    report.
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
    "worker_lost",  # the worker process or Dask worker sweeping the host went away (fleetrst.scale)
]


# Why a host has no counts since its previous audit.
SinceLastReason = Literal[
    "first_audit",  # no earlier recorded counters of this host (or they were pruned)
    "rebooted",  # boot_id changed: the counters restarted from zero
    "namespace_changed",  # the network namespace's identity changed: another set of counters
    "counters_reset",  # a counter went backwards: reset, or the namespace was recreated
    "uptime",  # the host's uptime did not increase since the previous sample
    "not_measured",  # this audit could not measure the host
    "config",  # the host's interval thresholds cannot be used
]


@dataclass(frozen=True)
class SinceLast:
    """What a host's kernel counted between its previous recorded audit and this one.

    From the previous audit's last sample to this audit's last sample, over the host's own uptime:
    ``counts`` holds every counter that moved (kernel names) and the named counts (``resets_sent``,
    ...; 0 included), ``rates`` the same as averages per second. ``tripped`` are the averages over
    their interval thresholds; ``note`` says what that means when the window itself was quiet.
    """

    from_at: str  # the previous audit's start, ISO 8601 UTC
    from_sweep: int | None
    interval_s: float
    counts: Mapping[str, int]
    rates: Mapping[str, float]
    tripped: tuple[Trip, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class SinceLastMissing:
    """No usable previous audit for a host: why (never a negative or invented number)."""

    reason: SinceLastReason
    detail: str


@dataclass(frozen=True)
class NamespaceResult:
    """One network namespace of a host other than the host's own (a container, a pod, an ``ip netns``):
    its rates and verdict, judged like a host's, or ``error`` with why it could not be measured.

    Identity across samples and audits is ``key``: the namespace's inode, its holder's pid and that
    pid's start time (inodes are reused). ``runtime`` and ``name`` say what the operator calls it:
    ``kubernetes`` ``shop/cart-7d9f``, ``docker`` ``web``, ``runc`` ``storm``, ``netns`` ``blue``, or
    ``unknown`` ``netns:<inode> (<pid> <comm>)``.
    """

    inode: int
    pid: int
    start_ticks: int  # the holder's start time, field 22 of /proc/<pid>/stat (0: unknown)
    runtime: str
    name: str
    status: Literal["ok", "warning", "critical", "error"]
    error: str | None = None
    rates: Rates | None = None
    tripped: tuple[Trip, ...] = ()
    processes: int = 0  # processes seen in it (0: held only by a bind mount)
    binds: tuple[str, ...] = ()  # its bind mounts (/run/netns/NAME, /run/docker/netns/ID)

    @property
    def key(self) -> str:
        return f"{self.inode}:{self.pid}:{self.start_ticks}"


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
    # The last sample the rates came from: an audit records it, and the next audit counts from it.
    snapshot: Snapshot | None = field(default=None, repr=False)
    # Since the host's previous recorded audit (an audit fills it in; None when no history was read).
    since_last: SinceLast | SinceLastMissing | None = None
    # Every other network namespace of the host (--containers): None when not looked at; and what
    # could not be seen, and why (not root, sudo refused, more namespaces than read).
    namespaces: tuple[NamespaceResult, ...] | None = None
    namespaces_unseen: tuple[str, ...] = ()

    @property
    def interval_s(self) -> float | None:
        return self.rates.interval_s if self.rates else None

    @property
    def interval(self) -> SinceLast | None:
        """The usable counts since the previous audit, or None."""
        return self.since_last if isinstance(self.since_last, SinceLast) else None

    @property
    def interval_level(self) -> Level:
        """The worst level the averages since the previous audit tripped (``ok`` when none or unknown)."""
        interval = self.interval
        if interval is None or not interval.tripped:
            return "ok"
        return "critical" if any(t.level == "critical" for t in interval.tripped) else "warning"

    @property
    def tripped_between_only(self) -> bool:
        """Tripped between audits, not in its window: what it did was not there to be seen live."""
        return self.status == "ok" and self.interval_level != "ok"

    @property
    def all_clear(self) -> bool:
        """OK in its window and between audits, and so are its containers: nothing to show with ``-q``."""
        return self.status == "ok" and self.interval_level == "ok" and self.namespace_level == "ok"

    @property
    def namespace_level(self) -> Level:
        """The worst level any of its other namespaces (containers) tripped; ``ok`` when none did."""
        levels = {n.status for n in self.namespaces or ()}
        return "critical" if "critical" in levels else "warning" if "warning" in levels else "ok"


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
        0 all OK; a host's averages since its previous audit count as its window does (a critical
        interval makes 2, a warning one 1). A sweep stopped by SIGINT or SIGTERM exits 130 or 143,
        whatever the hosts showed."""
        if self.interrupted_by:
            return EXIT_INTERRUPTED.get(self.interrupted_by, 130)
        # A trip between audits counts at its level, like one in the window.
        statuses: set[str] = {h.status for h in self.hosts} | {h.interval_level for h in self.hosts}
        # A container that trips counts like a host (its host's own row may be quiet).
        statuses |= {n.status for h in self.hosts for n in h.namespaces or () if n.status in TRIPPED}
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
    interval_s: float | None = None  # the window, by the host's clock
    # Since the host's previous audit: ``since_counts`` None when there was no usable interval
    # (``since_reason`` says why); a named count not in it was 0.
    since_from_ts: float | None = None  # the previous audit's start, Unix seconds
    since_s: float | None = None
    since_counts: Mapping[str, int] | None = None
    since_tripped: tuple[Mapping[str, Any], ...] = ()
    since_reason: str | None = None

    @property
    def is_tripped(self) -> bool:
        return self.status in TRIPPED

    @property
    def is_interval_tripped(self) -> bool:
        return bool(self.since_tripped)

    @property
    def quiet_but_tripped_between(self) -> bool:
        """Quiet in its window, yet over an interval threshold since its previous audit."""
        return self.status == "ok" and self.is_interval_tripped

    def rate(self, metric: str) -> float | None:
        return None if self.rates is None else float(self.rates.get(metric, 0.0))

    def since_count(self, metric: str) -> int | None:
        """How many ``metric`` events the kernel counted since the previous audit (None: unknown)."""
        return None if self.since_counts is None else int(self.since_counts.get(metric, 0))

    def since_rate(self, metric: str) -> float | None:
        """``metric``'s average per second since the previous audit (None: unknown)."""
        count = self.since_count(metric)
        if count is None or not self.since_s:
            return None
        return count / self.since_s

    def tripped_text(self) -> str:
        return "; ".join(
            f"{t.get('metric')} {float(t.get('value') or 0):.1f}/s"
            + (" (critical)" if t.get("level") == "critical" else "")
            for t in self.tripped
        )

    def since_tripped_text(self) -> str:
        return "; ".join(
            f"{t.get('metric')} {float(t.get('value') or 0):.1f}/s on average"
            + (" (critical)" if t.get("level") == "critical" else "")
            for t in self.since_tripped
        )


RollupPeriod = Literal["hour", "day"]


@dataclass(frozen=True)
class RollupRow:
    """A host's audits of one hour or one day, rolled up when they aged past ``keep``.

    An audit belongs to the period its sweep started in, and so does its interval (the time since the
    host's previous audit), whole. ``counts`` sums the named counts of the usable intervals (over
    ``interval_s`` seconds of them); ``peaks`` holds the highest window rate per named rate, and
    ``interval_peaks`` the highest interval average.
    """

    host: str
    period: RollupPeriod
    start_ts: float
    audits: int
    measured: int
    tripped: int  # audits whose window warned or was critical
    critical: int  # of them, critical
    interval_tripped: int  # audits whose interval tripped
    quiet_tripped: int  # of them, with a quiet (OK) window
    interval_s: float
    counts: Mapping[str, int] = field(default_factory=dict)
    peaks: Mapping[str, float] = field(default_factory=dict)
    interval_peaks: Mapping[str, float] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    @property
    def span_s(self) -> float:
        return 3600.0 if self.period == "hour" else 86400.0

    def merged(self, other: RollupRow) -> RollupRow:
        """This period's rollup and more audits of the same host and period, as one."""
        counts = dict(self.counts)
        for k, v in other.counts.items():
            counts[k] = counts.get(k, 0) + v
        return RollupRow(
            host=self.host,
            period=self.period,
            start_ts=self.start_ts,
            audits=self.audits + other.audits,
            measured=self.measured + other.measured,
            tripped=self.tripped + other.tripped,
            critical=self.critical + other.critical,
            interval_tripped=self.interval_tripped + other.interval_tripped,
            quiet_tripped=self.quiet_tripped + other.quiet_tripped,
            interval_s=self.interval_s + other.interval_s,
            counts=counts,
            peaks=_max_merge(self.peaks, other.peaks),
            interval_peaks=_max_merge(self.interval_peaks, other.interval_peaks),
            groups=other.groups or self.groups,
        )


def _max_merge(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    merged = dict(a)
    for k, v in b.items():
        merged[k] = max(merged.get(k, v), v)
    return merged


@dataclass(frozen=True)
class RecordedSnapshot:
    """A host's last sample as an earlier audit recorded it: what the next audit counts from."""

    sweep_id: int
    started_at: str
    snapshot: Snapshot
