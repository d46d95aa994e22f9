"""The watch's ``investigated`` event: a raised alarm's investigation, finished, reported as an event
(the top cause, what triggered it, the whole investigation), in the JSON lines and in the history.

The watch runs over the test transport (fake hosts streaming real /proc frames, see ``test_watch.py``);
the investigator is a fake that answers what each test wants, over the connection the watch gives it.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from fleetrst.cli.watch import _History, _json_lines
from fleetrst.history import store as history
from fleetrst.history.store import HistoryStore
from fleetrst.investigate.result import CauseResult, Evidence, Investigation, ProcessRef
from fleetrst.measure.alarms import AlarmState, WatchEvent
from fleetrst.model import Target
from fleetrst.render.schema import investigation_json
from fleetrst.render.watch import (
    EVENT_SCHEMA,
    InvestigatedEvent,
    LiveFrame,
    event_json,
    event_text,
    live_view,
)
from tests.helpers import EVENT_LINE_SHAPE
from tests.watch.streaming_host import StreamingHost
from tests.watch.test_watch import Run

SECRET = "--password=hunter2"  # in a process's command line: the JSON line may show it, the history never
FOUND = Investigation(
    causes=(
        CauseResult(
            "closed_port",
            "programs on this host connect to port 9 of this host, where nothing listens",
            "start the service on port 9, or stop the clients",
            port=9,
            processes=(ProcessRef(4242, f"client {SECRET}", 9),),
            evidence=Evidence({"resets_sent": 120.0}, {"SYN-SENT": 3}),
        ),
    ),
    states={"ESTAB": 4, "SYN-SENT": 3},
    sockets_seen=7,
    unseen=("other users' processes (not root)",),
    elapsed_s=0.4,
)
NOTHING = Investigation(unseen=("ss (iproute2) is not installed",), errors=("ss: not installed",))

LINE_SHAPE = EVENT_LINE_SHAPE
TRIGGER_KEYS = {"metric", "level", "value", "limit", "baseline", "rule"}
# The investigation object as README.md documents it for `fleetrst investigate -o json` (version 1).
INVESTIGATION_KEYS = {
    "version",
    "causes",
    "top",
    "processes",
    "states",
    "sockets_seen",
    "top_ports",
    "stuck_peers",
    "listeners",
    "capture",
    "context",
    "logs",
    "become",
    "privileged",
    "unseen",
    "errors",
    "elapsed_s",
}


def check_line(line: str) -> dict[str, Any]:
    """One event line against its documented shape; the object."""
    assert "\n" not in line
    doc = json.loads(line)
    assert isinstance(doc, dict)
    assert list(doc) == list(LINE_SHAPE), "every key, always, in the same order"
    for key, types in LINE_SHAPE.items():
        assert isinstance(doc[key], types), (key, doc[key])
    assert doc["v"] == EVENT_SCHEMA == 1
    assert doc["event"] in ("raised", "cleared", "lost", "back", "investigated")
    assert doc["time"].endswith("Z") and all(isinstance(g, str) for g in doc["groups"])
    extra = ("cause", "summary", "triggers", "investigation")
    if doc["event"] != "investigated":
        assert all(doc[key] is None for key in extra), doc
        return doc
    assert doc["previous"] is None and doc["down_s"] is None
    assert isinstance(doc["triggers"], list) and doc["triggers"], "what started it"
    for trigger in doc["triggers"]:
        assert set(trigger) == TRIGGER_KEYS and trigger["level"] in ("warning", "critical")
    assert doc["metric"] == doc["triggers"][0]["metric"] and doc["level"] == doc["triggers"][0]["level"]
    if doc["error"] is not None:
        assert doc["error_kind"] == "internal"
        assert doc["investigation"] is None and doc["cause"] is None and doc["summary"] is None
    else:
        assert doc["error_kind"] is None and isinstance(doc["summary"], str)
        assert set(doc["investigation"]) == INVESTIGATION_KEYS
        causes = doc["investigation"]["causes"]
        assert doc["cause"] == (causes[0]["cause"] if causes else None)
    return doc


Outcome = Investigation | BaseException


class Investigator:
    """Answers each ask with the next of ``outcomes`` (the last one again once they run out), or with
    the host's own in ``by_host``: an investigation, or an exception it raises. Records who was asked,
    about what, over which session."""

    def __init__(self, *outcomes: Outcome, by_host: dict[str, Outcome] | None = None) -> None:
        self.outcomes = outcomes
        self.by_host = by_host or {}
        self.asked: list[tuple[str, tuple[str, ...], Any]] = []

    async def investigate(self, session: Any, target: Target, rates: Any, verdict: Any) -> Investigation:
        self.asked.append((target.name, tuple(t.metric for t in verdict.tripped), session))
        outcome = self.by_host.get(target.name) or self.outcomes[min(len(self.asked), len(self.outcomes)) - 1]
        await asyncio.sleep(0.01)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def watch(
    hosts: dict[str, StreamingHost],
    investigator: Investigator,
    body: Callable[[Run], Any],
    **options: Any,
) -> Run:
    settings: dict[str, Any] = {
        "investigate_every_s": 3600.0,
        "crit": {"resets_sent": 40.0, "resets_received": 40.0},
    }
    settings.update(options)
    run = Run(hosts, **settings)
    run.watch.investigator = investigator

    async def main() -> None:
        task = asyncio.create_task(run.watch.run())
        try:
            await body(run)
        finally:
            run.watch.stop()
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    return run


def investigated(run: Run) -> list[InvestigatedEvent]:
    return [e for e in run.events if isinstance(e, InvestigatedEvent)]


def storm(host: StreamingHost) -> None:
    host.rates = {"OutRsts": 120.0, "AttemptFails": 90.0}  # both over --crit 40, at once


def test_a_raised_alarm_gives_an_investigated_event_with_the_cause_what_raised_it_and_the_whole_result() -> (
    None
):
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}
    investigator = Investigator(FOUND)

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)
        storm(hosts["h1"])
        await run.until(lambda: bool(investigated(run)))

    run = watch(hosts, investigator, body)
    [event] = investigated(run)
    assert (event.event, event.host, event.groups) == ("investigated", "h1", ("fleet", "web"))
    assert event.cause == "closed_port"
    assert event.summary == "programs on this host connect to port 9 of this host, where nothing listens"
    assert event.investigation is FOUND and event.error is None
    assert [(t.metric, t.level, t.limit) for t in event.triggers] == [
        ("resets_received", "critical", 40.0),
        ("resets_sent", "critical", 40.0),
    ], "every alarm raised when it started, worst first"
    [(name, tripped, session)] = investigator.asked
    assert name == "h1" and set(tripped) == {"resets_sent", "resets_received"}
    assert session is not None and run.fake.opens["h1"] == 1, "over the watch's own connection"
    kinds = [e.event for e in run.events]
    assert kinds[: kinds.index("investigated")].count("raised") == 2, "raised first, then investigated"
    assert {e.host for e in run.events} == {"h1"}, "the quiet host: nothing"
    assert event.at >= max(e.at for e in run.named("raised"))
    assert run.watch.investigated == 1
    view = run.watch.views()[0]
    assert view.cause == f"closed_port: {event.summary}", "the CAUSE column says the same"

    doc = check_line(event_json(event))
    assert doc["cause"] == "closed_port" and doc["summary"] == event.summary
    assert (doc["host"], doc["groups"], doc["metric"], doc["level"]) == (
        "h1",
        ["fleet", "web"],
        "resets_received",
        "critical",
    )
    assert [t["metric"] for t in doc["triggers"]] == ["resets_received", "resets_sent"]
    assert doc["triggers"][1]["value"] == pytest.approx(120.0)
    assert doc["investigation"] == json.loads(json.dumps(investigation_json(FOUND))), (
        "what fleetrst investigate -o json gives for the host"
    )


def test_a_second_raise_within_the_period_is_not_investigated_again_after_it_is() -> None:
    hosts: dict[str, StreamingHost] = {}

    async def raised_twice(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)
        hosts["h1"].rates = {"OutRsts": 120.0}
        await run.until(lambda: bool(investigated(run)))
        hosts["h1"].rates = {}
        await run.until(lambda: bool(run.named("cleared")))
        hosts["h1"].rates = {"OutRsts": 120.0}  # raised again
        await run.until(lambda: len(run.named("raised")) == 2)
        later = hosts["h1"].frames + 25  # time for an investigation (10 ms) many times over
        await run.until(lambda: len(investigated(run)) == 2 or hosts["h1"].frames >= later)

    hosts["h1"] = StreamingHost()
    within = Investigator(FOUND)
    run = watch(hosts, within, raised_twice)  # investigate_every_s: an hour
    assert [e.event for e in run.events] == ["raised", "investigated", "cleared", "raised"]
    assert len(within.asked) == 1 and run.watch.investigated == 1

    hosts["h1"] = StreamingHost()
    after = Investigator(FOUND, NOTHING)
    run = watch(hosts, after, raised_twice, investigate_every_s=0.0)
    assert [e.event for e in run.events] == ["raised", "investigated", "cleared", "raised", "investigated"]
    assert [e.cause for e in investigated(run)] == ["closed_port", None], "a period of 0: every raise"
    assert investigated(run)[1].summary == "no cause found (ss (iproute2) is not installed)"


def test_an_investigator_that_raises_gives_an_investigated_event_with_the_error_and_the_watch_goes_on() -> (
    None
):
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}
    investigator = Investigator(RuntimeError("boom"))

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)
        hosts["h1"].rates = {"OutRsts": 120.0}
        await run.until(lambda: bool(investigated(run)))
        later = hosts["h1"].frames + 3
        await run.until(lambda: hosts["h1"].frames >= later)
        hosts["h1"].rates = {}
        await run.until(lambda: bool(run.named("cleared")))

    run = watch(hosts, investigator, body)
    [event] = investigated(run)
    assert event.error == "internal error: RuntimeError: boom"
    assert event.investigation is None and event.cause is None and event.summary is None
    assert [t.metric for t in event.triggers] == ["resets_sent"]
    assert [e.event for e in run.events] == ["raised", "investigated", "cleared"], "it went on"
    assert run.fake.opens["h1"] == 1, "the host was not lost over it"
    views = {v.host: v for v in run.watch.views()}
    assert views["h1"].state == "up" and views["h1"].status == "ok" and views["h2"].status == "ok"
    doc = check_line(event_json(event))
    assert (doc["error"], doc["error_kind"], doc["investigation"]) == (event.error, "internal", None)
    assert event.text == "investigated: internal error: RuntimeError: boom"


def test_no_cause_found_says_what_could_not_be_seen() -> None:
    event = InvestigatedEvent(
        "h1",
        1_795_000_000.0,
        (),
        (AlarmState("resets_sent", "warning", None, 70.0, 50.0, 0.0, "spike"),),
        NOTHING,
    )
    assert event.cause is None and event.summary == "no cause found (ss (iproute2) is not installed)"
    assert event.text == "investigated: no cause found (ss (iproute2) is not installed)"
    doc = check_line(event_json(event))
    assert (doc["metric"], doc["level"], doc["rule"], doc["baseline"]) == (
        "resets_sent",
        "warning",
        "spike",
        0.0,
    )
    assert doc["investigation"]["errors"] == ["ss: not installed"]
    assert InvestigatedEvent("h1", 0.0, (), (), Investigation()).summary == "no cause found"


def _a_watch_with_everything() -> list[Any]:
    """A watch whose events are of every kind (an investigation found, one failed; lost and back),
    written as the command writes them: JSON lines on a stream, the history through its thread."""
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}
    investigator = Investigator(by_host={"h1": FOUND, "h2": RuntimeError("boom")})

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2 and hosts["h2"].frames >= 2)
        storm(hosts["h1"])
        hosts["h2"].rates = {"OutRsts": 120.0}
        await run.until(lambda: len(investigated(run)) == 2)
        hosts["h2"].drop_after = 0
        hosts["h2"].down = True
        await run.until(lambda: bool(run.named("lost")))
        hosts["h2"].down = False
        hosts["h2"].rates = {}
        await run.until(lambda: bool(run.named("back")))

    return list(watch(hosts, investigator, body).events)


def test_every_event_is_in_the_json_lines_with_every_key_and_in_the_history_without_command_lines(
    tmp_path: Path,
) -> None:
    events = _a_watch_with_everything()
    assert {e.event for e in events} >= {"raised", "investigated", "lost", "back"}

    out = io.StringIO()
    write = _json_lines(out, lambda: None)
    store = HistoryStore.open(tmp_path / "h.sqlite")
    recorder = _History(store, 1_794_999_990.0)
    for event in events:
        write(event)
        recorder.add(event)
    recorder.close()  # what is pending is written, and the store closed

    lines = out.getvalue().splitlines()
    docs = [check_line(line) for line in lines]
    assert [d["event"] for d in docs] == [e.event for e in events]
    found = next(d for d in docs if d["event"] == "investigated" and d["error"] is None)
    failed = next(d for d in docs if d["event"] == "investigated" and d["error"] is not None)
    assert (found["host"], found["cause"]) == ("h1", "closed_port")
    assert (failed["host"], failed["error"]) == ("h2", "internal error: RuntimeError: boom")
    assert SECRET in json.dumps(found["investigation"]), "stdout is the user's: the whole investigation"

    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        recorded = store.events()
    assert [(r.event, r.host) for r in recorded] == [(d["event"], d["host"]) for d in docs]
    row = next(r for r in recorded if r.event == "investigated" and r.host == "h1")
    assert (row.cause, row.summary, row.metric, row.level, row.limit) == (
        "closed_port",
        found["summary"],
        "resets_received",
        "critical",
        40.0,
    )
    assert row.causes == (
        {
            "cause": "closed_port",
            "summary": found["summary"],
            "port": 9,
            "next_step": "start the service on port 9, or stop the clients",
        },
    ), "what an audit keeps of an investigation"
    assert [t["metric"] for t in row.triggers] == ["resets_received", "resets_sent"]
    assert row.describe().endswith(
        f"investigated h1: closed_port: {found['summary']} (raised: resets_received, resets_sent)"
    )
    failed_row = next(r for r in recorded if r.event == "investigated" and r.host == "h2")
    assert (failed_row.error, failed_row.error_kind, failed_row.cause, failed_row.causes) == (
        "internal error: RuntimeError: boom",
        "internal",
        None,
        (),
    )
    assert failed_row.describe().endswith("investigated h2: internal error: RuntimeError: boom")
    raised = next(r for r in recorded if r.event == "raised")
    assert raised.cause is None and raised.causes == () and raised.triggers == ()
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        dumped = "\n".join(db.iterdump())
    assert "hunter2" not in dumped and "4242" not in dumped, "no process, no command line in the history"


def test_a_history_from_before_investigated_events_gets_their_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite"
    old = WatchEvent(
        "lost", "h3", 1_795_000_001.0, ("fleet",), error="connection refused", error_kind="refused"
    )
    with monkeypatch.context() as m:
        m.setattr(history, "MIGRATIONS", history.MIGRATIONS[:4])
        with HistoryStore.open(path) as store:
            assert store.version == 4
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (ts, at, event, host, groups, error, error_kind, watch_started_ts,"
            " fleetrst_version) VALUES (?, 'then', 'lost', 'h3', '[]', 'refused by h3', 'refused', 0, 'old')",
            (old.at,),
        )
    db.close()
    with HistoryStore.open(path) as store:
        assert store.version == len(history.MIGRATIONS) >= 5
        event = InvestigatedEvent(
            "h1", old.at + 1, ("web",), (AlarmState("resets_sent", "critical", None, 300.0, 250.0),), FOUND
        )
        assert store.record_events([old, event], 0.0) == 2
        recorded = store.events()
    assert [(r.event, r.cause) for r in recorded] == [
        ("lost", None),
        ("lost", None),
        ("investigated", "closed_port"),
    ]
    assert recorded[0].describe() == "then lost h3: refused by h3"


def test_the_live_view_lists_investigations_among_the_events() -> None:
    found = InvestigatedEvent(
        "h002", 1_795_000_000.0, ("web",), (AlarmState("resets_sent", "critical", None, 300.0, 250.0),), FOUND
    )
    failed = InvestigatedEvent("h003", 1_795_000_001.0, (), (), error="internal error: KeyError: 'x'")
    assert event_text(found).endswith(
        "investigated h002: closed_port: programs on this host connect to port 9 of this host, where "
        "nothing listens"
    )
    assert event_text(failed).endswith("investigated h003: internal error: KeyError: 'x'")
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None, force_terminal=False)
    events: Sequence[Any] = (found, failed)
    console.print(live_view(LiveFrame([], 1_795_000_002.0, 10.0, 1_795_000_000.0, events=events)))
    text = console.export_text()
    assert "investigated h002: closed_port" in text and "investigated h003: internal error" in text
    narrow = Console(width=60, record=True, color_system=None, force_terminal=False)
    narrow.print(live_view(LiveFrame([], 1_795_000_002.0, 10.0, 1_795_000_000.0, events=events)))
    [line] = [line for line in narrow.export_text().splitlines() if "h002" in line]
    assert line.endswith("…") and "closed_port" in line, "one line each, cut to the width"
