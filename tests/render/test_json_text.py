"""A host's JSON line, with its packed rates written by position, is ``json.dumps(host_json(h))``
character for character: on real probe outputs (tests/measure/test_compact.py renders whole reports
both ways) and here on any rates, the encoder's own cases included (NaN, infinities, -0.0, huge and
tiny values, values that round to zero)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import measure_rates
from fleetrst.measure.probe import parse_probe_output
from fleetrst.model import HostResult, Packed, Rates, names_of
from fleetrst.render.schema import host_json, host_json_text
from tests.helpers import examples

PROBE = Path(__file__).parents[1] / "fixtures" / "proc" / "probe" / "closed-port.out"
NAMES = tuple(parse_probe_output(PROBE.read_text())[-1].tcpext)  # a real kernel's counter names


def _host(rates: Rates | None, groups: tuple[str, ...] = ("fleet",)) -> HostResult:
    return HostResult("h1", "10.0.0.1", groups, "ok", rates=rates, elapsed_s=1.25)


@examples(300)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=len(NAMES), max_size=len(NAMES)),
    st.integers(min_value=0, max_value=len(NAMES)),
)
def test_any_packed_rates_give_the_encoders_own_text(values: list[float], count: int) -> None:
    names = names_of(NAMES[:count])
    rates = Rates(interval_s=5.0, per_second=Packed(names, values[:count]), gauges={"CurrEstab": 3})
    h = _host(rates)
    assert host_json_text(h) == json.dumps(host_json(h))
    assert json.loads(host_json_text(h))["rates"].keys() == set(NAMES[:count])


def test_a_swept_host_and_one_never_measured_give_the_encoders_text() -> None:
    parse_probe_output(PROBE.read_text())  # its layout learnt: the next parse is packed, as a sweep's
    before, after = parse_probe_output(PROBE.read_text())[-2:]
    measured = _host(measure_rates(before, after), groups=("fleet", "web"))
    assert isinstance(measured.rates.per_second, Packed)  # type: ignore[union-attr]  # the path by position
    assert host_json_text(measured) == json.dumps(host_json(measured))
    failed = HostResult("h2", "10.0.0.2", ("fleet",), "unreachable", 'no route "x"', "no_route")
    assert host_json_text(failed) == json.dumps(host_json(failed))
