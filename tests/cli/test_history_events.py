"""``fleetrst history --events``: what ``fleetrst watch`` recorded, read back by the CLI as users run it.

The events go into a real history database through the store's own API, as the watch records them
(``HistoryStore.record_events``, its ``WatchEvent`` and ``InvestigatedEvent``); the CLI runs as its own
process on it.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetrst.history.store import HistoryStore
from fleetrst.investigate.result import CauseResult, Investigation, ProcessRef
from fleetrst.measure.alarms import AlarmState, WatchEvent
from fleetrst.render.watch import InvestigatedEvent
from tests.helpers import EVENT_LINE_SHAPE, host, report, run_cli

NOW = time.time()
DAY = 86400.0
SECRET = "--password=hunter2"
FOUND = Investigation(
    causes=(
        CauseResult(
            "closed_port",
            "programs on this host connect to port 9 of this host, where nothing listens",
            "start the service on port 9, or stop the clients",
            port=9,
            processes=(ProcessRef(4242, f"client {SECRET}", 9),),
        ),
    ),
)
TRIGGERS = (
    AlarmState("resets_received", "critical", None, 187.0, 40.0),
    AlarmState("resets_sent", "critical", None, 187.0, 40.0),
)
WEB = ("fleet", "web")
# A watch's events over three days: h003 lost long ago; then a storm on h002, raised, investigated and
# cleared; h001 (web too) lost and back; a spike on h003's own baseline.
EVENTS = [
    WatchEvent("lost", "h003", NOW - 3 * DAY, ("fleet",), error="connection refused", error_kind="refused"),
    WatchEvent(
        "raised",
        "h002",
        NOW - 3600,
        WEB,
        "resets_received",
        "critical",
        "ok",
        187.032,
        40.0,
        rule="threshold",
    ),
    WatchEvent(
        "raised", "h002", NOW - 3600, WEB, "resets_sent", "critical", "ok", 187.032, 40.0, rule="threshold"
    ),
    InvestigatedEvent("h002", NOW - 3599, WEB, TRIGGERS, FOUND),
    WatchEvent("lost", "h001", NOW - 3000, WEB, error="the connection was lost", error_kind="lost"),
    WatchEvent("back", "h001", NOW - 2994.6, WEB, down_s=5.378),
    WatchEvent(
        "cleared", "h002", NOW - 2400, WEB, "resets_received", "ok", "critical", 4.382, 40.0, rule="threshold"
    ),
    WatchEvent(
        "raised", "h003", NOW - 600, ("fleet",), "resets_sent", "warning", "ok", 61.2, 50.0, 3.1, "spike"
    ),
]
# Every key of every event in -o json: the watch's JSON line's, with "causes" (what the history keeps
# of an investigation) in place of "investigation", and no "v".
SHAPE: dict[str, tuple[type, ...]] = {
    **{k: v for k, v in EVENT_LINE_SHAPE.items() if k not in ("v", "investigation")},
    "causes": (list, type(None)),
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "history.sqlite"
    with HistoryStore.open(path) as store:
        assert store.record_events(EVENTS, NOW - 4 * DAY) == len(EVENTS)
    return path


def history(db: Path, tmp_path: Path, cli_env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = run_cli("history", "--db", str(db), *args, env=cli_env, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def rows(out: str) -> list[list[str]]:
    """The event lines under the header, as (time, host, event, level, what)."""
    lines = out.splitlines()
    assert lines[1].split() == ["TIME", "HOST", "EVENT", "LEVEL", "WHAT"], out
    assert set(lines[2]) <= {"-", " "}
    return [re.split(r"\s{2,}", line.strip(), maxsplit=4) for line in lines[3:]]


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def test_every_event_of_the_period_one_line_each_oldest_first(
    db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    code, out, _ = history(db, tmp_path, cli_env, "--events")
    assert code == 0
    assert out.splitlines()[0] == (
        "8 watch events of 3 hosts in the last 7d (3 raised, 1 cleared, 2 lost, 1 back, 1 investigated), "
        f"oldest first ({db})"
    )
    assert rows(out) == [
        [utc(NOW - 3 * DAY), "h003", "lost", "-", "connection refused (refused)"],
        [utc(NOW - 3600), "h002", "raised", "critical", "resets_received 187.0/s (limit 40)"],
        [utc(NOW - 3600), "h002", "raised", "critical", "resets_sent 187.0/s (limit 40)"],
        [
            utc(NOW - 3599),
            "h002",
            "investigated",
            "critical",
            "closed_port: programs on this host connect to port 9 of this host, where nothing listens "
            "(raised: resets_received, resets_sent)",
        ],
        [utc(NOW - 3000), "h001", "lost", "-", "the connection was lost (lost)"],
        [utc(NOW - 2994.6), "h001", "back", "-", "after 5.4s down"],
        [utc(NOW - 2400), "h002", "cleared", "ok", "resets_received 4.4/s (limit 40); was critical"],
        [
            utc(NOW - 600),
            "h003",
            "raised",
            "warning",
            "resets_sent 61.2/s (limit 50, spike rule, baseline 3.1/s)",
        ],
    ]
    assert SECRET not in out and "4242" not in out, "no process, no command line"


def test_hosts_are_chosen_as_for_the_audits_by_name_group_or_glob(
    db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    _, out, _ = history(db, tmp_path, cli_env, "web", "--events")
    assert {r[1] for r in rows(out)} == {"h001", "h002"}
    assert "of 2 hosts matching 'web'" in out.splitlines()[0]
    _, out, _ = history(db, tmp_path, cli_env, "h00[13]", "--events")
    assert {r[1] for r in rows(out)} == {"h001", "h003"}
    _, out, _ = history(db, tmp_path, cli_env, "h003,h002", "--events")
    assert {r[1] for r in rows(out)} == {"h002", "h003"}
    code, out, err = history(db, tmp_path, cli_env, "db*", "--events")
    assert (code, out) == (1, "")
    assert err == "fleetrst: no recorded watch events of hosts matching 'db*' in the last 7d\n"


def test_since_the_period_and_last_the_latest(db: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    _, out, _ = history(db, tmp_path, cli_env, "--events", "--since", "1d")
    assert len(rows(out)) == 7 and "h003" not in rows(out)[0][1], "the lost of 3 days ago is out"
    _, out, _ = history(db, tmp_path, cli_env, "--events", "--since", "45m")
    assert [r[2] for r in rows(out)] == ["cleared", "raised"]
    code, out, _ = history(db, tmp_path, cli_env, "--events", "--last", "2")
    assert code == 0 and [(r[1], r[2]) for r in rows(out)] == [("h002", "cleared"), ("h003", "raised")]
    assert out.startswith(
        "8 watch events of 3 hosts in the last 7d (3 raised, 1 cleared, 2 lost, 1 back, 1 investigated); "
        "the last 2, oldest first"
    )
    _, out, _ = history(db, tmp_path, cli_env, "web", "--events", "-n", "100")
    assert len(rows(out)) == 6, "-n more than there are: all of them"


def test_metric_keeps_that_metrics_alarms_and_the_investigations_they_started(
    db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    _, out, _ = history(db, tmp_path, cli_env, "--events", "--metric", "resets_sent")
    assert [(r[1], r[2]) for r in rows(out)] == [
        ("h002", "raised"),
        ("h002", "investigated"),
        ("h003", "raised"),
    ]
    code, _, err = history(db, tmp_path, cli_env, "--events", "--metric", "listen_drops")
    assert code == 1 and "no recorded watch events of listen_drops of hosts" in err


def test_json_has_every_event_with_the_watch_lines_keys(
    db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    code, out, _ = history(db, tmp_path, cli_env, "--events", "-o", "json")
    assert code == 0
    docs = json.loads(out)
    assert [(d["event"], d["host"]) for d in docs] == [(e.event, e.host) for e in EVENTS]
    for d in docs:
        assert set(d) == set(SHAPE), d
        for key, types in SHAPE.items():
            assert isinstance(d[key], types), (key, d)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["time"]), d["time"]
    raised = docs[1]
    assert raised | {"time": None} == {
        "event": "raised",
        "time": None,
        "host": "h002",
        "groups": ["fleet", "web"],
        "metric": "resets_received",
        "level": "critical",
        "previous": "ok",
        "value": 187.032,
        "limit": 40.0,
        "baseline": None,
        "rule": "threshold",
        "error": None,
        "error_kind": None,
        "down_s": None,
        "cause": None,
        "summary": None,
        "triggers": None,
        "causes": None,
    }
    found = docs[3]
    assert (found["cause"], found["metric"], found["level"]) == ("closed_port", "resets_received", "critical")
    assert found["causes"] == [
        {
            "cause": "closed_port",
            "summary": FOUND.causes[0].summary,
            "port": 9,
            "next_step": "start the service on port 9, or stop the clients",
        }
    ]
    assert [t["metric"] for t in found["triggers"]] == ["resets_received", "resets_sent"]
    assert docs[5]["down_s"] == 5.378 and docs[0]["error_kind"] == "refused"
    assert SECRET not in out
    code, out, _ = history(db, tmp_path, cli_env, "db*", "--events", "-o", "json")
    assert (code, json.loads(out)) == (0, []), "nothing to show is an empty list, as for the trends"


def test_a_failed_investigation_shows_its_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    path = tmp_path / "h.sqlite"
    failed = InvestigatedEvent("h9", NOW - 5, (), TRIGGERS[:1], error="internal error: RuntimeError: boom")
    nothing = InvestigatedEvent("h9", NOW - 4, (), (), Investigation(unseen=("ss is not installed",)))
    with HistoryStore.open(path) as store:
        store.record_events([failed, nothing], NOW - 10)
    _, out, _ = history(path, tmp_path, cli_env, "--events")
    assert [r[3:] for r in rows(out)] == [
        ["critical", "internal error: RuntimeError: boom (raised: resets_received)"],
        ["-", "no cause found (ss is not installed)"],
    ]
    _, out, _ = history(path, tmp_path, cli_env, "--events", "-o", "json")
    docs = json.loads(out)
    assert (docs[0]["error_kind"], docs[0]["causes"], docs[1]["causes"]) == ("internal", None, [])


HOSTILE_HOST = "evil\x1b]0;owned\x07\x1b[2J"
HOSTILE_TEXT = "refused\n\x1b[31mFAKE raised critical h001\x1b[0m\r\x9b2J\u202etxt"


def test_hostile_host_text_reaches_the_terminal_clean_and_json_intact(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    path = tmp_path / "h.sqlite"
    events = [
        WatchEvent("lost", HOSTILE_HOST, NOW - 30, ("x\x1b[1m",), error=HOSTILE_TEXT, error_kind="lost\x1b"),
        InvestigatedEvent(
            HOSTILE_HOST,
            NOW - 20,
            (),
            TRIGGERS,
            Investigation(causes=(CauseResult("closed_port\x1b[5m", HOSTILE_TEXT, "next\n\x1b[0m"),)),
        ),
        WatchEvent("raised", "h001", NOW - 10, (), "resets\x1b[8m_sent", "critical", "ok", 99.0, 50.0),
    ]
    with HistoryStore.open(path) as store:
        store.record_events(events, NOW - 40)
    for args in (("--events",), ("evil*", "--events")):
        code, out, _ = history(path, tmp_path, cli_env, *args)
        assert code == 0
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]", out), repr(out)
        assert len(out.splitlines()) == 3 + (3 if args == ("--events",) else 2), "one line an event"
        assert "\\x1b[31mFAKE raised critical h001\\x1b[0m" in out, "shown as escapes, never acted on"
        assert "evil\\x1b]0;owned\\x07\\x1b[2J" in out
    _, out, _ = history(path, tmp_path, cli_env, "--events", "-o", "json")
    docs = json.loads(out)
    assert "\x1b" not in out and (docs[0]["host"], docs[0]["error"]) == (HOSTILE_HOST, HOSTILE_TEXT)
    assert docs[1]["summary"] == HOSTILE_TEXT, "JSON keeps the text as it was: it escapes by itself"


def test_the_trends_table_says_there_are_events_and_how_to_see_them(
    db: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    code, out, err = history(db, tmp_path, cli_env)
    assert code == 1 and out == ""
    assert err == (
        "fleetrst: no recorded audits of hosts in the last 7d; but 8 watch events (3 raised, 1 cleared, "
        f"2 lost, 1 back, 1 investigated): fleetrst history --events --db {db}\n"
    ), "a watch-only history is not empty"
    with HistoryStore.open(db) as store:
        started = datetime.fromtimestamp(NOW - 120, UTC).isoformat(timespec="seconds")
        audit = [host("h001", groups=WEB), host("h002", "warning", sent=120.0, groups=WEB)]
        store.record(report(audit, started_at=started), 1)
    code, out, _ = history(db, tmp_path, cli_env, "web")
    assert code == 0 and "2 hosts matching 'web', 1 audit in the last 7d" in out.splitlines()[0]
    assert out.splitlines()[-1] == (
        "6 watch events of these hosts in the last 7d (2 raised, 1 cleared, 1 lost, 1 back, 1 investigated): "
        f"fleetrst history web --events --db {db}"
    )
    # The command it names is the one to type: the pattern quoted, --since when not the default, and
    # --db only when it is not the settings' own.
    (tmp_path / "fleetrst.toml").write_text(f'db = "{db}"\n')
    proc = run_cli("history", "h00[12]", "--since", "30d", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1].endswith(
        ": fleetrst history 'h00[12]' --events --since 30d"
    ), proc.stdout
    code, out, _ = history(db, tmp_path, cli_env, "web", "-o", "json")
    assert code == 0 and {t["host"] for t in json.loads(out)} == {"h001", "h002"}, (
        "the trends' JSON as before"
    )
    code, out, _ = history(db, tmp_path, cli_env, "web", "--since", "10m")
    assert code == 0 and "1 audit" in out and "watch event" not in out, (
        "none of these hosts' in the period: no line"
    )


def test_last_without_events_is_a_usage_error(db: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    code, _, err = history(db, tmp_path, cli_env, "--last", "3")
    assert code == 64 and "--last counts watch events: give it with --events" in err
    code, _, err = history(db, tmp_path, cli_env, "--events", "--last", "0")
    assert code == 64 and "must be at least 1" in err
