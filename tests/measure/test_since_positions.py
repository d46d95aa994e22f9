"""Counts since the last audit taken by position (two packed samples) are what they are by name.

The earlier sample is the one the history stores: gauges left out, read back packed over the stored
layout; the later one is a sweep's. Their layouts may differ (a kernel upgraded between audits: counters
added, gone, or in another order), counters may go down (a reset), and the Tcp and TcpExt lines share
some names. The reference is the same function on plain dicts (the path by name).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.history import counters as stored
from fleetrst.measure.counters import GAUGES, packed_snapshot
from fleetrst.measure.interval import _plan_of, counts_since
from fleetrst.model import Packed, RecordedSnapshot, Snapshot, names_of
from tests.helpers import examples
from tests.measure.test_counters import LOADS, pair

AT = "2026-11-30T06:00:00+00:00"


def _stored(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` as the history reads it back: encoded by its layout, decoded packed."""
    packed = packed_snapshot(snapshot)
    layout = stored.layout_of(packed.tcp, packed.tcpext)
    data = stored.encode_counters(layout, packed.tcp, packed.tcpext)
    tcp, tcpext = stored.decode_counters(stored.layout_names(layout), data)
    return replace(snapshot, tcp=tcp, tcpext=tcpext)


def _both_ways(before: Snapshot, after: Snapshot) -> tuple[object, object]:
    """counts_since by position (both packed) and by name (both plain dicts)."""
    assert isinstance(before.tcp, Packed) and _plan_of(before, packed_snapshot(after)) is not None
    by_position = counts_since(RecordedSnapshot(7, AT, before), packed_snapshot(after))
    plain_before = replace(before, tcp=dict(before.tcp), tcpext=dict(before.tcpext))
    plain_after = replace(after, tcp=dict(after.tcp), tcpext=dict(after.tcpext))
    assert _plan_of(plain_before, plain_after) is None
    by_name = counts_since(RecordedSnapshot(7, AT, plain_before), plain_after)
    return by_position, by_name


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("kept", ["stored", "packed"])
def test_a_stored_sample_and_a_sweeps_count_the_same_by_position_as_by_name(load: str, kept: str) -> None:
    """Stored (the gauges left out) and as a sweep packs it (gauges in: they are never counted)."""
    before, after = pair(load)
    after = replace(after, uptime_s=before.uptime_s + 300, boot_id=before.boot_id, netns=before.netns)
    before = replace(before, tcp={**before.tcp, "CurrEstab": before.tcp["CurrEstab"] + 2})
    by_position, by_name = _both_ways(_stored(before) if kept == "stored" else packed_snapshot(before), after)
    assert by_position == by_name
    assert type(by_position).__name__ == "SinceLast"
    assert list(by_position.counts) == list(by_name.counts)  # type: ignore[union-attr]  # the same order


def test_a_counter_that_went_down_is_told_the_same_way() -> None:
    before, after = pair("closed-port")
    after = replace(after, uptime_s=before.uptime_s + 300, boot_id=before.boot_id, netns=before.netns)
    down = dict(after.tcpext, TCPTimeouts=0, TCPAbortOnData=0)
    by_position, by_name = _both_ways(
        _stored(replace(before, tcpext=dict(before.tcpext, TCPTimeouts=99, TCPAbortOnData=3))),
        replace(after, tcpext=down),
    )
    assert by_position == by_name
    assert by_position.reason == "counters_reset"  # type: ignore[union-attr]


@st.composite
def two_layouts(draw: st.DrawFn) -> tuple[Snapshot, Snapshot]:
    """A stored sample and a later one over layouts drawn from a real kernel's: counters dropped from
    either, in another order, and values that go up, stay or go down."""
    before, after = pair(draw(st.sampled_from(LOADS)))
    tcp_names = list(after.tcp)
    ext_names = list(after.tcpext)
    if draw(st.booleans()):  # a name on both lines: the TcpExt one is counted as TcpExt.<name>
        ext_names.append("InSegs")
        after = replace(after, tcpext={**after.tcpext, "InSegs": 5})

    def layout(names: list[str]) -> list[str]:
        kept = [n for n in names if draw(st.booleans()) or draw(st.booleans())]
        return draw(st.permutations(kept)) if draw(st.booleans()) else kept

    value = st.integers(min_value=0, max_value=2**64 - 1)
    step = st.integers(min_value=-3, max_value=10**6)

    def later(earlier: dict[str, int]) -> dict[str, int]:
        return {n: max(0, v + draw(step)) if draw(st.booleans()) else v for n, v in earlier.items()}

    old_tcp = {n: draw(value) if n not in GAUGES else after.tcp[n] for n in layout(tcp_names)}
    old_ext = {n: draw(value) for n in layout(ext_names)}
    new_tcp = {n: old_tcp.get(n, after.tcp[n]) for n in layout(tcp_names)}
    new_ext = {n: old_ext.get(n, after.tcpext[n]) for n in layout(ext_names)}
    earlier = Snapshot(tcp=old_tcp, tcpext=old_ext, uptime_s=100.0, boot_id=before.boot_id)
    stored_earlier = _stored(earlier)
    now = Snapshot(tcp=later(new_tcp), tcpext=later(new_ext), uptime_s=400.0, boot_id=before.boot_id)
    return stored_earlier, now


@examples(200)
@given(two_layouts())
def test_any_two_layouts_count_the_same_by_position_as_by_name(samples: tuple[Snapshot, Snapshot]) -> None:
    before, after = samples
    by_position, by_name = _both_ways(before, after)
    assert by_position == by_name
    if hasattr(by_name, "counts"):
        assert list(by_position.counts) == list(by_name.counts)  # type: ignore[union-attr]


def test_the_positions_are_worked_out_once_per_pair_of_layouts() -> None:
    before, after = pair("idle")
    old = _stored(before)
    new = packed_snapshot(after)
    assert _plan_of(old, new) is _plan_of(_stored(before), packed_snapshot(after))
    assert old.tcp.names is names_of(tuple(n for n in before.tcp if n not in GAUGES))  # type: ignore[attr-defined]
