"""What ``fleetrst watch`` shows: the event line, the live table and the Prometheus families. Pure.

- :func:`event_json`: one JSON object a line per event (``raised``, ``cleared``, ``lost``, ``back``,
  ``investigated``), every key always there (``null`` when it does not apply), so that ``jq`` and log
  shippers need no special cases. An ``investigated`` line carries the investigation as ``fleetrst
  investigate -o json`` gives it for one host (:func:`~.schema.investigation_json`).
- :func:`live_view`: the live full-screen view as a ``rich`` renderable (built here, drawn by the
  command layer): worst first, fleet totals, hosts lost, recent events, changes highlighted.
- :func:`metric_families`: every watched host's counters under node_exporter's names, fleetrst's rates
  and alarm states, as plain families that the command layer serves with ``prometheus_client``.

Host and group names, error text and filter text from the keyboard pass through :func:`~.text.clean`
before they reach the terminal; JSON escapes by itself; Prometheus label values are escaped by
``prometheus_client``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TypeAlias

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..measure.alarms import WATCHED_TCP, WATCHED_TCPEXT, AlarmState, WatchEvent
from ..measure.counters import NAMED_RATES, MeasureError, measure_rates
from ..model import HEADLINE_RATES, Level, Rates, Snapshot
from ..units import seconds
from .schema import investigation_json
from .text import TABLE_RATES, TOTAL_RATES, clean

if TYPE_CHECKING:
    from ..investigate.result import Investigation

# The "v" of every event line; bumped when a key changes meaning or goes away (not when one is added:
# cause, summary, triggers and investigation came with the investigated event, in version 1).
EVENT_SCHEMA = 1

HostState = Literal["connecting", "up", "lost", "error"]
# What the table's STATE column says, worst first: the order of "worst" and of the exit code.
STATES: tuple[str, ...] = ("critical", "warning", "lost", "error", "connecting", "ok")


@dataclass(frozen=True, slots=True)
class HostView:
    """One watched host as shown: made afresh by the watch at every change, read by the renderers."""

    host: str
    groups: tuple[str, ...]
    address: str
    state: HostState = "connecting"
    level: Level = "ok"  # the worst alarm (while up; kept while lost)
    alarms: tuple[AlarmState, ...] = ()  # every alarm judged so far, worst first
    rates: Rates | None = None  # the latest 10 s rates
    counters: Snapshot | None = None  # the latest sample (the counters a watch keeps)
    since: float | None = None  # controller time of the last change of status
    error: str | None = None  # why it is lost (or in error), or the last unreadable sample
    samples: int = 0
    last_sample_at: float | None = None
    cause: str | None = None  # the latest investigation's top cause, while the host is not ok
    # The two samples of ``rates``, when the view is made without them (``rates=None``): they are then
    # taken at their first read (by the table, a scrape, an investigation), not at every sample of every
    # host. Safe from any thread: two readers at once take the same rates.
    window: tuple[Snapshot, Snapshot] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.window is not None and self.rates is None:
            object.__delattr__(self, "rates")  # unset: read through __getattr__, below

    if not TYPE_CHECKING:  # (for mypy, ``rates`` is the field it is)

        def __getattr__(self, name: str) -> object:
            """Only an unset slot gets here: the rates of :attr:`window`, taken at their first read."""
            if name != "rates":
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            try:
                rates = measure_rates(*self.window)
            except MeasureError:  # cannot happen: the watch's window is one boot, uptime going up
                rates = None
            object.__setattr__(self, "rates", rates)
            return rates

    @property
    def raised(self) -> tuple[AlarmState, ...]:
        """The alarms that are not ok, worst first."""
        return tuple(alarm for alarm in self.alarms if alarm.level != "ok")

    @property
    def status(self) -> str:
        """The alarm level while up, else the state: one of :data:`STATES`."""
        return self.level if self.state == "up" else self.state


# --- events -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvestigatedEvent:
    """A host's investigation finished: started by one of its alarms raised, run over the host's own
    connection (:mod:`fleetrst.watch`). ``triggers``: the host's alarms that were raised when it
    started, worst first. ``investigation``: what it found; None when it failed with an error of ours
    (``error`` says which: a host's own trouble is a finding, in the investigation). ``at``: controller
    time, when it finished."""

    host: str
    at: float
    groups: tuple[str, ...]
    triggers: tuple[AlarmState, ...]
    investigation: Investigation | None = None
    error: str | None = None
    event: Literal["investigated"] = "investigated"

    @property
    def cause(self) -> str | None:
        """The top cause's name (``closed_port``, ...); None when none was found or it failed."""
        found = self.investigation
        return found.causes[0].cause if found is not None and found.causes else None

    @property
    def summary(self) -> str | None:
        """The top cause's summary, or ``no cause found`` and the first thing it could not see (why);
        None when it failed."""
        found = self.investigation
        if found is None:
            return None
        if found.causes:
            return found.causes[0].summary
        return "no cause found" + (f" ({found.unseen[0]})" if found.unseen else "")

    @property
    def text(self) -> str:
        """One line: ``closed_port: ...``, ``investigated: no cause found (...)``, or
        ``investigated: internal error: ...`` (the live table's CAUSE column)."""
        if self.cause is not None:
            return f"{self.cause}: {self.summary}"
        return f"investigated: {self.error if self.investigation is None else self.summary}"


# Everything a watch reports: its hosts' alarms and connections, and its investigations.
AnyEvent: TypeAlias = WatchEvent | InvestigatedEvent


def iso_time(at: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds: ``2026-11-29T13:40:28.123Z``."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)


def _trigger(alarm: AlarmState) -> dict[str, object]:
    return {
        "metric": alarm.metric,
        "level": alarm.level,
        "value": _number(alarm.value),
        "limit": _number(alarm.limit),
        "baseline": _number(alarm.baseline),
        "rule": alarm.rule,
    }


def event_record(event: AnyEvent) -> dict[str, object]:
    """The event as the JSON line's object (also what ``--no-history`` users can rebuild from it).

    An ``investigated`` event's ``metric`` ... ``rule`` are those of its worst trigger (``triggers``
    has them all); ``cause``, ``summary``, ``triggers`` and ``investigation`` are null on every other
    event."""
    if event.event == "investigated":
        worst = event.triggers[0] if event.triggers else None
        return {
            "v": EVENT_SCHEMA,
            "event": event.event,
            "time": iso_time(event.at),
            "host": event.host,
            "groups": list(event.groups),
            "metric": worst.metric if worst else None,
            "level": worst.level if worst else None,
            "previous": None,
            "value": _number(worst.value) if worst else None,
            "limit": _number(worst.limit) if worst else None,
            "baseline": _number(worst.baseline) if worst else None,
            "rule": worst.rule if worst else None,
            "error": event.error,
            "error_kind": "internal" if event.error is not None else None,
            "down_s": None,
            "cause": event.cause,
            "summary": event.summary,
            "triggers": [_trigger(a) for a in event.triggers],
            "investigation": None if event.investigation is None else investigation_json(event.investigation),
        }
    return {
        "v": EVENT_SCHEMA,
        "event": event.event,
        "time": iso_time(event.at),
        "host": event.host,
        "groups": list(event.groups),
        "metric": event.metric,
        "level": event.level,
        "previous": event.previous,
        "value": _number(event.value),
        "limit": _number(event.limit),
        "baseline": _number(event.baseline),
        "rule": event.rule,
        "error": event.error,
        "error_kind": event.error_kind,
        "down_s": _number(event.down_s),
        "cause": None,
        "summary": None,
        "triggers": None,
        "investigation": None,
    }


def event_json(event: AnyEvent) -> str:
    """One line of JSON, no newline: ``{"v": 1, "event": "raised", "time": ..., "host": ..., ...}``."""
    return json.dumps(event_record(event), separators=(", ", ": "))


def event_text(event: AnyEvent) -> str:
    """One short line for the live view's event list."""
    when = time.strftime("%H:%M:%S", time.localtime(event.at))
    host = clean(event.host)
    if event.event == "investigated":
        return f"{when} investigated {host}: {clean(event.text.removeprefix('investigated: '))}"
    if event.event in ("raised", "cleared"):
        level = f" {event.level}" if event.event == "raised" else ""
        limit = f" (limit {event.limit:g})" if event.limit is not None else ""
        value = f" {event.value:.1f}/s" if event.value is not None else ""
        return f"{when} {event.event}{level} {host} {event.metric}{value}{limit}"
    if event.event == "lost":
        return f"{when} lost {host}: {clean(event.error or '')}"
    return f"{when} back {host}" + (f" after {seconds(event.down_s)}" if event.down_s is not None else "")


# --- the live view --------------------------------------------------------------------------------------

SORTS: tuple[str, ...] = ("worst", "host", "sent", "received", "since")
_STYLE = {
    "critical": "bold red",
    "warning": "yellow",
    "lost": "magenta",
    "error": "red",
    "connecting": "dim",
    "ok": "green",
}


@dataclass(frozen=True)
class ViewState:
    """What the keys chose: the order, the filter, whether only problems show."""

    sort: str = "worst"
    filter: str = ""
    editing: bool = False  # the filter is being typed
    problems_only: bool = False


def _peak(view: HostView) -> float:
    if view.rates is None:
        return 0.0
    return max((view.rates.per_second.get(metric, 0.0) for metric, _ in TABLE_RATES), default=0.0)


def sort_views(views: Iterable[HostView], sort: str = "worst") -> list[HostView]:
    """``worst``: status (critical, warning, lost, error, connecting, ok), then the highest rate;
    ``host``; ``sent`` / ``received``: that rate, highest first; ``since``: latest change first."""

    def rate(view: HostView, metric: str) -> float:
        return view.rates.per_second.get(metric, 0.0) if view.rates else -1.0

    if sort == "host":
        return sorted(views, key=lambda v: v.host)
    if sort == "sent":
        return sorted(views, key=lambda v: (-rate(v, "resets_sent"), v.host))
    if sort == "received":
        return sorted(views, key=lambda v: (-rate(v, "resets_received"), v.host))
    if sort == "since":
        return sorted(views, key=lambda v: (-(v.since or 0.0), v.host))
    return sorted(views, key=lambda v: (STATES.index(v.status), -_peak(v), v.host))


def matches(view: HostView, text: str) -> bool:
    """The filter: a piece of the host's name, of one of its groups, or its status."""
    if not text:
        return True
    needle = text.lower()
    return (
        needle in view.host.lower()
        or any(needle in group.lower() for group in view.groups)
        or needle == view.status
    )


def fleet_totals(views: Iterable[HostView]) -> dict[str, float]:
    totals = dict.fromkeys(HEADLINE_RATES, 0.0)
    for view in views:
        if view.state == "up" and view.rates is not None:
            for metric in totals:
                totals[metric] += view.rates.per_second.get(metric, 0.0)
    return totals


def _since(at: float | None, now: float) -> str:
    if at is None:
        return ""
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    return f"{clock} ({seconds(max(0.0, now - at))} ago)"


def _cause(view: HostView) -> str:
    if view.state in ("lost", "error") or (view.state == "connecting" and view.error):
        return clean(view.error or "")
    parts = []
    for alarm in view.raised:
        limit = f" > {alarm.limit:g}" if alarm.limit is not None else ""
        rule = " spike" if alarm.rule == "spike" else (" 1m avg" if alarm.rule == "average" else "")
        parts.append(f"{alarm.metric} {alarm.value:.1f}/s{limit}{rule}")
    if view.cause:
        return clean(view.cause) + (f" ({'; '.join(parts)})" if parts else "")
    return "; ".join(parts)


@dataclass(frozen=True)
class LiveFrame:
    """Everything one drawing of the live view shows (the command layer fills it in)."""

    views: Sequence[HostView]
    now: float
    every_s: float
    started: float
    state: ViewState = field(default_factory=ViewState)
    events: Sequence[AnyEvent] = ()  # the latest, oldest first
    height: int = 40  # the terminal's lines
    highlight_s: float = 0.0  # rows that changed this recently are highlighted (0: 2 rounds)


def live_view(frame: LiveFrame) -> RenderableType:
    """The live view: a summary line, the host table (as many rows as fit), the latest events, keys."""
    views = frame.views
    state = frame.state
    counts = {status: 0 for status in STATES}
    for view in views:
        counts[view.status] += 1
    summary = Text()
    summary.append("fleetrst watch", style="bold")
    summary.append(f" · {len(views)} hosts: ")
    summary.append_text(
        Text(", ").join(
            Text(f"{counts[s]} {s}", style=_STYLE[s] if counts[s] and s != "ok" else "")
            for s in STATES
            if counts[s] or s == "ok"
        )
    )
    summary.append(f" · every {seconds(frame.every_s)}, watching for {seconds(frame.now - frame.started)}")
    totals = fleet_totals(views)
    total_line = Text(
        "fleet totals: " + ", ".join(f"{totals[m]:.1f} {words}" for m, words in TOTAL_RATES), style="dim"
    )

    shown = [v for v in views if matches(v, state.filter) and (not state.problems_only or v.status != "ok")]
    rows = sort_views(shown, state.sort)
    recent = list(frame.events)[-5:]
    room = max(1, frame.height - 8 - len(recent))  # summary, totals, header, blank, events, keys
    hidden = max(0, len(rows) - room)
    highlight = frame.highlight_s or max(2 * frame.every_s, 3.0)

    table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
    table.add_column("HOST", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    for _, title in TABLE_RATES:
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("SINCE", no_wrap=True)
    table.add_column("CAUSE", overflow="ellipsis", no_wrap=True, ratio=1)
    for view in rows[:room]:
        status = view.status
        rates = view.rates.per_second if view.rates is not None and view.state == "up" else None
        cells = [f"{rates.get(m, 0.0):.1f}" if rates is not None else "-" for m, _ in TABLE_RATES]
        changed = view.since is not None and frame.now - view.since < highlight and view.samples != 1
        table.add_row(
            clean(view.host),
            Text(status, style=_STYLE[status]),
            *cells,
            _since(view.since, frame.now),
            _cause(view),
            style="reverse" if changed and status != "ok" else ("bold" if changed else None),
        )

    keys = Text(style="dim")
    keys.append(f"sort: {state.sort} (s)  ")
    if state.editing:
        keys.append(f"filter: {clean(state.filter)}▏ (Enter to keep, Esc to clear)  ", style="bold")
    else:
        keys.append(f"filter: {clean(state.filter) or '-'} (/)  ")
    keys.append(f"problems only: {'on' if state.problems_only else 'off'} (p)  quit (q)")
    if hidden:
        keys.append(f"  · {hidden} more hosts below", style="bold")
    parts: list[RenderableType] = [summary, total_line, Text(""), table]
    if recent:
        parts.append(Text(""))
        parts += [  # one line each, as the room for the table counts them
            Text(event_text(e), style=_STYLE.get(_event_status(e), ""), no_wrap=True, overflow="ellipsis")
            for e in recent
        ]
    parts.append(keys)
    return Group(*parts)


def _event_status(event: AnyEvent) -> str:
    if event.event == "investigated":
        if event.investigation is None:
            return "error"
        return event.triggers[0].level if event.triggers else "ok"
    if event.event == "raised":
        return event.level or "warning"
    return {"lost": "lost", "back": "ok", "cleared": "ok"}[event.event]


# --- Prometheus -----------------------------------------------------------------------------------------

FamilyKind = Literal["untyped", "gauge", "counter"]


@dataclass(frozen=True)
class Family:
    """One metric family: its name, type, help and samples (label values in ``labels`` order)."""

    name: str
    kind: FamilyKind
    help: str
    labels: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], float], ...]


_LEVEL_CODE = {"ok": 0.0, "warning": 1.0, "critical": 2.0}
_STATUS_CODE = {"ok": 0.0, "warning": 1.0, "critical": 2.0, "lost": 3.0, "error": 3.0, "connecting": 3.0}


def metric_families(
    views: Sequence[HostView],
    *,
    every_s: float,
    now: float,
    samples_total: int,
) -> list[Family]:
    """The watch as Prometheus families, for one scrape.

    Per host (labels ``host`` and ``groups``, the inventory groups joined by commas): its counters as
    node_exporter names them (``node_netstat_Tcp_OutRsts``, ``node_netstat_TcpExt_ListenOverflows``,
    ...; untyped, as node_exporter serves them), its 10 s rates, its alarms' levels, whether it is up
    and how old its sample is. Counters and rates are those of the host's latest sample, held in the
    watch's memory (the HELP says so): a host that is lost has none (its series go stale), only
    ``fleetrst_host_up 0``.
    """
    hosts = sorted(views, key=lambda v: v.host)
    up = [v for v in hosts if v.state == "up" and v.counters is not None]
    families: list[Family] = []
    cached = f"(from the host's latest sample, streamed every {seconds(every_s)} and held by fleetrst watch)"

    def label(view: HostView) -> tuple[str, str]:
        return (view.host, ",".join(view.groups))

    for section, names in (("Tcp", WATCHED_TCP), ("TcpExt", WATCHED_TCPEXT)):
        for name in names:
            samples = []
            for view in up:
                assert view.counters is not None
                table = view.counters.tcp if section == "Tcp" else view.counters.tcpext
                if name in table:
                    samples.append((label(view), float(table[name])))
            if samples:
                families.append(
                    Family(
                        f"node_netstat_{section}_{name}",
                        "untyped",
                        f"Statistic {section}{name} {cached}.",
                        ("host", "groups"),
                        tuple(samples),
                    )
                )
    families.append(
        Family(
            "fleetrst_host_up",
            "gauge",
            "1 while the host streams its samples to fleetrst watch, 0 while it is lost (or not yet up).",
            ("host", "groups"),
            tuple((label(v), 1.0 if v.state == "up" else 0.0) for v in hosts),
        )
    )
    families.append(
        Family(
            "fleetrst_host_status",
            "gauge",
            "The host's status as a Nagios code: 0 ok, 1 warning, 2 critical, 3 unknown (lost, error, "
            "connecting).",
            ("host", "groups", "status"),
            tuple(((*label(v), v.status), _STATUS_CODE[v.status]) for v in hosts),
        )
    )
    families.append(
        Family(
            "fleetrst_host_cause_info",
            "gauge",
            "Always 1: the top cause the latest investigation found on a host whose alarms are raised "
            "(cause: one of closed_port, aborted_connection, half_open, listen_queue_full, memory_pressure, "
            "time_wait_assassination).",
            ("host", "groups", "cause"),
            tuple(
                ((*label(v), v.cause.split(":", 1)[0]), 1.0)
                for v in hosts
                if v.cause and not v.cause.startswith("investigated")
            ),
        )
    )
    families.append(
        Family(
            "fleetrst_host_sample_age_seconds",
            "gauge",
            "Seconds since the host's latest sample reached fleetrst watch.",
            ("host", "groups"),
            tuple(
                (label(v), max(0.0, now - v.last_sample_at)) for v in hosts if v.last_sample_at is not None
            ),
        )
    )
    for metric, counter in NAMED_RATES.items():
        rate_samples = tuple(
            (label(v), v.rates.per_second[metric])
            for v in up
            if v.rates is not None and metric in v.rates.per_second
        )
        if rate_samples:
            families.append(
                Family(
                    f"fleetrst_host_{metric}_per_second",
                    "gauge",
                    f"{metric} ({counter}) per second over the latest 10 s {cached}.",
                    ("host", "groups"),
                    rate_samples,
                )
            )
    alarm_samples = [((*label(v), a.metric), _LEVEL_CODE[a.level]) for v in up for a in v.alarms]
    families.append(
        Family(
            "fleetrst_alarm_level",
            "gauge",
            "The level of the host's alarm on a metric (Netdata's rules, evaluated by fleetrst watch): "
            "0 ok, 1 warning, 2 critical.",
            ("host", "groups", "metric"),
            tuple(alarm_samples),
        )
    )
    families.append(
        Family(
            "fleetrst_watch_samples",
            "counter",
            "Samples received from all hosts since fleetrst watch started.",
            (),
            (((), float(samples_total)),),
        )
    )
    families.append(
        Family(
            "fleetrst_watch_interval_seconds",
            "gauge",
            "How often each host sends a sample (--every).",
            (),
            (((), every_s),),
        )
    )
    families.append(
        Family(
            "fleetrst_watch_hosts",
            "gauge",
            "Watched hosts by status.",
            ("status",),
            tuple(((s,), float(sum(1 for v in hosts if v.status == s))) for s in STATES),
        )
    )
    return families
