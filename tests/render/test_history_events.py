"""The watch's recorded events as ``history --events`` shows them: pure, events in, text and JSON out.

The events are the store's own :class:`RecordedEvent` (the renderer reads them through a protocol,
not importing the history layer); whatever text a host put in them reaches the terminal clean.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fleetrst.history.store import RecordedEvent
from fleetrst.render.history import (
    event_counts,
    event_detail,
    event_level,
    event_time,
    events_hint,
    events_json,
    render_events,
)
from tests.helpers import examples

AT = 1_795_000_000.5  # 2026-11-18T11:06:40.500Z


def recorded(event: str = "raised", host: str = "h002", **kw: Any) -> RecordedEvent:
    fields: dict[str, Any] = {
        "ts": AT,
        "at": "2026-11-18T11:06:40.500+00:00",
        "event": event,
        "host": host,
        "groups": ("fleet",),
        "metric": None,
        "level": None,
        "previous": None,
        "value": None,
        "limit": None,
        "baseline": None,
        "rule": None,
        "error": None,
        "error_kind": None,
        "down_s": None,
        "cause": None,
        "summary": None,
        "causes": (),
        "triggers": (),
    }
    return RecordedEvent(**(fields | kw))


RAISED = recorded(
    metric="resets_sent", level="critical", previous="warning", value=312.5, limit=250.0, rule="threshold"
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def test_each_kind_in_one_line() -> None:
    assert event_time(AT) == "2026-11-18 11:06:40Z"
    assert (event_level(RAISED), event_detail(RAISED)) == (
        "critical",
        "resets_sent 312.5/s (limit 250); was warning",
    )
    cleared = replace(RAISED, event="cleared", level="ok", previous="critical", value=1.25)
    assert (event_level(cleared), event_detail(cleared)) == (
        "ok",
        "resets_sent 1.2/s (limit 250); was critical",
    )
    lost = recorded("lost", error="timed out after 10s", error_kind="timeout")
    assert (event_level(lost), event_detail(lost)) == ("-", "timed out after 10s (timeout)")
    assert event_detail(recorded("back", down_s=12.04)) == "after 12s down"
    assert event_detail(recorded("back")) == "-"
    found = recorded(
        "investigated",
        level="critical",
        cause="closed_port",
        summary="nothing listens on 9",
        triggers=({"metric": "resets_sent"}, {"metric": "resets_received"}),
    )
    assert (event_level(found), event_detail(found)) == (
        "critical",
        "closed_port: nothing listens on 9 (raised: resets_sent, resets_received)",
    )
    assert event_detail(recorded("investigated", summary="no cause found (ss missing)")) == (
        "no cause found (ss missing)"
    )
    assert event_detail(recorded("investigated", error="internal error: boom")) == "internal error: boom"


def test_counts_name_the_kinds_there_are_in_the_watchs_order() -> None:
    events = [recorded("back"), RAISED, RAISED, recorded("investigated"), recorded("later")]
    assert event_counts(events) == "2 raised, 1 back, 1 investigated, 1 later"
    assert events_hint(events[:1], 86400, "fleetrst history 'h0*' --events") == (
        "1 watch event of these hosts in the last 1d (1 back): fleetrst history 'h0*' --events\n"
    )


def test_the_json_of_an_event_not_a_number_is_null() -> None:
    [doc] = events_json([replace(RAISED, value=float("nan"), baseline=float("inf"))])
    assert (doc["value"], doc["baseline"], doc["limit"]) == (None, None, 250.0)
    assert doc["time"] == "2026-11-18T11:06:40.500Z"
    json.dumps(doc, allow_nan=False)


def test_last_shows_the_latest_and_says_how_many_there_were() -> None:
    events = [recorded("lost", "h001"), recorded("back", "h001"), RAISED]
    text = render_events(events, last=2, pattern="web*", since_s=3600, where="h.sqlite")
    assert text.splitlines()[0] == (
        "3 watch events of 2 hosts matching 'web*' in the last 1h (1 raised, 1 lost, 1 back); the last 2, "
        "oldest first (h.sqlite)"
    )
    assert [line.split()[3] for line in text.splitlines()[3:]] == ["back", "raised"]
    assert "; the last" not in render_events(events, last=3, pattern=None, since_s=60, where="h")


TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("\x1b\x9b\x07\r\n\u202e[];"),
    max_size=40,
)


@examples(200)
@given(host=TEXT, error=TEXT, summary=TEXT, cause=TEXT, metric=TEXT, kind=st.sampled_from(["lost", "x\x1b"]))
def test_whatever_a_host_sent_the_lines_hold_no_control_character(
    host: str, error: str, summary: str, cause: str, metric: str, kind: str
) -> None:
    events = [
        recorded(kind, host, error=error, error_kind=error),
        recorded("investigated", host, cause=cause, summary=summary, triggers=({"metric": metric},)),
        recorded("investigated", host, error=error, level=summary),
        replace(RAISED, host=host, metric=metric, rule=cause, previous="critical"),
    ]
    text = render_events(events, last=None, pattern=host, since_s=60, where=summary)
    assert not CONTROL.search(text.replace("\n", "")), repr(text)
    assert len(text.splitlines()) == 3 + len(events), "one line an event, whatever it holds"
    assert not CONTROL.search(events_hint(events, 60, host).replace("\n", ""))
