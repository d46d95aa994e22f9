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
from collections.abc import Mapping
from dataclasses import replace

from ..model import Packed, PackedRates, Rates, Snapshot

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
    # Fast path (a sweep reads ~300 values a host): all plain ASCII digits, none past 20 of them or
    # 2**64 - 1, and no signed field past its range. Anything else is read value by value below.
    joined = "".join(numbers)
    if joined.isascii() and joined.isdigit() and max(map(len, numbers), default=0) <= 20:
        ints = list(map(int, numbers))
        if max(ints, default=0) <= _S64_MAX or (
            max(ints) <= _U64_MAX and not any(name in SIGNED_FIELDS for name in names)
        ):
            return dict(zip(names, ints, strict=True))
    counters: dict[str, int] = {}
    for name, number in zip(names, numbers, strict=True):
        if name in counters:
            raise ProbeParseError(f"duplicate field {name}", path, head_no)
        counters[name] = _parse_value(name, number, path, value_no)
    return counters


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


def packed_snapshot(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with its counters packed (:class:`~fleetrst.model.Packed`): the same mappings in
    about a tenth of the memory, for a sample kept after it is measured (a sweep keeps every host's
    last one until its report)."""
    if isinstance(snapshot.tcp, Packed) and isinstance(snapshot.tcpext, Packed):
        return snapshot
    return replace(snapshot, tcp=Packed.of_ints(snapshot.tcp), tcpext=Packed.of_ints(snapshot.tcpext))
