"""Thresholds and verdicts: Netdata's limits, overrides, the spike rule, on rates from real captures."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import NAMED_RATES, measure_rates
from fleetrst.measure.probe import parse_probe_output
from fleetrst.measure.rules import (
    DEFAULT_THRESHOLDS,
    ThresholdError,
    effective_thresholds,
    judge,
    parse_cli_threshold,
    parse_threshold_overrides,
)
from fleetrst.model import Rates, Threshold, Trip

PROBES = Path(__file__).parents[1] / "fixtures" / "proc" / "probe"


def real_rates(name: str) -> Rates:
    snapshots = parse_probe_output((PROBES / f"{name}.out").read_text())
    return measure_rates(snapshots[-2], snapshots[-1])


def rates(**per_second: float) -> Rates:
    return Rates(interval_s=10.0, per_second=per_second)


# --- defaults ---------------------------------------------------------------------------------------


def test_defaults_follow_netdatas_alarms() -> None:
    assert DEFAULT_THRESHOLDS["resets_received"] == Threshold(warning=50, critical=250)
    assert DEFAULT_THRESHOLDS["resets_sent"] == Threshold(warning=50, critical=250)
    for metric in ("listen_overflows", "listen_drops", "req_q_full_drops"):
        assert DEFAULT_THRESHOLDS[metric] == Threshold(warning=1, critical=5)
    assert DEFAULT_THRESHOLDS["estab_resets"] == Threshold(warning=20, critical=100)
    for metric in ("aborts_on_memory", "memory_pressures"):
        assert DEFAULT_THRESHOLDS[metric] == Threshold(warning=1, critical=5)
    assert set(DEFAULT_THRESHOLDS) <= set(NAMED_RATES)


def test_a_quiet_host_is_ok() -> None:
    assert judge(real_rates("idle"), DEFAULT_THRESHOLDS).level == "ok"


def test_a_closed_port_storm_of_about_190_per_second_warns_on_resets_both_ways() -> None:
    verdict = judge(real_rates("closed-port"), DEFAULT_THRESHOLDS)
    assert verdict.level == "warning"
    assert [(t.metric, t.level, t.limit) for t in verdict.tripped] == [
        ("resets_received", "warning", 50),
        ("resets_sent", "warning", 50),
    ]


def test_linger_aborts_are_critical_as_established_resets() -> None:
    verdict = judge(real_rates("linger-abort"), DEFAULT_THRESHOLDS)
    assert verdict.level == "critical"
    assert verdict.tripped[0] == Trip(
        "estab_resets", "critical", real_rates("linger-abort").per_second["estab_resets"], 100
    )
    assert ("resets_sent", "warning") in [(t.metric, t.level) for t in verdict.tripped]


def test_a_flooded_listen_queue_is_critical() -> None:
    verdict = judge(real_rates("listen-overflow"), DEFAULT_THRESHOLDS)
    assert [(t.metric, t.level) for t in verdict.tripped] == [
        ("listen_drops", "critical"),
        ("listen_overflows", "critical"),
    ]


def test_a_rate_equal_to_the_limit_does_not_trip_netdata_compares_strictly() -> None:
    assert judge(rates(resets_sent=50.0), DEFAULT_THRESHOLDS).level == "ok"
    assert judge(rates(resets_sent=50.01), DEFAULT_THRESHOLDS).level == "warning"
    assert judge(rates(resets_sent=250.0), DEFAULT_THRESHOLDS).level == "warning"
    assert judge(rates(resets_sent=250.01), DEFAULT_THRESHOLDS).level == "critical"


def test_tripped_metrics_are_listed_worst_first_then_by_name() -> None:
    verdict = judge(
        rates(resets_sent=60, listen_drops=9, estab_resets=30, listen_overflows=2), DEFAULT_THRESHOLDS
    )
    assert [(t.level, t.metric) for t in verdict.tripped] == [
        ("critical", "listen_drops"),
        ("warning", "estab_resets"),
        ("warning", "listen_overflows"),
        ("warning", "resets_sent"),
    ]
    assert verdict.level == "critical"


def test_a_metric_the_host_has_no_counter_for_is_not_judged() -> None:
    assert judge(rates(), DEFAULT_THRESHOLDS).level == "ok"


def test_a_switched_off_level_is_not_checked() -> None:
    off = {"resets_sent": Threshold(warning=None, critical=None)}
    assert judge(rates(resets_sent=1e6), off).level == "ok"


# --- the spike rule ---------------------------------------------------------------------------------


def test_with_a_quiet_baseline_a_storm_warns_as_a_spike_over_ten_times_five() -> None:
    t0, t1, t2 = parse_probe_output((PROBES / "baseline-closed-port.out").read_text())
    verdict = judge(measure_rates(t1, t2), DEFAULT_THRESHOLDS, baseline=measure_rates(t0, t1))
    spikes = [t for t in verdict.tripped if t.rule == "spike"]
    assert [(t.metric, t.level, t.limit, t.baseline) for t in spikes] == [
        ("resets_received", "warning", 50.0, 0.0),
        ("resets_sent", "warning", 50.0, 0.0),
    ]
    assert "> 10×max(5, 0.0) spike" in spikes[0].describe()


def test_a_busy_baseline_raises_the_warning_limit_to_ten_times_the_baseline() -> None:
    verdict = judge(rates(resets_sent=190), DEFAULT_THRESHOLDS, baseline=rates(resets_sent=20))
    assert verdict.level == "ok"  # 190 < 10 × 20
    verdict = judge(rates(resets_sent=201), DEFAULT_THRESHOLDS, baseline=rates(resets_sent=20))
    assert verdict.tripped == (Trip("resets_sent", "warning", 201, 200.0, rule="spike", baseline=20),)


def test_with_a_baseline_critical_stays_the_fixed_threshold() -> None:
    verdict = judge(rates(resets_sent=300), DEFAULT_THRESHOLDS, baseline=rates(resets_sent=100))
    assert verdict.tripped == (Trip("resets_sent", "critical", 300, 250.0),)


def test_the_spike_rule_is_only_for_resets_received_and_sent() -> None:
    verdict = judge(rates(estab_resets=30), DEFAULT_THRESHOLDS, baseline=rates(estab_resets=0))
    assert verdict.tripped == (Trip("estab_resets", "warning", 30, 20.0),)


# --- overrides from the inventory -------------------------------------------------------------------


def test_an_inventory_that_sets_only_a_warning_keeps_the_default_critical() -> None:
    assert parse_threshold_overrides({"resets_sent": {"warning": 20}}, "host web3") == {
        "resets_sent": Threshold(warning=20.0, critical=250.0)
    }


def test_an_inventory_can_switch_a_level_or_a_whole_metric_off() -> None:
    parsed = parse_threshold_overrides(
        {"resets_sent": {"warning": None}, "resets_received": None}, "group lb"
    )
    assert parsed == {
        "resets_sent": Threshold(warning=None, critical=250.0),
        "resets_received": Threshold(warning=None, critical=None),
    }


def test_an_inventory_can_set_a_limit_on_any_kernel_counter() -> None:
    parsed = parse_threshold_overrides({"TCPAbortOnData": {"critical": 3}}, "host db1")
    assert parsed == {"TCPAbortOnData": Threshold(warning=None, critical=3.0)}


def test_a_numeric_string_from_a_rendered_template_is_a_number() -> None:
    assert parse_threshold_overrides({"resets_sent": {"warning": "20"}}, "host web3") == {
        "resets_sent": Threshold(warning=20.0, critical=250.0)
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"resets_sent": {"warning": "x"}},
            "host web3: fleetrst_thresholds.resets_sent.warning must be a number, got 'x'",
        ),
        (
            {"resets_sent": {"warning": True}},
            "host web3: fleetrst_thresholds.resets_sent.warning must be a number, got True",
        ),
        (
            {"resets_sent": {"critical": -1}},
            "host web3: fleetrst_thresholds.resets_sent.critical must be a finite number ≥ 0, got -1",
        ),
        (
            {"resets_sent": {"warn": 20}},
            "host web3: fleetrst_thresholds.resets_sent has unknown level 'warn'; levels: warning, critical",
        ),
        (
            {"resets_sent": 20},
            "host web3: fleetrst_thresholds.resets_sent must be a mapping with warning and/or critical, "
            "got 20",
        ),
        (
            ["resets_sent"],
            "host web3: fleetrst_thresholds must be a mapping of metric to levels, got ['resets_sent']",
        ),
    ],
)
def test_a_bad_inventory_threshold_is_one_clear_message_naming_the_host(value: object, message: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold_overrides(value, "host web3")
    assert str(caught.value) == message


def test_an_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold_overrides({"resets": {"warning": 1}}, "group web")
    message = str(caught.value)
    assert message.startswith("group web: fleetrst_thresholds has unknown metric 'resets'; known metrics: ")
    assert "resets_sent" in message and "kernel counter name" in message


def test_no_thresholds_in_the_inventory_is_no_overrides() -> None:
    assert parse_threshold_overrides(None, "host a") == {}


# --- the command line -------------------------------------------------------------------------------


def test_a_command_line_threshold_is_metric_equals_number() -> None:
    assert parse_cli_threshold("resets_sent=20") == ("resets_sent", 20.0)
    assert parse_cli_threshold("OutRsts=0.5") == ("OutRsts", 0.5)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("resets_sent", "expected METRIC=NUMBER"),
        ("=20", "expected METRIC=NUMBER"),
        ("resets=20", "unknown metric 'resets'"),
        ("resets_sent=lots", "the limit must be a number, got 'lots'"),
        ("resets_sent=-3", "the limit must be a finite number ≥ 0, got '-3'"),
    ],
)
def test_a_bad_command_line_threshold_is_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_cli_threshold(text)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"bad threshold {text!r}")


def test_the_command_line_beats_the_inventory_which_beats_the_defaults_level_by_level() -> None:
    inventory = parse_threshold_overrides(
        {"resets_sent": {"warning": 20}, "estab_resets": {"critical": 40}}, "host a"
    )
    effective = effective_thresholds(inventory, warn={"estab_resets": 5}, crit={"resets_sent": 100})
    assert effective["resets_sent"] == Threshold(warning=20, critical=100)
    assert effective["estab_resets"] == Threshold(warning=5, critical=40)
    assert effective["listen_drops"] == DEFAULT_THRESHOLDS["listen_drops"]


def test_a_command_line_limit_on_a_metric_without_a_default_checks_only_that_level() -> None:
    effective = effective_thresholds(None, warn={"TCPAbortOnData": 10}, crit={})
    assert effective["TCPAbortOnData"] == Threshold(warning=10, critical=None)
    assert effective_thresholds(None, {}, {}) == DEFAULT_THRESHOLDS


# --- properties -------------------------------------------------------------------------------------

LIMIT = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6))
RATE = st.floats(min_value=0, max_value=1e7)
SEVERITY = {"ok": 0, "warning": 1, "critical": 2}


@given(
    warning=LIMIT,
    critical=LIMIT,
    low=RATE,
    extra=RATE,
    base=st.one_of(st.none(), RATE),
    metric=st.sampled_from(["resets_sent", "resets_received", "estab_resets", "OutRsts"]),
)
def test_a_higher_rate_never_gives_a_lower_level(
    warning: float | None, critical: float | None, low: float, extra: float, base: float | None, metric: str
) -> None:
    thresholds = {metric: Threshold(warning=warning, critical=critical)}
    baseline = None if base is None else rates(**{metric: base})
    lower = judge(rates(**{metric: low}), thresholds, baseline).level
    higher = judge(rates(**{metric: low + extra}), thresholds, baseline).level
    assert SEVERITY[higher] >= SEVERITY[lower]


@given(st.dictionaries(st.sampled_from(sorted(NAMED_RATES)), RATE))
def test_the_verdict_is_the_worst_trip_and_each_trip_is_over_its_limit(per_second: dict[str, float]) -> None:
    verdict = judge(rates(**per_second), DEFAULT_THRESHOLDS)
    assert verdict.level == (verdict.tripped[0].level if verdict.tripped else "ok")
    assert all(trip.value > trip.limit for trip in verdict.tripped)
    keys = [(-SEVERITY[t.level], t.metric) for t in verdict.tripped]
    assert keys == sorted(keys)
