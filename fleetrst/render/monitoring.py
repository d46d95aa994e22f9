"""Monitoring outputs: Prometheus text exposition and a Nagios status line.

Pure: a report in, text out (the command layer writes the textfile). Anything from an inventory or a
host (host names, groups, error text) is escaped for the format it lands in: Prometheus label values
(``\\``, ``"`` and newlines), Nagios (``|`` starts perfdata, ``'`` quotes labels, one line only).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from ..measure.counters import NAMED_RATES
from ..model import NOT_MEASURED, STATUS_ORDER, STATUSES, FleetReport, HostResult, NamespaceResult, Trip
from .text import clean, fleet_totals, worst_first

# A host's status as a Nagios code: what it would make the exit code on its own.
STATUS_CODE = {"ok": EXIT_OK, "warning": EXIT_WARNING, "critical": EXIT_CRITICAL} | {
    s: EXIT_UNKNOWN for s in NOT_MEASURED
}
NAGIOS_WORDS = {EXIT_OK: "OK", EXIT_WARNING: "WARNING", EXIT_CRITICAL: "CRITICAL", EXIT_UNKNOWN: "UNKNOWN"}


# --- Prometheus -------------------------------------------------------------------------------------


def escape_label(value: str) -> str:
    """A label value as the text exposition format wants it: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if value == value else "NaN"


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_number(value)}" for labels, value in samples]
    return lines


def render_prometheus(report: FleetReport) -> str:
    """The sweep as Prometheus metrics: per host up, status, interval and every named reset rate;
    per sweep duration, window, host counts, exit code and when it ran."""
    hosts = sorted(report.hosts, key=lambda h: h.host)
    lines: list[str] = []
    lines += _family(
        "fleetrst_host_up",
        "gauge",
        "1 when the host was measured in the last sweep, 0 when it could not be (unreachable, error).",
        ((_labels(host=h.host), float(h.rates is not None)) for h in hosts),
    )
    lines += _family(
        "fleetrst_host_status",
        "gauge",
        "The host's status as a Nagios code: 0 ok, 1 warning, 2 critical, 3 unknown (not measured).",
        ((_labels(host=h.host, status=h.status), float(STATUS_CODE[h.status])) for h in hosts),
    )
    lines += _family(
        "fleetrst_host_info",
        "gauge",
        "Always 1: the host's address and inventory groups.",
        ((_labels(host=h.host, address=h.address, groups=",".join(h.groups)), 1.0) for h in hosts),
    )
    measured = [h for h in hosts if h.rates is not None]
    lines += _family(
        "fleetrst_host_interval_seconds",
        "gauge",
        "The sampling interval as the host's own clock measured it.",
        ((_labels(host=h.host), h.rates.interval_s) for h in measured if h.rates),
    )
    for metric, counter in NAMED_RATES.items():
        samples = [
            (_labels(host=h.host), h.rates.per_second[metric])
            for h in measured
            if h.rates and metric in h.rates.per_second
        ]
        if samples:
            lines += _family(
                f"fleetrst_host_{metric}_per_second",
                "gauge",
                f"{metric} ({counter}) per second over the last sweep's window.",
                samples,
            )
    # The kernel's own counters, as counters: increase() over them gives every event between sweeps
    # (Prometheus takes a reboot's restart from 0 as a counter reset, as it should).
    for metric, counter in NAMED_RATES.items():
        samples = [
            (_labels(host=h.host), float(value))
            for h in measured
            if (value := _counter(h, counter)) is not None
        ]
        if samples:
            lines += _family(
                f"fleetrst_host_{metric}_total",
                "counter",
                f"The host's {counter} counter ({metric}) as read at the last sweep's last sample; "
                "increase() gives the events between sweeps.",
                samples,
            )
    between = [h for h in hosts if h.interval is not None]
    lines += _family(
        "fleetrst_host_since_last_seconds",
        "gauge",
        "The time since the host's previous recorded audit, by its own clock (absent: no usable one).",
        ((_labels(host=h.host), h.interval.interval_s) for h in between if h.interval),
    )
    lines += _family(
        "fleetrst_host_since_last_status",
        "gauge",
        "The host's averages since its previous audit as a Nagios code: 0 ok, 1 warning, 2 critical.",
        ((_labels(host=h.host), float(STATUS_CODE[h.interval_level])) for h in between),
    )
    lines += namespace_families(hosts)
    lines += _family(
        "fleetrst_sweep_hosts",
        "gauge",
        "Hosts in the last sweep, by status.",
        ((_labels(status=s), float(report.count(s))) for s in STATUSES),
    )
    lines += _family(
        "fleetrst_sweep_duration_seconds", "gauge", "Wall time of the last sweep.", [("", report.duration_s)]
    )
    lines += _family(
        "fleetrst_sweep_window_seconds", "gauge", "The last sweep's window.", [("", report.window_s)]
    )
    lines += _family(
        "fleetrst_sweep_exit_code",
        "gauge",
        "The last sweep's exit code (0 ok, 1 warning, 2 critical, 3 unknown, 130/143 interrupted).",
        [("", float(report.exit_code))],
    )
    from datetime import datetime

    lines += _family(
        "fleetrst_sweep_timestamp_seconds",
        "gauge",
        "When the last sweep started, in Unix seconds (alert when it gets old).",
        [("", datetime.fromisoformat(report.started_at).timestamp())],
    )
    return "\n".join(lines) + "\n"


def _counter(h: HostResult, counter: str) -> int | None:
    snap = h.snapshot
    if snap is None:
        return None
    value = snap.tcp.get(counter)
    return snap.tcpext.get(counter) if value is None else value


def namespace_families(hosts: Iterable[HostResult]) -> list[str]:
    """Each host's other namespaces (--containers): status and named reset rates, labelled
    ``host``, ``container`` (the name the runtime knows) and ``runtime``."""
    measured = [(h, n) for h in hosts for n in h.namespaces or ()]
    if not measured:
        return []

    def labels(h: HostResult, n: NamespaceResult, **more: str) -> str:
        return _labels(host=h.host, container=n.name, runtime=n.runtime, **more)

    codes = {"ok": 0.0, "warning": 1.0, "critical": 2.0, "error": 3.0}
    lines = _family(
        "fleetrst_container_status",
        "gauge",
        "A container's (network namespace's) status: 0 ok, 1 warning, 2 critical, 3 not measured.",
        ((labels(h, n), codes[n.status]) for h, n in measured),
    )
    for metric, counter in NAMED_RATES.items():
        samples = [
            (labels(h, n), n.rates.per_second[metric])
            for h, n in measured
            if n.rates and metric in n.rates.per_second
        ]
        if samples:
            lines += _family(
                f"fleetrst_container_{metric}_per_second",
                "gauge",
                f"{metric} ({counter}) per second in the container's network namespace, last sweep's window.",
                samples,
            )
    return lines


# --- Nagios -----------------------------------------------------------------------------------------


def _nagios_text(text: str) -> str:
    return clean(text).replace("|", "/")


def _perf_label(text: str) -> str:
    return "'" + _nagios_text(text).replace("'", "").replace("=", "_") + "'"


def render_nagios(report: FleetReport) -> str:
    """One line, as a Nagios plugin prints it: ``FLEETRST CRITICAL - ... | perfdata``.

    Perfdata: host counts, fleet totals, the sweep's duration, and each host that is not OK's tripped
    rates with their limits (``'h002 resets_sent'=120.0;50;250;0``).
    """
    code = report.exit_code
    word = NAGIOS_WORDS.get(code, "UNKNOWN")
    problems = [h for h in worst_first(report.hosts) if h.status != "ok"]
    parts = []
    for status in STATUS_ORDER[:-1]:  # worst first, as the table; every status but ok
        names = [h.host for h in problems if h.status == status]
        if names:
            shown = ", ".join(_nagios_text(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
            parts.append(f"{len(names)} {status}: {shown}")
    between = [h for h in worst_first(report.hosts) if h.interval_level != "ok"]
    if between:
        names = [
            _nagios_text(h.host) + (" (OK in its window)" if h.tripped_between_only else "")
            for h in between[:10]
        ]
        shown = ", ".join(names) + (" ..." if len(between) > 10 else "")
        parts.append(f"{len(between)} tripped since the last audit: {shown}")
    ok = sum(h.all_clear for h in report.hosts)
    summary = "; ".join(parts) + ("; " if parts else "") + f"{ok} of {len(report.hosts)} hosts ok"
    if report.interrupted_by:
        summary += f"; interrupted by {report.interrupted_by}"
    perf = [f"hosts={len(report.hosts)}"]
    perf += [f"{s}={report.count(s)}" for s in STATUSES]
    perf += [f"{metric}={value:.3f};;;0" for metric, value in fleet_totals(report).items()]
    perf.append(f"duration={report.duration_s:.3f}s;;;0")
    for h in problems:
        perf += [_trip_perf(h, t.metric, t.value) for t in h.tripped]
    for h in worst_first(report.hosts):
        if h.interval is not None:
            perf += [_interval_perf(h, t) for t in h.interval.tripped]
    return f"FLEETRST {word} - {summary} | {' '.join(perf)}\n"


def _interval_perf(h: HostResult, trip: Trip) -> str:
    levels = {
        t.level: f"{t.limit:g}" for t in (h.interval.tripped if h.interval else ()) if t.metric == trip.metric
    }
    warn, crit = levels.get("warning", ""), levels.get("critical", "")
    return f"{_perf_label(h.host + ' ' + trip.metric + ' since last')}={trip.value:.3f};{warn};{crit};0"


def _trip_perf(h: HostResult, metric: str, value: float) -> str:
    levels = {t.level: f"{t.limit:g}" for t in h.tripped if t.metric == metric}
    warn, crit = levels.get("warning", ""), levels.get("critical", "")
    return f"{_perf_label(h.host + ' ' + metric)}={value:.3f};{warn};{crit};0"
