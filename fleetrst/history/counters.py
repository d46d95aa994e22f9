"""How the store keeps a host's raw counters: small, exact, and readable back into a ``Snapshot``.

A sample's hundred-odd counters are stored as unsigned LEB128 varints in the order of a *layout* (the
kernel's field names, kept once per kernel in ``counter_layouts``): a 0 costs one byte, a counter in
the billions five. About 170 bytes for a quiet host, 380 for a busy one, where the same numbers as JSON
with their names take 2–3 KB. Gauges (``CurrEstab``, ``MaxConn``, ...) are not kept: an interval
counts counters only. A boot_id that is a UUID is kept as its 16 bytes.

The window's rates are kept the same way: what each counter counted in the window (rate × the
window's interval, an integer), only those that moved, as (gap in the layout, count) pairs: a few
bytes a moving counter where its rate as JSON took about 25. Read back with the interval they give
every rate exactly, the named ones (``resets_sent``, ...) included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from ..measure.counters import GAUGES, NAMED_RATES
from ..model import NameIndex, Packed, PackedRates, names_of, picker

Layout = tuple[tuple[str, ...], tuple[str, ...]]  # (Tcp names, TcpExt names), in stored order

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CorruptCounters(ValueError):
    """Stored counters that do not decode (a file edited by hand, or damaged)."""


def layout_of(tcp: Mapping[str, int], tcpext: Mapping[str, int]) -> Layout:
    if isinstance(tcp, Packed) and isinstance(tcpext, Packed):
        return _packed_layout(tcp.names, tcpext.names).layout
    return tuple(n for n in tcp if n not in GAUGES), tuple(tcpext)


class _PackedLayout:
    """A layout as a packed sample of it has it (a sweep records every host's last sample packed):
    worked out once per kernel, so that each host's is stored by position, not name by name."""

    def __init__(self, tcp: NameIndex, tcpext: NameIndex) -> None:
        counted = [position for position, name in enumerate(tcp.names) if name not in GAUGES]
        self.tcp = tcp
        self.tcpext = tcpext
        self.layout: Layout = (tuple(tcp.names[position] for position in counted), tcpext.names)
        self.keys = _keys(self.layout)
        self.counted = picker(counted)


_PACKED_LAYOUTS: dict[tuple[NameIndex, NameIndex], _PackedLayout] = {}


def _packed_layout(tcp: NameIndex, tcpext: NameIndex) -> _PackedLayout:
    found = _PACKED_LAYOUTS.get((tcp, tcpext))
    if found is None:
        if len(_PACKED_LAYOUTS) >= 64:  # a fleet has a handful of kernels
            _PACKED_LAYOUTS.clear()
        found = _PACKED_LAYOUTS[(tcp, tcpext)] = _PackedLayout(tcp, tcpext)
    return found


def layout_text(layout: Layout) -> str:
    return json.dumps({"Tcp": list(layout[0]), "TcpExt": list(layout[1])}, separators=(",", ":"))


def layout_from_text(text: str) -> Layout:
    doc = json.loads(text)
    return tuple(doc["Tcp"]), tuple(doc["TcpExt"])


def encode(values: Sequence[int]) -> bytes:
    """Unsigned LEB128, one value after another."""
    out = bytearray()
    append = out.append
    for value in values:
        if value < 0x80:
            if value < 0:
                raise ValueError(f"a counter cannot be negative: {value}")
            append(value)
            continue
        while value >= 0x80:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)
    return bytes(out)


def decode(data: bytes, count: int) -> list[int]:
    values: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 70:
                raise CorruptCounters("a counter longer than 64 bits")
            continue
        values.append(value)
        value = shift = 0
    if shift or len(values) != count:
        raise CorruptCounters(f"{len(values)} counters stored where the layout names {count}")
    return values


def encode_counters(layout: Layout, tcp: Mapping[str, int], tcpext: Mapping[str, int]) -> bytes:
    if isinstance(tcp, Packed) and isinstance(tcpext, Packed):
        packed = _packed_layout(tcp.names, tcpext.names)
        if packed.layout == layout:  # by position: the same values
            return encode([*packed.counted(tcp.packed_values), *tcpext.packed_values])
    return encode([tcp[n] for n in layout[0]] + [tcpext[n] for n in layout[1]])


def layout_names(layout: Layout) -> tuple[NameIndex, NameIndex]:
    """The layout's shared names (what :func:`decode_counters` reads by): the same objects a sweep's
    packed samples of that kernel have, so an interval between the two is counted by position."""
    return names_of(layout[0]), names_of(layout[1])


def decode_counters(names: tuple[NameIndex, NameIndex], data: bytes) -> tuple[Packed[int], Packed[int]]:
    tcp_names, tcpext_names = names
    split = len(tcp_names.names)
    values = decode(data, split + len(tcpext_names.names))
    return Packed(tcp_names, values[:split]), Packed(tcpext_names, values[split:])


def encode_boot_id(boot_id: str) -> bytes | str:
    return bytes.fromhex(boot_id.replace("-", "")) if _UUID.fullmatch(boot_id) else boot_id


def decode_boot_id(value: bytes | str) -> str:
    if isinstance(value, bytes) and len(value) == 16:
        h = value.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return value.decode() if isinstance(value, bytes) else value


def _keys(layout: Layout) -> list[str]:
    """The layout's counters under the names ``Rates`` gives them (``TcpExt.X`` when X is on both lines)."""
    tcp = set(layout[0])
    return [*layout[0], *(f"TcpExt.{n}" if n in tcp else n for n in layout[1])]


def encode_window(layout: Layout, per_second: Mapping[str, float], interval_s: float) -> bytes:
    """The window's counts of the counters that moved, as (gap, count) varint pairs in layout order."""
    flat: list[int] = []
    last = -1
    keys = _keys_of(layout, per_second)
    if keys is None:
        for index, key in enumerate(_keys(layout)):
            count = round(per_second.get(key, 0.0) * interval_s)
            if count > 0:
                flat += (index - last, count)
                last = index
        return encode(flat)
    # The rates packed in the layout's order (as measure_rates gives them for a packed sample): the
    # same rate * interval, computed only where the counter counted (a rate of 0 is never stored).
    assert isinstance(per_second, PackedRates)
    rate_of = per_second.rate_of
    for index, counted in enumerate(per_second.packed_values[: len(keys)]):
        if counted:
            count = round(rate_of(counted) * interval_s)
            if count > 0:
                flat += (index - last, count)
                last = index
    return encode(flat)


def _keys_of(layout: Layout, per_second: Mapping[str, float]) -> list[str] | None:
    """The layout's keys when ``per_second`` holds exactly them first, in order (then rates are read by
    position); None else."""
    if not isinstance(per_second, PackedRates):
        return None
    names = per_second.names
    cached = _RATE_KEYS.get(names)
    if cached is None or cached[0] != layout:
        keys = _keys(layout)
        fits = tuple(names.names[: len(keys)]) == tuple(keys)
        if len(_RATE_KEYS) >= 64:
            _RATE_KEYS.clear()
        cached = _RATE_KEYS[names] = (layout, keys if fits else None)
    return cached[1]


_RATE_KEYS: dict[NameIndex, tuple[Layout, list[str] | None]] = {}  # by the rates' names: their layout's keys


def decode_window(layout: Layout, data: bytes, interval_s: float) -> dict[str, float]:
    """The window's non-zero rates, by kernel name and by their named rate."""
    keys = _keys(layout)
    values = decode(data, _varint_count(data))
    if len(values) % 2:
        raise CorruptCounters("window counts are not (gap, count) pairs")
    rates: dict[str, float] = {}
    index = -1
    for gap, count in zip(values[::2], values[1::2], strict=True):
        index += gap
        if not 0 <= index < len(keys) or gap < 1:
            raise CorruptCounters(f"window count for counter {index} of a layout of {len(keys)}")
        rates[keys[index]] = count / interval_s
    for friendly, kernel in NAMED_RATES.items():
        if kernel in rates:
            rates[friendly] = rates[kernel]
    return rates


def _varint_count(data: bytes) -> int:
    return sum(1 for byte in data if byte < 0x80)


# The named counts' order in ``since_counts`` (a storage format: append, never reorder).
NAMED_ORDER: tuple[str, ...] = (
    "resets_received",
    "resets_sent",
    "estab_resets",
    "listen_overflows",
    "listen_drops",
    "aborts_on_data",
    "aborts_on_close",
    "aborts_on_memory",
    "aborts_on_timeout",
    "aborts_on_linger",
    "aborts_failed",
    "memory_pressures",
    "req_q_full_drops",
    "challenge_acks",
)


def encode_named(counts: Mapping[str, int]) -> bytes:
    """The non-zero named counts as (gap, count) varint pairs in :data:`NAMED_ORDER` (b"": none)."""
    flat: list[int] = []
    last = -1
    for index, name in enumerate(NAMED_ORDER):
        count = counts.get(name, 0)
        if count > 0:
            flat += (index - last, count)
            last = index
    return encode(flat)


def decode_named(data: bytes) -> dict[str, int]:
    values = decode(data, _varint_count(data))
    counts: dict[str, int] = {}
    index = -1
    for gap, count in zip(values[::2], values[1::2], strict=True):
        index += gap
        if gap < 1 or index >= len(NAMED_ORDER):
            raise CorruptCounters(f"named count {index} of {len(NAMED_ORDER)}")
        counts[NAMED_ORDER[index]] = count
    return counts
