"""The history stores a packed sample and packed rates by position (as a sweep records them): the very
bytes it stores for the same sample and rates as dicts, name by name. Checked on real probe output
(tests/fixtures/proc/probe, made by tests/fixtures/proc/capture.py, and a probe run here), read by the
full parser (dicts) and by its cheap path (packed), with counts drawn by hypothesis."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.history import counters as stored
from fleetrst.measure import probe
from fleetrst.measure.counters import measure_rates, packed_snapshot
from fleetrst.measure.probe import parse_probe_output, probe_command
from fleetrst.model import Packed, PackedRates, Rates, Snapshot
from tests.helpers import examples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "probe"
TEXTS = {path.name: path.read_text() for path in sorted(FIXTURES.glob("*.out"))}
TEXTS["here"] = subprocess.run(
    ["sh", "-c", probe_command(0.01)], capture_output=True, text=True, timeout=30, check=True
).stdout


@pytest.fixture(autouse=True)
def _fresh_layouts() -> Iterator[None]:
    saved = probe._SAMPLE_LAYOUTS
    yield
    probe._SAMPLE_LAYOUTS = saved


def both_ways(text: str) -> tuple[list[Snapshot], list[Snapshot]]:
    probe._SAMPLE_LAYOUTS = ()
    dicts = parse_probe_output(text)  # the full parser: dicts (and the layout learnt)
    packed = probe._parse_known(text)
    assert packed is not None
    assert isinstance(dicts[-1].tcp, dict) and isinstance(packed[-1].tcp, Packed)
    return dicts, packed


def stored_bytes(snapshot: Snapshot, rates: Rates) -> tuple[object, ...]:
    layout = stored.layout_of(snapshot.tcp, snapshot.tcpext)
    return (
        layout,
        stored.encode_counters(layout, snapshot.tcp, snapshot.tcpext),
        stored.encode_window(layout, rates.per_second, rates.interval_s),
    )


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_a_packed_sample_and_its_rates_are_stored_as_the_same_bytes(name: str) -> None:
    dicts, packed = both_ways(TEXTS[name])
    by_name = stored_bytes(dicts[-1], measure_rates(dicts[-2], dicts[-1]))
    rates = measure_rates(packed[-2], packed[-1])
    assert isinstance(rates.per_second, PackedRates)
    assert stored_bytes(packed[-1], rates) == by_name
    # and as a sweep keeps it (packed_snapshot of the dicts: packed by its own names)
    assert stored_bytes(packed_snapshot(dicts[-1]), rates) == by_name
    # read back, the same rates
    layout = by_name[0]
    assert isinstance(layout, tuple)
    window = stored.decode_window(layout, by_name[2], rates.interval_s)  # type: ignore[arg-type]
    assert window == {k: v for k, v in rates.per_second.items() if round(v * rates.interval_s) > 0}


def _with_values(snapshot: Snapshot, values: list[int]) -> Snapshot:
    tcpext = dict(snapshot.tcpext)
    for name, value in zip(tcpext, values, strict=False):
        tcpext[name] = value
    return Snapshot(
        tcp=dict(snapshot.tcp), tcpext=tcpext, uptime_s=snapshot.uptime_s, boot_id=snapshot.boot_id
    )


@examples(200)
@given(
    st.lists(st.integers(0, 2**40), min_size=1, max_size=40),
    st.floats(0.05, 3600, allow_nan=False),
)
def test_any_counts_over_any_interval_are_stored_alike(counts: list[int], interval: float) -> None:
    dicts, _ = both_ways(TEXTS["here"])
    before = dicts[0]
    after = _with_values(before, [v + c for v, c in zip(before.tcpext.values(), counts, strict=False)])
    after = Snapshot(
        tcp=after.tcp, tcpext=after.tcpext, uptime_s=before.uptime_s + interval, boot_id=before.boot_id
    )
    by_name = stored_bytes(after, measure_rates(before, after))
    before_p, after_p = packed_snapshot(before), packed_snapshot(after)
    assert isinstance(before_p.tcp, Packed) and before_p.tcp.names is after_p.tcp.names
    rates = measure_rates(before_p, after_p)
    assert isinstance(rates.per_second, PackedRates)
    assert stored_bytes(after_p, rates) == by_name
