"""Thresholds and the verdict: which rates are too high, and how high.

Pure: rates and limits in, a :class:`~fleetrst.model.Verdict` out. Limits are events per second over the
sweep's window; a metric trips a level when its rate is strictly greater than the limit, as Netdata's
alarms compare (``$this > 1``).

Default thresholds
==================

===================== ========= ========= ==============================================================
metric                warning   critical  why
===================== ========= ========= ==============================================================
``resets_received``   50/s      250/s     Netdata ``tcp_resets.conf`` warns when the 10 s rate of
(``AttemptFails``)                        ``AttemptFails`` exceeds ``10 × max(5, baseline)``: never
                                          below 50/s. Netdata has no critical; 250/s (5× the floor)
                                          is a storm worth paging for.
``resets_sent``       50/s      250/s     The same alarm on ``OutRsts``.
(``OutRsts``)
``listen_overflows``  1/s       5/s       Netdata ``tcp_listen.conf``: ``ListenOverflows`` 60 s
                                          average, warn ``> 1``, crit ``> 5``: an application that
                                          does not accept fast enough drops connections.
``listen_drops``      1/s       5/s       The same alarm on ``ListenDrops``.
``req_q_full_drops``  1/s       5/s       The same form, on the SYN queue (``TCPReqQFullDrop``).
``estab_resets``      20/s      100/s     Not a Netdata alarm. Established connections torn down
(``EstabResets``)                         (aborts, resets either way) are rarer than refused
                                          connects; each costs a user a broken request. Set lower
                                          than the refused-connect limits.
``aborts_on_memory``  1/s       5/s       The kernel killing connections for lack of socket memory:
                                          any at all (> 0) is unusual, a steady 1/s is a problem.
``memory_pressures``  1/s       5/s       TCP entering memory pressure (``TCPMemoryPressures``): the
                                          same reasoning.
===================== ========= ========= ==============================================================

Every other metric — any named rate or kernel counter — has no default and is checked only when an
inventory (``fleetrst_thresholds``) or the command line (``--warn``/``--crit``) gives it a limit.

The spike rule (``--baseline 60s``)
===================================

Netdata's 10 s reset alarms compare the last 10 s with the minute before: warn when the rate exceeds
``10 × max(5, baseline)``. With a baseline, :func:`judge` does exactly that for ``resets_received``
and ``resets_sent``: the warning limit becomes ``10 × max(5, baseline rate)`` (``Trip.rule ==
"spike"``) in place of the fixed warning; critical stays the fixed threshold. A warning switched off
(``None``) stays off. Netdata's hysteresis — once warning, the alarm stays raised while the rate is
above ``1 × max(5, baseline)`` — needs the alarm's previous state; one sweep has none, so it does not
apply here (a cron-driven caller that keeps history could add it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

from ..model import Level, Rates, Threshold, Trip, Verdict
from .counters import NAMED_RATES

DEFAULT_THRESHOLDS: dict[str, Threshold] = {
    "resets_received": Threshold(warning=50.0, critical=250.0),
    "resets_sent": Threshold(warning=50.0, critical=250.0),
    "listen_overflows": Threshold(warning=1.0, critical=5.0),
    "listen_drops": Threshold(warning=1.0, critical=5.0),
    "req_q_full_drops": Threshold(warning=1.0, critical=5.0),
    "estab_resets": Threshold(warning=20.0, critical=100.0),
    "aborts_on_memory": Threshold(warning=1.0, critical=5.0),
    "memory_pressures": Threshold(warning=1.0, critical=5.0),
}

# Netdata's spike rule: warn above SPIKE_FACTOR × max(SPIKE_FLOOR, baseline).
SPIKE_METRICS: frozenset[str] = frozenset({"resets_received", "resets_sent"})
SPIKE_FACTOR = 10.0
SPIKE_FLOOR = 5.0

LEVELS: tuple[Literal["warning"], Literal["critical"]] = ("warning", "critical")
_KERNEL_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,9})?")
_SEVERITY = {"ok": 0, "warning": 1, "critical": 2}


class ThresholdError(ValueError):
    """A threshold that cannot be used; the message names where it came from."""


def _known_metrics() -> str:
    return ", ".join(sorted(NAMED_RATES)) + ", or a kernel counter name such as OutRsts"


def is_metric(name: str) -> bool:
    """A named rate (``resets_sent``) or a kernel-style counter name (``TCPAbortOnData``)."""
    return name in NAMED_RATES or _KERNEL_NAME.fullmatch(name) is not None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _limit(value: object, where: str) -> float:
    """A limit: a number (or a numeric string, as a rendered template gives), finite and ≥ 0."""
    number: float | None = None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            number = float(value.strip())
    except OverflowError:  # an int too large for a float
        number = math.inf
    if number is None:
        raise ThresholdError(f"{where} must be a number, got {_shown(value)}")
    if not math.isfinite(number) or number < 0:
        raise ThresholdError(f"{where} must be a finite number ≥ 0, got {_shown(value)}")
    return number


def parse_threshold_overrides(
    value: object,
    source: str,
    *,
    defaults: Mapping[str, Threshold] | None = None,
    variable: str = "fleetrst_thresholds",
) -> dict[str, Threshold]:
    """An inventory's ``fleetrst_thresholds``, validated, as complete thresholds per metric.

    ``value`` maps metric -> ``{warning: N, critical: N}``; a level set to ``null`` is switched off,
    a level left out keeps the default (so the result is complete and :func:`effective_thresholds`
    can replace defaults wholesale); a metric set to ``null`` is switched off entirely (a host where
    resets are expected). ``source`` names the host or group in every message. ``defaults`` and
    ``variable``: another set of limits (the interval's, ``fleetrst_interval_thresholds``).
    """
    defaults = DEFAULT_THRESHOLDS if defaults is None else defaults
    where = f"{source}: {variable}"
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ThresholdError(f"{where} must be a mapping of metric to levels, got {_shown(value)}")
    result: dict[str, Threshold] = {}
    for metric, levels in value.items():
        if not isinstance(metric, str) or not is_metric(metric):
            raise ThresholdError(
                f"{where} has unknown metric {_shown(metric)}; known metrics: {_known_metrics()}"
            )
        if levels is None:
            result[metric] = Threshold(warning=None, critical=None)
            continue
        if not isinstance(levels, Mapping):
            raise ThresholdError(
                f"{where}.{metric} must be a mapping with warning and/or critical, got {_shown(levels)}"
            )
        threshold = defaults.get(metric, Threshold())
        for level, limit in levels.items():
            if level not in LEVELS:
                raise ThresholdError(
                    f"{where}.{metric} has unknown level {_shown(level)}; levels: warning, critical"
                )
            checked = None if limit is None else _limit(limit, f"{where}.{metric}.{level}")
            threshold = replace(threshold, **{level: checked})
        result[metric] = threshold
    return result


def parse_cli_threshold(text: str) -> tuple[str, float]:
    """``resets_sent=20`` (from ``--warn``/``--crit``) as ``("resets_sent", 20.0)``."""
    metric, sep, number = text.partition("=")
    metric = metric.strip()
    if not sep or not metric:
        raise ThresholdError(f"bad threshold {_shown(text)}: expected METRIC=NUMBER, e.g. resets_sent=20")
    if not is_metric(metric):
        known = _known_metrics()
        raise ThresholdError(
            f"bad threshold {_shown(text)}: unknown metric {_shown(metric)}; known metrics: {known}"
        )
    return metric, _limit(number, f"bad threshold {_shown(text)}: the limit")


def effective_thresholds(
    inventory: Mapping[str, Threshold] | None,
    warn: Mapping[str, float],
    crit: Mapping[str, float],
    defaults: Mapping[str, Threshold] | None = None,
) -> dict[str, Threshold]:
    """Defaults < the inventory's (already complete, see :func:`parse_threshold_overrides`) < the
    command line's ``--warn``/``--crit``, each of which sets one level and keeps the other."""
    result = dict(DEFAULT_THRESHOLDS if defaults is None else defaults)
    result.update(inventory or {})
    for metric, limit in warn.items():
        result[metric] = replace(result.get(metric, Threshold()), warning=limit)
    for metric, limit in crit.items():
        result[metric] = replace(result.get(metric, Threshold()), critical=limit)
    return result


def spike_limit(baseline_rate: float) -> float:
    """Netdata's warning limit for a 10 s window after a baseline: ``10 × max(5, baseline)``."""
    return SPIKE_FACTOR * max(SPIKE_FLOOR, baseline_rate)


def judge(rates: Rates, thresholds: Mapping[str, Threshold], baseline: Rates | None = None) -> Verdict:
    """Which metrics are over their limits, worst first; the verdict's level is the worst of them."""
    tripped: list[Trip] = []
    for metric, threshold in thresholds.items():
        value = rates.per_second.get(metric)
        if value is None:
            continue  # the host's kernel has no such counter: nothing to judge
        if threshold.critical is not None and value > threshold.critical:
            tripped.append(Trip(metric, "critical", value, threshold.critical))
            continue
        if threshold.warning is None:
            continue
        base = baseline.per_second.get(metric) if baseline is not None else None
        if metric in SPIKE_METRICS and base is not None:
            limit = spike_limit(base)
            if value > limit:
                tripped.append(Trip(metric, "warning", value, limit, rule="spike", baseline=base))
        elif value > threshold.warning:
            tripped.append(Trip(metric, "warning", value, threshold.warning))
    tripped.sort(key=lambda trip: (-_SEVERITY[trip.level], trip.metric))
    level: Level = tripped[0].level if tripped else "ok"
    return Verdict(level=level, tripped=tuple(tripped))


# --- per container: fleetrst_container_thresholds ----------------------------------------------------

ContainerOverrides = tuple[tuple[str, dict[str, Threshold]], ...]


def parse_container_threshold_overrides(value: object, source: str) -> ContainerOverrides:
    """An inventory's ``fleetrst_container_thresholds``: container or pod name pattern (shell-style,
    ``shop/*``, ``web-?``) -> the same mapping as ``fleetrst_thresholds``, validated, in order.

    A namespace takes the host's thresholds, then every pattern that matches its name in the order
    given (a later one wins for the metrics it sets); ``--warn``/``--crit`` still win over all.
    """
    where = f"{source}: fleetrst_container_thresholds"
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ThresholdError(f"{where} must be a mapping of name pattern to thresholds, got {_shown(value)}")
    result: list[tuple[str, dict[str, Threshold]]] = []
    for pattern, levels in value.items():
        if not isinstance(pattern, str) or not pattern:
            raise ThresholdError(f"{where} has a pattern that is not a name: {_shown(pattern)}")
        overrides = parse_threshold_overrides(
            levels, source, variable=f"fleetrst_container_thresholds[{pattern!r}]"
        )
        result.append((pattern, overrides))
    return tuple(result)


def namespace_thresholds(
    name: str,
    host: Mapping[str, Threshold] | None,
    containers: ContainerOverrides,
    warn: Mapping[str, float],
    crit: Mapping[str, float],
) -> dict[str, Threshold]:
    """Defaults < the host's ``fleetrst_thresholds`` < each matching container pattern < the command
    line: the thresholds a namespace named ``name`` is judged against."""
    from fnmatch import fnmatchcase

    merged = dict(host or {})
    for pattern, overrides in containers:
        if fnmatchcase(name, pattern):
            merged.update(overrides)
    return effective_thresholds(merged, warn, crit)
