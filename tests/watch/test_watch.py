"""The watch over the test transport: fake hosts stream real /proc frames, everything above the seam runs
for real (frames parsed as they arrive, Netdata's rules, lost and back, backoff, staleness, stop).

Each fake frame stands for 10 s of the host's own uptime and arrives a few milliseconds after the
last, so minutes of a watch take a fraction of a second.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from fleetrst.measure.alarms import WatchEvent
from fleetrst.model import ConnectionSettings, Target
from fleetrst.transport.base import ExecResult
from fleetrst.transport.testing import FunctionTransport
from fleetrst.watch import Watch, WatchOptions, backoff_delay
from tests.watch.streaming_host import StreamingHost


def _target(name: str, **fleetrst_vars: Any) -> Target:
    return Target(name, ("fleet", "web"), ConnectionSettings(address=f"10.0.0.{len(name)}"), fleetrst_vars)


def _no_command(target: Target, command: str) -> ExecResult:
    raise AssertionError(f"the watch runs nothing but its stream, not {command!r}")


class Run:
    """A watch of ``hosts`` over the test transport, and what it reported."""

    def __init__(
        self, hosts: Mapping[str, StreamingHost], targets: list[Target] | None = None, **options: Any
    ):
        self.hosts = hosts
        self.events: list[WatchEvent] = []
        self.fake = FunctionTransport(
            _no_command,
            connect=lambda t: hosts[t.name].connect(t),
            streamer=lambda t, command: hosts[t.name].stream(t, command),
        )
        settings: dict[str, Any] = {
            "every_s": 10.0,
            "stale_after_s": 3.0,  # a loaded machine must not make a fake host stale
            "backoff_min_s": 0.01,
            "backoff_max_s": 0.04,
        }
        settings.update(options)
        self.watch = Watch(
            targets or [_target(name) for name in hosts],
            WatchOptions(**settings),
            self.fake,
            self.events.append,
        )

    def named(self, event: str, host: str | None = None) -> list[WatchEvent]:
        return [e for e in self.events if e.event == event and (host is None or e.host == host)]

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            await asyncio.sleep(0.001)


def scenario(hosts: Mapping[str, StreamingHost], body: Callable[[Run], Any], **options: Any) -> Run:
    run = Run(hosts, **options)

    async def main() -> None:
        task = asyncio.create_task(run.watch.run())
        try:
            await body(run)
        finally:
            run.watch.stop()
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    return run


def test_a_storm_is_raised_at_once_after_a_quiet_minute_then_cleared_and_quiet_hosts_say_nothing() -> None:
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}
    at_storm: dict[str, int] = {}

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 9)  # a minute and a half of quiet: a baseline
        at_storm["frames"] = hosts["h1"].frames
        hosts["h1"].rates = {"OutRsts": 120.0}  # 120/s > 10 × max(5, 0)
        await run.until(lambda: bool(run.named("raised")))
        at_storm["raised"] = hosts["h1"].frames
        hosts["h1"].rates = {}
        await run.until(lambda: bool(run.named("cleared")))

    run = scenario(hosts, body)
    [raised] = run.named("raised")
    assert (raised.host, raised.metric, raised.level, raised.rule) == (
        "h1",
        "resets_sent",
        "warning",
        "spike",
    )
    assert raised.limit == 50.0 and raised.baseline == 0.0 and raised.value == pytest.approx(120.0)
    assert raised.groups == ("fleet", "web")
    assert at_storm["raised"] - at_storm["frames"] <= 2, "raised within two rounds"
    [cleared] = run.named("cleared")
    assert (cleared.host, cleared.metric, cleared.level, cleared.previous) == (
        "h1",
        "resets_sent",
        "ok",
        "warning",
    )
    assert [e.event for e in run.events] == ["raised", "cleared"], "h2 and the rest said nothing"
    views = {v.host: v for v in run.watch.views()}
    assert views["h2"].state == "up" and views["h2"].status == "ok" and views["h2"].samples >= 9
    assert views["h1"].rates is not None and views["h1"].counters is not None
    assert "OutRsts" in views["h1"].counters.tcp and "TCPAbortOnData" in views["h1"].counters.tcpext
    assert len(views["h1"].counters.tcpext) < 40, "a watch keeps a few dozen counters, not all ~150"


def test_a_critical_threshold_from_the_command_line_applies_from_the_first_rates_and_clears_under_it() -> (
    None
):
    hosts = {"h1": StreamingHost(rates={"AttemptFails": 80.0})}

    async def body(run: Run) -> None:
        await run.until(lambda: bool(run.named("raised")))
        assert run.watch.exit_code == 2
        hosts["h1"].rates = {}
        await run.until(lambda: bool(run.named("cleared")))

    run = scenario(hosts, body, crit={"resets_received": 40.0})
    [raised] = run.named("raised")
    assert (raised.metric, raised.level, raised.limit, raised.rule) == (
        "resets_received",
        "critical",
        40.0,
        "threshold",
    )
    [cleared] = run.named("cleared")
    assert (cleared.level, cleared.previous, cleared.limit, cleared.rule) == (
        "ok",
        "critical",
        40.0,
        "threshold",
    )
    assert run.watch.exit_code == 0


def test_a_dropped_connection_is_lost_once_then_back_after_refused_retries_and_a_gap_raises_nothing() -> None:
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 3)
        hosts["h1"].down = True
        hosts["h1"].drop_after = 0
        await run.until(lambda: run.fake.opens["h1"] >= 4)  # refused three times meanwhile
        hosts["h1"].moved["OutRsts"] = 10_000  # what happened while it was away is not a spike
        hosts["h1"].down = False
        await run.until(lambda: bool(run.named("back")))
        await run.until(lambda: run.watch.views()[0].samples >= 6)

    run = scenario(hosts, body)
    [lost] = run.named("lost")
    assert lost.host == "h1" and lost.error_kind == "lost" and "connection was lost" in (lost.error or "")
    [back] = run.named("back")
    assert back.host == "h1" and back.down_s is not None and back.down_s > 0
    assert [e.event for e in run.events] == ["lost", "back"]
    assert run.watch.views()[0].state == "up"


def test_a_host_that_goes_silent_is_lost_as_stale_and_its_stream_is_ended() -> None:
    hosts = {"h1": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)
        hosts["h1"].silent = True
        await run.until(lambda: bool(run.named("lost")))
        hosts["h1"].silent = False
        await run.until(lambda: bool(run.named("back")))

    run = scenario(hosts, body, stale_after_s=0.3)
    [lost] = run.named("lost")
    assert lost.error_kind == "timeout" and (lost.error or "").startswith("no sample for 0.3s")
    assert hosts["h1"].ended >= 1, "the silent stream was ended (its remote loop signalled)"


def test_unreadable_samples_are_skipped_and_a_host_with_no_readable_one_is_lost_with_the_reason() -> None:
    hosts = {"h1": StreamingHost(garbage=True), "h2": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: bool(run.named("lost")))

    run = scenario(hosts, body, stale_after_s=0.3)
    [lost] = run.named("lost")
    assert lost.host == "h1" and "could not be read" in (lost.error or "")
    assert "/proc/net/netstat" in (lost.error or "")
    assert run.watch.unreadable >= 1
    assert {v.host: v.status for v in run.watch.views()}["h2"] == "ok"


def test_a_remote_loop_that_ends_after_its_rounds_is_started_again_on_the_same_connection() -> None:
    hosts = {"h1": StreamingHost(end_after=3)}

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].streams >= 3)

    run = scenario(hosts, body)
    assert run.fake.opens["h1"] == 1 and run.events == []


def test_a_host_with_bad_thresholds_is_reported_once_and_never_connected_the_others_are_watched() -> None:
    hosts = {"bad": StreamingHost(), "h1": StreamingHost()}
    targets = [_target("bad", fleetrst_thresholds={"nope": 1}), _target("h1")]
    run = Run(hosts, targets)

    async def main() -> None:
        task = asyncio.create_task(run.watch.run())
        await run.until(lambda: hosts["h1"].frames >= 2)
        run.watch.stop("SIGTERM")
        await task

    asyncio.run(main())
    [lost] = run.events
    assert (
        lost.host == "bad" and lost.error_kind == "config" and "unknown metric 'nope'" in (lost.error or "")
    )
    assert "bad" not in run.fake.opens
    assert {v.host: v.status for v in run.watch.views()} == {"bad": "error", "h1": "ok"}
    assert run.watch.exit_code == 143 and run.watch.stopped_by == "SIGTERM"


def test_stopping_ends_every_remote_loop_and_closes_every_connection() -> None:
    hosts = {f"h{i}": StreamingHost() for i in range(20)}
    run = Run(hosts)

    async def main() -> None:
        task = asyncio.create_task(run.watch.run())
        await run.until(lambda: all(h.frames >= 2 for h in hosts.values()))
        run.watch.stop("SIGINT")
        await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert all(h.ended == 1 for h in hosts.values()), "every running loop was signalled"
    assert run.fake.open_sessions == 0 and run.fake.streaming == 0
    assert sum(run.fake.streams_stopped.values()) == 20
    assert run.watch.exit_code == 130
    assert run.fake.keepalives == {}, "10 s rounds keep the connection busy: no SSH keepalives"


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ({}, 0),
        ({"OutRsts": 400.0}, 2),
        ({"ListenOverflows": 2.0}, 1),
    ],
)
def test_the_exit_code_is_the_fleet_as_it_stands_when_the_watch_ends(
    statuses: dict[str, float], code: int
) -> None:
    hosts = {"h1": StreamingHost(rates=statuses), "h2": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: all(h.frames >= 3 for h in hosts.values()))

    assert scenario(hosts, body).watch.exit_code == code


def test_a_host_never_reached_makes_the_exit_code_unknown() -> None:
    hosts = {"h1": StreamingHost(down=True), "h2": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: bool(run.named("lost")) and hosts["h2"].frames >= 2)

    run = scenario(hosts, body)
    assert run.watch.exit_code == 3
    assert run.named("lost")[0].error == "connection refused by 10.0.0.2:22"


def test_the_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (50, 60.0)]:
        delays = [backoff_delay(failures, 1.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 4, "spread out, not in lockstep"


def test_derived_timings_follow_the_interval() -> None:
    assert WatchOptions(every_s=10).stale_s == 30.0
    assert WatchOptions(every_s=1, timeout_s=10).stale_s == 11.0
    assert WatchOptions(every_s=1).backoff_cap_s == 6.0
    assert WatchOptions(every_s=0.5).backoff_cap_s == 5.0
    assert WatchOptions(every_s=10).backoff_cap_s == 60.0
    assert WatchOptions(every_s=10).keepalive_s is None
    assert WatchOptions(every_s=20).keepalive_s == 10.0
    assert WatchOptions(every_s=300).keepalive_s == 30.0
    assert WatchOptions(every_s=10, keepalive_after_s=5).keepalive_s == 5.0
    assert WatchOptions(every_s=300, keepalive_after_s=0).keepalive_s is None


def test_long_rounds_ask_the_transport_for_keepalives() -> None:
    hosts = {"h1": StreamingHost()}

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)

    assert scenario(hosts, body, every_s=120.0).fake.keepalives == {"h1": 30.0}


class FakeInvestigator:
    """Finds a closed port on whatever host it is asked about, after a short while; counts the asks."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    async def investigate(self, session: Any, target: Target, rates: Any, verdict: Any) -> Any:
        from fleetrst.investigate.result import CauseResult, Investigation

        self.asked.append((target.name, tuple(t.metric for t in verdict.tripped)))
        await asyncio.sleep(0.01)
        assert rates.per_second["resets_sent"] > 50
        return Investigation(
            causes=(CauseResult("closed_port", "connections to closed port 9 on this host", "open it"),)
        )


def test_a_raised_alarm_is_investigated_over_the_same_connection_at_most_once_per_period() -> None:
    hosts = {"h1": StreamingHost(), "h2": StreamingHost()}
    investigator = FakeInvestigator()

    def view() -> Any:
        return run.watch.views()[0]

    async def body(run: Run) -> None:
        await run.until(lambda: hosts["h1"].frames >= 2)
        hosts["h1"].rates = {"OutRsts": 120.0}  # over --crit 40: raised while it lasts
        await run.until(lambda: view().cause is not None)
        later = view().samples + 3
        await run.until(lambda: view().samples >= later)
        assert view().cause == "closed_port: connections to closed port 9 on this host", "kept while raised"
        hosts["h1"].rates = {}
        await run.until(lambda: view().status == "ok")
        assert view().cause is None, "the cause goes with the alarm"
        hosts["h1"].rates = {"OutRsts": 120.0}  # again, within the period: not investigated again
        await run.until(lambda: len(run.named("raised")) == 2)
        later = view().samples + 5
        await run.until(lambda: view().samples >= later)

    run = Run(hosts, investigate_every_s=3600.0, crit={"resets_sent": 40.0})
    run.watch.investigator = investigator

    async def main() -> None:
        task = asyncio.create_task(run.watch.run())
        try:
            await body(run)
        finally:
            run.watch.stop()
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert investigator.asked == [("h1", ("resets_sent",))]
    assert run.watch.investigated == 1 and view().cause is None
