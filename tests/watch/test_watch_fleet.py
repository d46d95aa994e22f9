"""``fleetrst watch`` on a real fleet: network namespaces, one real sshd each, real resets, real faults,
a real Prometheus scraping the endpoint. The CLI runs as users run it, as its own process.

One watch (``--every 2s``) lives through one scenario, run once for the module: a closed-port storm on
h002 (400 connects/s for 8 s), and meanwhile h003's sshd killed with its sessions for 3 s. The tests
below each read one part of what it reported. Then a watch killed by SIGKILL, a watch over paramiko
stopped by SIGTERM, the live view on a tmux terminal; and after each, nothing of the watch left running
on any host.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleetrst.testing import TestFleet
from fleetrst.testing.support import ci
from tests.conftest import MakeFleet

pytestmark = pytest.mark.fleet

EVERY = 2.0
STORM_RATE = 400  # connects/s to a closed port: resets sent and received at ~400/s
STORM_S = 8.0
LIMIT = 40  # --crit resets_sent=40 --crit resets_received=40: judged from the first rates, no baseline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def left_on_hosts(fleet: TestFleet) -> list[str]:
    """Every process of the fleet's login user in any host's network namespace: sessions, shells,
    cat, sleep. Once a watch has ended there must be none."""
    uid = pwd.getpwnam(fleet.user).pw_uid
    inodes = {h.netns_inode for h in fleet.hosts}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid and os.stat(entry / "ns" / "net").st_ino in inodes:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{entry.name}: {command}")
        except OSError:
            continue  # gone meanwhile
    return found


def nothing_left(fleet: TestFleet, within: float) -> list[str]:
    deadline = time.monotonic() + within
    while (left := left_on_hosts(fleet)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@dataclass
class Watcher:
    """``fleetrst watch`` as a process; its JSON events, as they arrive."""

    args: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetrst.cli", "watch", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def named(self, event: str, host: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event and (host is None or e["host"] == host)]

    def wait_for(self, what: Callable[[], Any], timeout: float, why: str) -> Any:
        deadline = time.monotonic() + timeout
        while not (got := what()):
            if self.proc.poll() is not None:
                raise AssertionError(f"the watch exited ({self.proc.returncode}): {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{why}: not within {timeout}s; events: {self.events}")
            time.sleep(0.05)
        return got

    def stop(self, sig: signal.Signals, timeout: float = 10) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code, time.monotonic() - start

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def all_up(port: int, hosts: int, samples: int) -> bool:
    try:
        text = metrics(port)
    except OSError:
        return False
    up = sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("fleetrst_host_up{")
    )
    total = next(
        (
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("fleetrst_watch_samples_total ")
        ),
        0.0,
    )
    return up == hosts and total >= samples


# --- a real Prometheus --------------------------------------------------------------------------------


class Prometheus:
    """Debian's ``prometheus``, on loopback, scraping ``target`` every second, with a throwaway data dir."""

    def __init__(self, work: Path, target: str) -> None:
        self.port = free_port()
        config = work / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: fleetrst\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = (work / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(shutil.which("prometheus")),
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as answer:
            doc = json.loads(answer.read())
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def prometheus_or_skip() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        message = "Debian's prometheus is not installed (apt-get install prometheus)"
        if ci():
            pytest.fail(f"{message}: CI must run this test", pytrace=False)
        pytest.skip(message)
    return binary


# --- the scenario -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    watcher: Watcher
    storm_start: float
    storm_end: float
    killed: float
    exit_code: int
    stop_s: float
    left: list[str]
    rates: list[dict[str, Any]]
    causes: list[str]
    db: Path


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> TestFleet:
    return make_fleet(3, {"web": ["h001", "h002"]})


@pytest.fixture(scope="module")
def scenario(fleet: TestFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    prometheus_or_skip()
    work = tmp_path_factory.mktemp("watch")
    port = free_port()
    prometheus = Prometheus(work, f"127.0.0.1:{port}")
    watcher = Watcher(
        [
            "-i",
            str(fleet.inventory_path),
            "--every",
            f"{EVERY:g}s",
            "--crit",
            f"resets_sent={LIMIT}",
            "--crit",
            f"resets_received={LIMIT}",
            "-o",
            "jsonl",
            "--listen",
            f"127.0.0.1:{port}",
            "--db",
            str(work / "history.sqlite"),
        ]
    )
    try:
        watcher.wait_for(lambda: all_up(port, 3, 6) and prometheus.ready(), 30, "every host up")
        # two scrapes of every host before h003 drops: its rate over the storm has samples from
        # before its loss however late it is back (else the query below can miss it)
        watcher.wait_for(
            lambda: len(prometheus.query("count_over_time(node_netstat_Tcp_OutRsts[30s]) >= 2")) == 3,
            15,
            "two scrapes of every host",
        )
        storm = fleet.closed_port_storm("h002", rate=STORM_RATE, duration=STORM_S)
        storm_start = time.time()
        fleet.stop_sshd("h003", kill_sessions=True)  # its connection drops with its sessions
        killed = time.time()
        time.sleep(3)
        fleet.start_sshd("h003")
        storm.wait(timeout=STORM_S + 10)
        storm_end = time.time()
        rates = prometheus.query("sort_desc(rate(node_netstat_Tcp_OutRsts[30s]))")
        causes = watcher.wait_for(
            lambda: [
                line for line in metrics(port).splitlines() if line.startswith("fleetrst_host_cause_info{")
            ],
            8,
            "the investigation's cause",
        )
        watcher.wait_for(lambda: watcher.named("cleared", "h002"), 10 + 3 * EVERY + 5, "h002 cleared")
        watcher.wait_for(lambda: watcher.named("back", "h003"), 25, "h003 back")
        code, stop_s = watcher.stop(signal.SIGINT)
        left = nothing_left(fleet, within=3)
        yield Scenario(
            watcher,
            storm_start,
            storm_end,
            killed,
            code,
            stop_s,
            left,
            rates,
            causes,
            work / "history.sqlite",
        )
    finally:
        if watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait()
        prometheus.close()


def _at(event: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


def test_a_storm_on_one_host_is_raised_within_two_rounds_naming_the_host_metric_value_and_limit(
    scenario: Scenario,
) -> None:
    raised = scenario.watcher.named("raised")
    assert {e["host"] for e in raised} == {"h002"}, raised
    assert {e["metric"] for e in raised} == {"resets_sent", "resets_received"}
    for event in raised:
        assert event["level"] == "critical" and event["previous"] == "ok" and event["limit"] == LIMIT
        assert event["value"] > LIMIT and event["rule"] == "threshold"
        assert event["groups"] == ["fleet", "web"]
        assert _at(event) - scenario.storm_start <= 2 * EVERY + 1.0, "raised within two rounds"


def test_the_storm_is_cleared_after_it_stops(scenario: Scenario) -> None:
    cleared = scenario.watcher.named("cleared", "h002")
    assert {e["metric"] for e in cleared} == {"resets_sent", "resets_received"}
    for event in cleared:
        assert event["level"] == "ok" and event["previous"] == "critical"
        assert event["value"] <= LIMIT and event["limit"] == LIMIT
        # the 10 s average falls under the limit once less than 1.3 s of storm is left in it
        assert scenario.storm_end - 1 < _at(event) <= scenario.storm_end + 10 + 2 * EVERY


def test_a_host_whose_sshd_is_killed_is_lost_then_back_and_nobody_else_is(scenario: Scenario) -> None:
    [lost] = scenario.watcher.named("lost")
    assert lost["host"] == "h003" and lost["error_kind"] == "lost"
    assert _at(lost) - scenario.killed < 2 * EVERY, "the dropped connection is noticed at once"
    [back] = scenario.watcher.named("back")
    assert back["host"] == "h003" and back["down_s"] >= 3.0
    events = [(e["event"], e["host"]) for e in scenario.watcher.events]
    assert not [e for e in events if e[1] == "h001"], "the quiet host said nothing"


def test_prometheus_scrapes_node_exporter_names_and_promql_names_the_storming_host(
    scenario: Scenario,
) -> None:
    top, *others = scenario.rates
    assert top["metric"]["host"] == "h002" and top["metric"]["groups"] == "fleet,web"
    assert float(top["value"][1]) > STORM_RATE / 10, top
    assert len(others) == 2 and all(float(o["value"][1]) < 5 for o in others), others


def test_the_raised_alarm_was_investigated_over_the_same_connection(scenario: Scenario) -> None:
    [cause] = scenario.causes
    assert 'host="h002"' in cause and 'cause="closed_port"' in cause, cause
    # ... and reported as an event: once (--investigate-every 10m), on the storming host only
    [found] = scenario.watcher.named("investigated")
    lines = (json.dumps(e, separators=(", ", ": ")) for e in scenario.watcher.events)
    print("\n" + "\n".join(lines))  # the JSON lines the README shows
    assert found["host"] == "h002" and found["groups"] == ["fleet", "web"]
    assert (found["cause"], found["error"], found["error_kind"]) == ("closed_port", None, None)
    investigation = found["investigation"]
    assert investigation["version"] == 1 and investigation["causes"][0]["cause"] == "closed_port"
    assert found["summary"] == investigation["causes"][0]["summary"]
    triggers = found["triggers"]
    assert triggers and {t["metric"] for t in triggers} <= {"resets_sent", "resets_received"}
    assert all(t["level"] == "critical" and t["limit"] == LIMIT and t["value"] > LIMIT for t in triggers)
    assert (found["metric"], found["level"]) == (triggers[0]["metric"], "critical")
    raised = scenario.watcher.named("raised", "h002")
    assert min(_at(e) for e in raised) <= _at(found) < min(_at(e) for e in scenario.watcher.named("cleared"))


def test_every_event_line_has_every_key(scenario: Scenario) -> None:
    keys = {tuple(event) for event in scenario.watcher.events}
    assert len(keys) == 1, keys
    [line] = keys
    assert line[-4:] == ("cause", "summary", "triggers", "investigation")
    kinds = {e["event"] for e in scenario.watcher.events}
    assert kinds == {"raised", "investigated", "cleared", "lost", "back"}


def test_ctrl_c_exits_130_promptly_and_leaves_nothing_running_on_any_host(scenario: Scenario) -> None:
    assert scenario.exit_code == 130
    assert scenario.stop_s < 5
    assert scenario.left == []


def test_the_events_are_in_the_history(scenario: Scenario) -> None:
    with sqlite3.connect(scenario.db) as db:
        rows = db.execute(
            "SELECT event, host, metric, level, limit_value, cause, summary FROM events ORDER BY ts"
        ).fetchall()
    streamed = [
        (e["event"], e["host"], e["metric"], e["level"], e["limit"], e["cause"], e["summary"])
        for e in scenario.watcher.events
    ]
    assert rows == streamed
    assert any(row[0] == "investigated" and row[5] == "closed_port" for row in rows)


def test_a_watch_killed_outright_leaves_no_remote_loop_behind(fleet: TestFleet) -> None:
    """No SIGTERM reaches the hosts: the connections just close, and each remote loop dies of SIGPIPE
    at its next write (one round at most)."""
    watcher = Watcher(["-i", str(fleet.inventory_path), "--every", "1s", "-o", "jsonl", "--no-history"])
    try:
        deadline = time.monotonic() + 20
        while len(left_on_hosts(fleet)) < 3 * 2 and time.monotonic() < deadline:  # a session + a loop each
            time.sleep(0.1)
        assert len(left_on_hosts(fleet)) >= 6, left_on_hosts(fleet)
        watcher.proc.kill()
        watcher.proc.wait()
        assert nothing_left(fleet, within=1.0 + 2.0) == []
    finally:
        if watcher.proc.poll() is None:
            watcher.proc.kill()


def test_paramiko_watches_too_and_sigterm_ends_it_with_143_and_nothing_left(fleet: TestFleet) -> None:
    watcher = Watcher(
        [
            "-i",
            str(fleet.inventory_path),
            "-c",
            "paramiko",
            "--every",
            "1s",
            "--crit",
            f"resets_sent={LIMIT}",
            "--crit",
            f"resets_received={LIMIT}",
            "-o",
            "jsonl",
            "--no-history",
        ]
    )
    try:
        with fleet.closed_port_storm("h001", rate=STORM_RATE, duration=6):
            watcher.wait_for(lambda: len(watcher.named("raised", "h001")) == 2, 15, "h001 raised")
        raised = watcher.named("raised", "h001")
        assert {e["metric"] for e in raised} == {"resets_sent", "resets_received"}
        assert {e["level"] for e in raised} == {"critical"}
        code, stop_s = watcher.stop(signal.SIGTERM)
        assert code == 143 and stop_s < 5
        assert nothing_left(fleet, within=3) == []
    finally:
        if watcher.proc.poll() is None:
            watcher.proc.kill()


# --- the live view, on a real terminal (tmux) -------------------------------------------------------


class Tmux:
    """A tmux server of our own (-L, no config), one detached session of ``width`` × ``height``."""

    def __init__(self, command: str, width: int = 150, height: int = 30) -> None:
        binary = shutil.which("tmux")
        if binary is None:
            if ci():
                pytest.fail("tmux is not installed: CI must run the live view's test", pytrace=False)
            pytest.skip("tmux is not installed")
        self.base = [binary, "-L", f"fleetrst-test-{os.getpid()}", "-f", "/dev/null"]
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", "watch", "-x", str(width), "-y", str(height), command],
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def screen(self) -> str:
        return subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True, check=False
        ).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "watch", *keys], check=True)

    def wait_for(self, what: Callable[[str], bool], timeout: float, why: str) -> str:
        deadline = time.monotonic() + timeout
        while not what(screen := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{why}: not within {timeout}s; the screen:\n{screen}")
            time.sleep(0.1)
        return screen

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, check=False)


def rows(screen: str) -> list[list[str]]:
    """The table's rows: lines that start with a host name."""
    return [line.split() for line in screen.splitlines() if line.startswith("h0")]


def test_the_live_view_on_a_terminal_worst_first_with_keys_to_sort_filter_and_quit(
    fleet: TestFleet, tmp_path: Path
) -> None:
    done = tmp_path / "exit-code"
    command = (
        f"{sys.executable} -m fleetrst.cli watch -i {fleet.inventory_path} --every 1s "
        f"--crit resets_sent={LIMIT} --crit resets_received={LIMIT} --no-history; echo $? > {done}"
    )
    tmux = Tmux(command)
    try:
        screen = tmux.wait_for(lambda s: len(rows(s)) == 3 and "3 ok" in s, 20, "three hosts up")
        assert "fleetrst watch" in screen and "fleet totals:" in screen
        assert [r[0] for r in rows(screen)] == ["h001", "h002", "h003"], "all ok: by name"
        with fleet.closed_port_storm("h002", rate=STORM_RATE, duration=6):
            screen = tmux.wait_for(lambda s: rows(s)[0][:2] == ["h002", "critical"], 10, "h002 on top")
            screen = tmux.wait_for(lambda s: "closed_port:" in s, 10, "the investigation's cause")
        print("\n" + screen)  # what the README shows
        assert "raised critical h002 resets_" in screen, "the event list"
        assert all(r[1] == "ok" for r in rows(screen)[1:])
        tmux.keys("s")
        screen = tmux.wait_for(lambda s: "sort: host" in s, 5, "sorted by host")
        assert [r[0] for r in rows(screen)] == ["h001", "h002", "h003"]
        tmux.keys("/", "h003", "Enter")
        screen = tmux.wait_for(lambda s: [r[0] for r in rows(s)] == ["h003"], 5, "filtered")
        assert "filter: h003" in screen
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() in ("0", "2"), "the fleet's state when q was pressed"
        assert nothing_left(fleet, within=3) == []
    finally:
        tmux.close()
