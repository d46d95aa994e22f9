"""Packed rates and counters (``fleetrst.model.Packed``) behave as the dicts they replace.

A sweep keeps every host's rates and last sample until its report; they are packed (shared names, an
array of values) to keep a host in flight small. Nothing that reads them may see a difference: the
same items in the same order, the same equality, pickles that round-trip, and every output byte for
byte what the dicts gave.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.history import counters as stored
from fleetrst.history.store import HistoryStore
from fleetrst.measure.counters import (
    GAUGES,
    NAMED_RATES,
    MeasureError,
    measure_rates,
    packed_snapshot,
)
from fleetrst.measure.interval import counts_since
from fleetrst.measure.probe import parse_probe_output
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, judge
from fleetrst.model import (
    FleetReport,
    HostResult,
    Packed,
    Rates,
    RecordedSnapshot,
    Snapshot,
    names_of,
)
from fleetrst.render.fleet import render_csv, render_table
from fleetrst.render.monitoring import render_nagios, render_prometheus
from fleetrst.render.schema import render_json, render_jsonl
from tests.helpers import examples
from tests.measure.test_counters import LOADS, pair

PROBES = Path(__file__).parents[1] / "fixtures" / "proc" / "probe"


def dict_rates(before: Snapshot, after: Snapshot) -> tuple[dict[str, float], dict[str, int]]:
    """The rates and gauges as measure_rates built them as dicts, before they were packed (its loop,
    verbatim): what the packed mappings must equal, item for item and in order."""
    from fleetrst.measure.counters import _delta

    interval = after.uptime_s - before.uptime_s
    per_second: dict[str, float] = {}
    gauges: dict[str, int] = {}
    for section, old, new in (("Tcp", before.tcp, after.tcp), ("TcpExt", before.tcpext, after.tcpext)):
        for name, value in new.items():
            key = name
            if section == "TcpExt" and (name in before.tcp or name in after.tcp):
                key = f"TcpExt.{name}"
            if section == "Tcp" and name in GAUGES:
                gauges[key] = value
                continue
            if name not in old:
                continue
            delta, _ = _delta(old[name], value)
            per_second[key] = delta / interval
    for friendly, kernel in NAMED_RATES.items():
        if kernel in per_second:
            per_second[friendly] = per_second[kernel]
    return per_second, gauges


def as_dicts(h: HostResult) -> HostResult:
    """``h`` as the sweep made it before packing: every mapping a dict."""

    def rates(r: Rates | None) -> Rates | None:
        return None if r is None else replace(r, per_second=dict(r.per_second), gauges=dict(r.gauges))

    snap = h.snapshot
    return replace(
        h,
        rates=rates(h.rates),
        baseline=rates(h.baseline),
        snapshot=None if snap is None else replace(snap, tcp=dict(snap.tcp), tcpext=dict(snap.tcpext)),
    )


def assert_same_mapping(packed: Mapping[str, object], plain: dict[str, object]) -> None:
    assert isinstance(packed, Packed)
    assert list(packed.items()) == list(plain.items()), "the same items, in the same order"
    assert list(packed) == list(plain) and list(packed.keys()) == list(plain.keys())
    assert list(packed.values()) == list(plain.values())
    assert [type(v) for v in packed.values()] == [type(v) for v in plain.values()]
    assert packed == plain and plain == packed
    assert (packed != plain, plain != packed) == (False, False)
    assert len(packed) == len(plain) and dict(packed) == plain and {**packed} == plain
    assert repr(packed) == repr(plain)
    assert json.dumps(dict(packed)) == json.dumps(plain)
    assert sorted(packed.items()) == sorted(plain.items())
    for key in plain:
        assert key in packed and packed[key] == plain[key] and packed.get(key) == plain[key]


@pytest.mark.parametrize("load", LOADS)
def test_rates_are_the_dicts_measure_rates_built_item_for_item(load: str) -> None:
    before, after = pair(load)
    rates = measure_rates(before, after)
    per_second, gauges = dict_rates(before, after)
    assert_same_mapping(rates.per_second, per_second)  # type: ignore[arg-type]
    assert_same_mapping(rates.gauges, gauges)  # type: ignore[arg-type]
    assert rates == replace(rates, per_second=per_second, gauges=gauges), "a Rates equals its dict form"


def test_a_packed_mapping_answers_as_a_dict_does_for_what_it_does_not_hold() -> None:
    rates = measure_rates(*pair("closed-port")).per_second
    plain = dict(rates)
    assert "nope" not in rates and rates.get("nope") is None and rates.get("nope", 7) == 7
    assert 3 not in rates and rates.get(3) is None  # type: ignore[call-overload]
    with pytest.raises(KeyError, match="nope"):
        rates["nope"]
    with pytest.raises(TypeError):
        hash(rates)
    with pytest.raises(TypeError):
        rates["OutRsts"] = 1.0  # type: ignore[index]
    assert not GAUGES & rates.keys() and set(rates.keys()) == set(plain)
    assert rates != {**plain, "OutRsts": plain["OutRsts"] + 1} and rates != {} and rates != [1]
    assert rates != {k: v for k, v in plain.items() if k != "OutRsts"}
    assert (rates == None) is False  # noqa: E711


def test_packed_mappings_of_one_layout_share_their_names() -> None:
    a = measure_rates(*pair("idle"))
    b = measure_rates(*pair("closed-port"))
    assert list(a.per_second) == list(b.per_second)
    assert a.per_second._names is b.per_second._names  # type: ignore[attr-defined]
    assert a.per_second != b.per_second and a.per_second == copy.deepcopy(a.per_second)
    key = next(iter(b.per_second))
    assert key is next(iter(a.per_second)), "names interned"


def test_rates_and_results_pickle_back_equal_and_share_their_names(tmp_path: Path) -> None:
    """Results cross processes (--procs) and a Dask cluster pickled: they come back equal, packed, and
    sharing one set of names in the receiving process; the names go once into a batch."""
    rates = [measure_rates(*pair(load)) for load in LOADS if load != "host-idle"]
    back = pickle.loads(pickle.dumps(rates))
    assert back == rates
    assert all(isinstance(r.per_second, Packed) for r in back)
    assert back[0].per_second._names is rates[0].per_second._names  # type: ignore[attr-defined]
    one = len(pickle.dumps(rates[0]))
    batch = pickle.dumps(rates + [measure_rates(*pair("idle")) for _ in range(20)])
    assert len(batch) < 24 * one / 2, "the names go once into a batch"
    assert copy.copy(rates[0]) == rates[0] and copy.deepcopy(rates[0]) == rates[0]


def test_a_packed_mapping_needs_one_value_a_name() -> None:
    with pytest.raises(ValueError, match="3 values for 2 names"):
        Packed(names_of(("a", "b")), (1, 2, 3))
    with pytest.raises(ValueError, match="duplicate"):
        names_of(("a", "a"))


def test_a_snapshot_packs_to_the_same_counters_and_the_history_stores_the_same_bytes() -> None:
    before, after = pair("host-idle")
    packed = packed_snapshot(after)
    assert packed_snapshot(packed) is packed
    assert_same_mapping(packed.tcp, dict(after.tcp))  # type: ignore[arg-type]
    assert_same_mapping(packed.tcpext, dict(after.tcpext))  # type: ignore[arg-type]
    assert packed == after and packed.boot_id == after.boot_id and packed.uptime_s == after.uptime_s
    layout = stored.layout_of(packed.tcp, packed.tcpext)
    assert layout == stored.layout_of(after.tcp, after.tcpext)
    assert stored.encode_counters(layout, packed.tcp, packed.tcpext) == stored.encode_counters(
        layout, after.tcp, after.tcpext
    )
    previous = RecordedSnapshot(1, "2026-11-21T06:00:00+00:00", packed_snapshot(before))
    assert counts_since(previous, packed) == counts_since(
        RecordedSnapshot(1, previous.started_at, before), after
    )


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({"ActiveOpens": 255, "PassiveOpens": 0}, "B"),
        ({"ActiveOpens": 256}, "H"),
        ({"ActiveOpens": 2**32 - 1}, "I"),
        ({"ActiveOpens": 2**32, "PassiveOpens": 0}, "Q"),
        ({"ActiveOpens": 2**64 - 1, "PassiveOpens": 0}, "Q"),
        ({"MaxConn": -1, "ActiveOpens": 5}, "b"),  # the one signed field
        ({"MaxConn": -1, "ActiveOpens": 2**40}, "q"),
        ({"MaxConn": -1, "ActiveOpens": 2**64 - 1}, None),  # fits no array: kept as a tuple
        ({}, "B"),
    ],
)
def test_counters_of_any_range_pack_exactly(values: dict[str, int], kind: str | None) -> None:
    packed = Packed.of_ints(values)
    assert_same_mapping(packed, values)  # type: ignore[arg-type]
    assert getattr(packed._values, "typecode", None) == kind  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(packed)) == values


_NAMES = st.sampled_from(
    ["RtoMin", "MaxConn", "CurrEstab", "ActiveOpens", "AttemptFails", "OutRsts", "EstabResets", "InSegs"]
)
_EXT = st.sampled_from(["TCPAbortOnData", "ListenDrops", "ListenOverflows", "InSegs", "TCPChallengeACK"])
_VALUE = st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 2**32 + 5), st.integers(0, 50))


@examples(200)
@given(
    tcp=st.dictionaries(_NAMES, st.tuples(_VALUE, _VALUE), max_size=8),
    tcpext=st.dictionaries(_EXT, st.tuples(_VALUE, _VALUE), max_size=5),
    interval=st.floats(0.001, 1e6, allow_nan=False),
    max_conn=st.one_of(st.none(), st.just(-1)),
)
def test_any_counters_give_the_rates_the_dicts_gave(
    tcp: dict[str, tuple[int, int]],
    tcpext: dict[str, tuple[int, int]],
    interval: float,
    max_conn: int | None,
) -> None:
    def snap(i: int, uptime: float) -> Snapshot:
        line = {k: v[i] for k, v in tcp.items()}
        if max_conn is not None and "MaxConn" in line:
            line["MaxConn"] = max_conn
        return Snapshot(line, {k: v[i] for k, v in tcpext.items()}, uptime, "b")

    before, after = snap(0, 100.0), snap(1, 100.0 + interval)
    if not after.uptime_s - before.uptime_s > 0:
        with pytest.raises(MeasureError):
            measure_rates(before, after)
        return
    rates = measure_rates(before, after)
    per_second, gauges = dict_rates(before, after)
    assert_same_mapping(rates.per_second, per_second)  # type: ignore[arg-type]
    assert_same_mapping(rates.gauges, gauges)  # type: ignore[arg-type]
    assert all(math.isfinite(v) for v in rates.per_second.values())
    assert pickle.loads(pickle.dumps(rates)) == rates
    packed = packed_snapshot(after)
    assert packed.tcp == after.tcp and list(packed.tcpext.items()) == list(after.tcpext.items())


def _report() -> FleetReport:
    """Hosts measured from real probe outputs (with a baseline, and one host not measured)."""
    hosts = []
    loads = ("closed-port", "idle", "linger-abort", "listen-overflow", "baseline-closed-port")
    for i, name in enumerate(loads):
        snaps = parse_probe_output((PROBES / f"{name}.out").read_text())
        rates = measure_rates(snaps[-2], snaps[-1])
        baseline = measure_rates(snaps[0], snaps[1]) if len(snaps) == 3 else None
        verdict = judge(rates, DEFAULT_THRESHOLDS, baseline)
        hosts.append(
            HostResult(
                host=f"h{i:03d}",
                address=f"10.0.0.{i}",
                groups=("fleet", name),
                status=verdict.level,
                rates=rates,
                baseline=baseline,
                tripped=verdict.tripped,
                elapsed_s=2.0 + i / 7,
                snapshot=packed_snapshot(snaps[-1]),
            )
        )
    hosts.append(HostResult("h009", "10.0.0.9", ("fleet",), "unreachable", "no route", "no_route"))
    return FleetReport(tuple(hosts), "2026-11-21T06:00:00+00:00", 2.5, 2.0, baseline_s=1.0)


def test_every_output_is_byte_for_byte_what_the_dicts_gave(tmp_path: Path) -> None:
    packed = _report()
    plain = replace(packed, hosts=tuple(as_dicts(h) for h in packed.hosts))
    assert isinstance(packed.hosts[0].rates.per_second, Packed)  # type: ignore[union-attr]
    assert not isinstance(plain.hosts[0].rates.per_second, Packed)  # type: ignore[union-attr]
    for render in (render_json, render_jsonl, render_csv, render_table, render_prometheus, render_nagios):
        assert render(packed) == render(plain), render.__name__
    assert render_table(packed, only_problems=True) == render_table(plain, only_problems=True)
    assert packed == plain and repr(packed) == repr(plain)
    assert pickle.loads(pickle.dumps(packed)) == plain
    assert render_json(pickle.loads(pickle.dumps(packed))) == render_json(plain), "as --procs sends it"

    def recorded(report: FleetReport, name: str) -> list[list[object]]:
        path = tmp_path / name
        with HistoryStore.open(path) as store:
            store.record(report, report.exit_code)
            samples = store.last_samples(h.host for h in report.hosts)
        db = sqlite3.connect(path)
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables]
        db.close()
        return [*rows, sorted(samples.items())]

    assert recorded(packed, "packed.sqlite") == recorded(plain, "plain.sqlite"), "the history the same"
