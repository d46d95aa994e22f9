"""Kernel TCP counters: parse them by name, and turn two readings into per-second rates.

Pure: text and numbers in, values out. One small function per kernel file (the psutil habit): fields are
found by the header row's names, never by position, because kernels add, drop and reorder fields;
unknown fields are kept. Text that is not what the file should be raises :class:`ProbeParseError`
naming the file and the line.

Rates follow Netdata: the interval is the host's own clock (``/proc/uptime``), a counter that goes down
is a wrap only when the wrapped delta is small next to the counter's width (less than 10 % of it, as
Netdata's ``MAX_INCREMENTAL_PERCENT_RATE``), otherwise the counter was reset and its rate is 0.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import sub

from ..model import NameIndex, Packed, PackedRates, Rates, Snapshot, names_of, packed_ints, picker

SNMP_PATH = "/proc/net/snmp"
NETSTAT_PATH = "/proc/net/netstat"
UPTIME_PATH = "/proc/uptime"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"

# Levels, not counters: reported as read in the second snapshot, never as rates.
GAUGES: frozenset[str] = frozenset({"RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "CurrEstab"})
# The one signed field of the Tcp line (-1: no limit). Every other value is an unsigned long.
SIGNED_FIELDS: frozenset[str] = frozenset({"MaxConn"})

# Friendly name -> kernel counter. "resets_received" is AttemptFails, exactly as Netdata's
# tcp_resets.conf defines it (SYN-SENT/SYN-RECV -> CLOSED: refused connects, but also SYN timeouts).
NAMED_RATES: dict[str, str] = {
    "resets_received": "AttemptFails",
    "resets_sent": "OutRsts",
    "estab_resets": "EstabResets",
    "listen_overflows": "ListenOverflows",
    "listen_drops": "ListenDrops",
    "aborts_on_data": "TCPAbortOnData",
    "aborts_on_close": "TCPAbortOnClose",
    "aborts_on_memory": "TCPAbortOnMemory",
    "aborts_on_timeout": "TCPAbortOnTimeout",
    "aborts_on_linger": "TCPAbortOnLinger",
    "aborts_failed": "TCPAbortFailed",
    "memory_pressures": "TCPMemoryPressures",
    "req_q_full_drops": "TCPReqQFullDrop",
    "challenge_acks": "TCPChallengeACK",
}

# Netdata takes a decrease as a wrap only when the wrapped delta is under 10 % of the counter's range.
WRAP_FRACTION = 0.10

_U64_MAX = 2**64 - 1
_S64_MIN = -(2**63)
_S64_MAX = 2**63 - 1
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_INT = re.compile(r"-?[0-9]{1,20}")
_UPTIME = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,9})?")
_BOOT_ID = re.compile(r"[0-9A-Fa-f-]{1,64}")
_SHOWN = 40  # characters of offending text quoted in an error


class ProbeParseError(ValueError):
    """Text that is not what a kernel file (or the probe's framing) should be. One line, says where."""

    def __init__(self, reason: str, path: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        if self.path is None:
            return self.reason
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        return f"could not parse {where}: {self.reason}"


class MeasureError(ProbeParseError):
    """Two snapshots that cannot give rates (a reboot between them, an interval that is not positive).

    A kind of :class:`ProbeParseError`: the host's output, though well-formed, does not hold together.
    """


class RebootedError(MeasureError):
    """The host's boot_id changed between the samples: its counters restarted from zero."""


def shown(text: str) -> str:
    """Offending text for an error message: quoted, one line, bounded."""
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "…"
    return repr(text)


def _lines(text: str) -> list[tuple[int, str]]:
    # Only "\n" splits: str.splitlines() would also split on \x0b, \x1c, \u2028 ... and shift line numbers.
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), start=1)]


def _parse_pair(text: str, prefix: str, path: str) -> dict[str, int]:
    """The ``prefix`` header line and the value line that follows it, as a mapping by name."""
    tag = prefix + ":"
    found = [
        (number, line)
        for number, line in _lines(text)
        if line.startswith(tag) and line.split(" ", 1)[0] == tag
    ]
    if not found:
        raise ProbeParseError(f'no "{tag}" header line', path)
    if len(found) == 1:
        raise ProbeParseError(f'"{tag}" header line has no value line after it', path, found[0][0])
    if len(found) > 2:
        raise ProbeParseError(f'more than two "{tag}" lines', path, found[2][0])
    (head_no, head), (value_no, values) = found
    if value_no != head_no + 1:
        raise ProbeParseError(f'"{tag}" value line does not follow its header line', path, value_no)
    names = _HEADS.get(head)
    if names is None:
        names = _header_names(head, tag, path, head_no)
    numbers = values.split()[1:]
    if len(names) != len(numbers):
        raise ProbeParseError(f"{len(names)} names but {len(numbers)} values", path, value_no)
    plain = plain_counters(names, numbers)
    if plain is not None:
        return plain
    counters: dict[str, int] = {}
    for name, number in zip(names, numbers, strict=True):
        if name in counters:
            raise ProbeParseError(f"duplicate field {name}", path, head_no)
        counters[name] = _parse_value(name, number, path, value_no)
    return counters


def plain_values(names: tuple[str, ...], numbers: list[str]) -> list[int] | None:
    """The fast path of a value line (a sweep reads ~300 values a host): the values, in order, when
    they are plain ASCII digits, none past 20 of them, each in its field's range, the signed field
    (MaxConn, -1 on every Linux) with a minus sign allowed; None for anything else, which is then read
    value by value, to the same values or to the error that says what is wrong. ``names``: distinct,
    as many as ``numbers``, which are the tokens ``str.split()`` gives (none empty)."""
    joined = "".join(numbers)
    longest = max(map(len, numbers), default=0)
    if not joined.isascii() or longest > 21:
        return None
    if not joined.isdigit():
        # Only a signed field may have a sign: "-" and at most 20 digits, as _INT takes it.
        unsigned = [
            number[1:] if number[:1] == "-" and name in SIGNED_FIELDS else number
            for name, number in zip(names, numbers, strict=True)
        ]
        if not "".join(unsigned).isdigit() or min(map(len, unsigned)) < 1 or max(map(len, unsigned)) > 20:
            return None
    elif longest > 20:
        return None
    ints = list(map(int, numbers))
    if max(ints, default=0) > _S64_MAX and (max(ints) > _U64_MAX or not SIGNED_FIELDS.isdisjoint(names)):
        return None  # past 2**64 - 1, or maybe a signed field past its range: value by value
    if min(ints, default=0) < _S64_MIN:
        return None
    return ints


def plain_counters(names: tuple[str, ...], numbers: list[str]) -> dict[str, int] | None:
    """:func:`plain_values` by name."""
    ints = plain_values(names, numbers)
    return None if ints is None else dict(zip(names, ints, strict=True))


# Header lines already checked, with their names: a fleet's kernels print a handful of distinct ones.
_HEADS: dict[str, tuple[str, ...]] = {}
_HEADS_KEPT = 256


def _header_names(head: str, tag: str, path: str, head_no: int) -> tuple[str, ...]:
    names = head.split()[1:]
    if not names:
        raise ProbeParseError(f'"{tag}" header line names no fields', path, head_no)
    for name in names:
        if not _NAME.fullmatch(name):
            raise ProbeParseError(f"{shown(name)} is not a counter name", path, head_no)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ProbeParseError(f"duplicate field {name}", path, head_no)
        seen.add(name)
    if len(_HEADS) >= _HEADS_KEPT:  # not a fleet's kernels: some host's garbage; start afresh
        _HEADS.clear()
    _HEADS[head] = found = tuple(sys.intern(name) for name in names)
    return found


def _parse_value(name: str, number: str, path: str, line: int) -> int:
    # Fast path first (a sweep parses ~150 values a sample): plain ASCII digits, at most 20.
    if number.isascii() and number.isdigit() and len(number) <= 20:
        value = int(number)
        if value <= _U64_MAX and name not in SIGNED_FIELDS:
            return value
    if not _INT.fullmatch(number):
        raise ProbeParseError(f"{name} is {shown(number)}, not an integer", path, line)
    value = int(number)
    low, high = (_S64_MIN, _S64_MAX) if name in SIGNED_FIELDS else (0, _U64_MAX)
    if not low <= value <= high:
        kind = "a signed long" if name in SIGNED_FIELDS else "an unsigned long"
        raise ProbeParseError(f"{name} is {number}, out of range for {kind}", path, line)
    return value


def parse_snmp(text: str) -> dict[str, int]:
    """``/proc/net/snmp``: the ``Tcp:`` counters by name (``MaxConn`` may be -1)."""
    return _parse_pair(text, "Tcp", SNMP_PATH)


def parse_netstat(text: str) -> dict[str, int]:
    """``/proc/net/netstat``: the ``TcpExt:`` counters by name."""
    return _parse_pair(text, "TcpExt", NETSTAT_PATH)


def _only_line(text: str, path: str) -> tuple[int, str]:
    filled = [(number, line.strip()) for number, line in _lines(text) if line.strip()]
    if not filled:
        raise ProbeParseError("empty", path)
    if len(filled) > 1:
        raise ProbeParseError(f"more than one line: {shown(filled[1][1])}", path, filled[1][0])
    return filled[0]


def parse_uptime(text: str) -> float:
    """``/proc/uptime``: seconds since boot, the first field (the second, idle time, is ignored)."""
    number, line = _only_line(text, UPTIME_PATH)
    first = line.split()[0]
    if not _UPTIME.fullmatch(first):
        raise ProbeParseError(f"{shown(first)} is not a number of seconds", UPTIME_PATH, number)
    return float(first)


def parse_boot_id(text: str) -> str:
    """``/proc/sys/kernel/random/boot_id``: the UUID that changes at every boot."""
    number, line = _only_line(text, BOOT_ID_PATH)
    if not _BOOT_ID.fullmatch(line):
        raise ProbeParseError(f"{shown(line)} is not a boot id", BOOT_ID_PATH, number)
    return line.lower()


def _delta(before: int, after: int) -> tuple[int, str | None]:
    """How far a counter moved, and ``"wrapped"``/``"reset"`` when it went down."""
    if after >= before:
        return after - before, None
    for bits in (32, 64):  # a 32-bit kernel's unsigned long first, while the earlier value fits in it
        span = 2**bits
        if before < span and after < span:
            wrapped = span - before + after
            if wrapped < span * WRAP_FRACTION:
                return wrapped, "wrapped"
    return 0, "reset"


def measure_rates(before: Snapshot, after: Snapshot) -> Rates:
    """Per-second rates between two snapshots of one host, over the host's own uptime interval.

    Every monotonic ``Tcp``/``TcpExt`` counter present in both snapshots gets a rate under its kernel
    name; the gauges go to ``Rates.gauges`` (second snapshot); the :data:`NAMED_RATES` are added when
    their kernel counter is there (absent, not 0, when it is not). A ``TcpExt`` name that also exists on
    the ``Tcp`` line is kept as ``TcpExt.<name>`` (no kernel has one today). The rates and gauges are
    packed mappings (:class:`~fleetrst.model.PackedRates`, :class:`~fleetrst.model.Packed`) in that
    order: a sweep keeps every host's until its report.
    """
    if before.boot_id != after.boot_id:
        raise RebootedError("rebooted during the window")
    interval = after.uptime_s - before.uptime_s
    if not math.isfinite(interval) or interval <= 0:
        raise MeasureError(
            f"the host's uptime went from {before.uptime_s:g}s to {after.uptime_s:g}s: "
            "no positive interval between the samples"
        )
    packed = _packed_rates(before, after, interval)
    if packed is not None:
        return packed
    counts: dict[str, int] = {}  # what each counter counted in the interval: its rate over the interval
    gauges: dict[str, int] = {}
    wrapped: list[str] = []
    reset: list[str] = []
    sections: tuple[tuple[str, Mapping[str, int], Mapping[str, int]], ...] = (
        ("Tcp", before.tcp, after.tcp),
        ("TcpExt", before.tcpext, after.tcpext),
    )
    for section, old, new in sections:
        for name, value in new.items():
            key = name
            if section == "TcpExt" and (name in before.tcp or name in after.tcp):
                key = f"TcpExt.{name}"
            if section == "Tcp" and name in GAUGES:
                gauges[key] = value
                continue
            if name not in old:
                continue
            delta, change = _delta(old[name], value)
            counts[key] = delta
            if change == "wrapped":
                wrapped.append(key)
            elif change == "reset":
                reset.append(key)
    for friendly, kernel in NAMED_RATES.items():
        if kernel in counts:
            counts[friendly] = counts[kernel]
    return Rates(
        interval_s=interval,
        per_second=PackedRates.of_counts(counts, interval),  # each rate is count / interval, as read
        gauges=Packed.of_ints(gauges),
        wrapped=tuple(wrapped),
        reset=tuple(reset),
    )


@dataclass(frozen=True)
class _RatesPlan:
    """What :func:`measure_rates` makes of two samples of one layout, by position: the names of the
    counts it gives and where each comes from, the gauges and theirs (see :func:`_packed_rates`)."""

    tcp_counted: Callable[[Sequence[int]], Sequence[int]]  # the Tcp counters' deltas, gauges left out
    counts: NameIndex  # the counts' names: Tcp's counters, TcpExt's, then the named rates
    named: Callable[[Sequence[int]], Sequence[int]] | None  # the named rates' counts, from the counts
    gauges: NameIndex
    gauge_of: Callable[[Sequence[int]], Sequence[int]]  # the gauges' values, from the Tcp values


_PLANS: dict[tuple[NameIndex, NameIndex], _RatesPlan | None] = {}
_PLANS_KEPT = 64


def _plan(tcp: NameIndex, tcpext: NameIndex) -> _RatesPlan | None:
    """The plan for samples of these layouts, as the loop of :func:`measure_rates` would name things;
    None where it would not be plain (a friendly name that is also a kernel's)."""
    key = (tcp, tcpext)
    if key in _PLANS:
        return _PLANS[key]
    in_tcp = set(tcp.names)
    counted = [position for position, name in enumerate(tcp.names) if name not in GAUGES]
    names = [tcp.names[position] for position in counted]
    names += [f"TcpExt.{name}" if name in in_tcp else name for name in tcpext.names]
    where = {name: position for position, name in enumerate(names)}
    named = [(friendly, where[kernel]) for friendly, kernel in NAMED_RATES.items() if kernel in where]
    plan = None
    if not any(friendly in where for friendly, _ in named):
        gauge_at = [position for position, name in enumerate(tcp.names) if name in GAUGES]
        plan = _RatesPlan(
            tcp_counted=picker(counted),
            counts=names_of(names + [friendly for friendly, _ in named]),
            named=picker([position for _, position in named]) if named else None,
            gauges=names_of(tcp.names[position] for position in gauge_at),
            gauge_of=picker(gauge_at),
        )
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _packed_rates(before: Snapshot, after: Snapshot, interval: float) -> Rates | None:
    """The cheap path of :func:`measure_rates`, for two packed samples of one layout (what the probe's
    cheap parser reads) where no counter went down: the same rates, by position, not by name. None
    for anything else (then the loop by name takes it, and tells wraps and resets)."""
    old_tcp, new_tcp, old_ext, new_ext = before.tcp, after.tcp, before.tcpext, after.tcpext
    if not (
        isinstance(old_tcp, Packed)
        and isinstance(new_tcp, Packed)
        and isinstance(old_ext, Packed)
        and isinstance(new_ext, Packed)
        and old_tcp.names is new_tcp.names
        and old_ext.names is new_ext.names
    ):
        return None
    plan = _plan(new_tcp.names, new_ext.names)
    if plan is None:
        return None
    tcp_values = new_tcp.packed_values
    counts = [
        *plan.tcp_counted(list(map(sub, tcp_values, old_tcp.packed_values))),
        *map(sub, new_ext.packed_values, old_ext.packed_values),
    ]
    if counts and min(counts) < 0:
        return None  # a wrap or a reset: the loop by name says which
    if plan.named is not None:
        counts += plan.named(counts)
    return Rates(
        interval_s=interval,
        per_second=PackedRates(plan.counts, packed_ints(counts), interval),
        gauges=Packed(plan.gauges, packed_ints(plan.gauge_of(tcp_values))),
        wrapped=(),
        reset=(),
    )


def packed_snapshot(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with its counters packed (:class:`~fleetrst.model.Packed`): the same mappings in
    about a tenth of the memory, for a sample kept after it is measured (a sweep keeps every host's
    last one until its report)."""
    if isinstance(snapshot.tcp, Packed) and isinstance(snapshot.tcpext, Packed):
        return snapshot
    return replace(snapshot, tcp=Packed.of_ints(snapshot.tcp), tcpext=Packed.of_ints(snapshot.tcpext))
