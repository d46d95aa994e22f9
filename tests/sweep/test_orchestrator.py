"""The orchestrator over the test transport: no root, no network, about two seconds in all.

Every host here is a ``FunctionTransport`` answering from a function; a healthy one answers the real
probe command with real /proc captures whose counters advance at a chosen rate (``fake_host``), so
the sweep's parse -> measure -> judge runs for real. Windows are slept on the host side, so they cost
nothing here unless a handler sleeps. What the real fleet tests (``*_fleet.py``) show with sshd in
network namespaces, these show in-process, one behaviour of the orchestrator a test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from fleetrst.model import ConnectionSettings, FleetReport, HostResult, Target
from fleetrst.sweep import Sweep, SweepOptions, run_sweep
from fleetrst.transport.base import (
    AuthError,
    CommandTimeout,
    ConnectionLost,
    ExecResult,
    HostKeyError,
    TransportError,
    Unreachable,
)
from fleetrst.transport.testing import FunctionTransport

from .fake_host import FakeHost, ProcFiles

RESETTING = FakeHost({"OutRsts": 120.0})  # 120 resets sent a second: over the 50/s warning
OPTIONS = SweepOptions(window_s=1.0, timeout_s=2.0)
FOREVER = 3600.0


def target(name: str, address: str | None = None, **settings: Any) -> Target:
    number = sum(map(ord, name)) % 200 + 20
    connection = ConnectionSettings(address=address or f"10.231.1.{number}", user="fleetrst-test", **settings)
    return Target(name, ("fleet",), connection)


def resetting(target: Target, command: str) -> ExecResult:
    return RESETTING.answer(command)


def sweep(
    targets: Sequence[Target],
    transport: FunctionTransport,
    *,
    on_result: Callable[[HostResult], None] | None = None,
    **options: Any,
) -> FleetReport:
    report = run_sweep(targets, replace(OPTIONS, **options), on_result=on_result, transports=transport)
    assert transport.closed, "the sweep closes the transports it was given"
    assert transport.open_sessions == 0 and transport.opening == 0, "every session opened is closed"
    return report


def by_host(report: FleetReport) -> dict[str, HostResult]:
    return {result.host: result for result in report.hosts}


async def never() -> None:
    await asyncio.Event().wait()


def assert_measured(result: HostResult) -> None:
    """What RESETTING's host gives when the sweep parses, measures and judges it."""
    assert (result.status, result.error, result.error_kind) == ("warning", None, None)
    assert result.rates is not None and result.rates.interval_s == pytest.approx(1.0)
    assert result.rates.per_second["resets_sent"] == pytest.approx(120.0)
    assert result.rates.per_second["resets_received"] == 0.0
    assert [(trip.metric, trip.level) for trip in result.tripped] == [("resets_sent", "warning")]


# --- a host through the seam -----------------------------------------------------------------------


def test_a_host_is_probed_in_one_exec_over_one_connection_and_judged_from_its_real_counters() -> None:
    fake = FunctionTransport(resetting)
    report = sweep([target("web1", "10.231.0.10")], fake)
    (result,) = report.hosts
    assert_measured(result)
    assert (result.host, result.groups, result.address) == ("web1", ("fleet",), "10.231.0.10")
    assert fake.opens == {"web1": 1} and len(fake.commands) == 1
    assert "@@fleetrst-probe" in fake.commands[0][1] and "sleep 1 " in fake.commands[0][1]


def test_a_quiet_host_is_ok_and_a_baseline_sweep_takes_three_samples() -> None:
    quiet = FakeHost({"OutRsts": 2.0})
    fake = FunctionTransport(lambda target, command: quiet.answer(command))
    (result,) = sweep([target("db1")], fake, baseline_s=5.0).hosts
    assert result.status == "ok" and result.tripped == ()
    assert result.rates is not None and result.rates.per_second["resets_sent"] == pytest.approx(2.0)
    assert result.baseline is not None and result.baseline.interval_s == pytest.approx(5.0)
    assert "sample 0 of 3" in fake.commands[0][1]


# --- failures are values ---------------------------------------------------------------------------

# Addresses and messages as in the README's fault table. "Refusing" hosts fail in the handshake,
# "failing" ones while the probe runs; "silent" never answers and the transport's own timeout ends it.
REFUSING: dict[str, Callable[[Target], TransportError]] = {
    "refused": lambda t: Unreachable.refused(t.connection.address, 22),
    "no-route": lambda t: Unreachable.no_route(t.connection.address, 22),
    "changed-key": lambda t: HostKeyError.mismatch(t.connection.address),
    "wrong-key": lambda t: AuthError.failed(t.connection.user or "?"),
    "login-hangs": lambda t: CommandTimeout.login_timeout(3.0),
}
FAILING: dict[str, Exception] = {
    "sshd-killed": ConnectionLost.no_exit_status(),
    "a-bug": RuntimeError("a bug in the transport"),
}
EXPECTED = {
    "refused": ("unreachable", "refused", "connection refused by 10.231.0.4:22"),
    "silent": ("unreachable", "timeout", "connect timed out after 0.3s: no answer from 10.231.0.5:22"),
    "changed-key": (
        "error",
        "host_key",
        "host key mismatch: 10.231.0.6 presented a key other than the one in known_hosts",
    ),
    "wrong-key": ("error", "auth", "authentication failed for user fleetrst-test"),
    "login-hangs": (
        "error",
        "timeout",
        "SSH login timed out after 3s: connected, but the handshake or authentication did not finish",
    ),
    "no-route": ("unreachable", "no_route", "no route to 10.231.0.9:22"),
    "sshd-killed": ("error", "lost", "the connection was lost while the command ran (no exit status)"),
    "flood": ("error", "output_cap", "output over 1 MiB"),
    "bad-port": ("error", "config", "host bad-port: ansible_port must be an integer, got 'ssh'"),
    "a-bug": ("error", "internal", "internal error: RuntimeError: a bug in the transport"),
}


def test_each_failure_is_that_hosts_value_with_its_status_kind_and_message_and_the_rest_are_intact() -> None:
    def let_in(target: Target) -> None:
        if target.name in REFUSING:
            raise REFUSING[target.name](target)

    def answer(target: Target, command: str) -> ExecResult:
        if target.name in FAILING:
            raise FAILING[target.name]
        if target.name == "flood":
            return ExecResult("x" * (2 << 20), "", 0)  # 2 MiB: over the 1 MiB cap
        return RESETTING.answer(command)

    faulty = [
        target("refused", "10.231.0.4"),
        target("silent", "10.231.0.5", connect_timeout=0.3),
        target("changed-key", "10.231.0.6"),
        target("wrong-key", "10.231.0.7"),
        target("login-hangs", "10.231.0.8"),
        target("no-route", "10.231.0.9"),
        target("sshd-killed"),
        target("flood"),
        replace(target("bad-port"), error="host bad-port: ansible_port must be an integer, got 'ssh'"),
        target("a-bug"),
    ]
    healthy = [target(f"h{n:03}") for n in range(len(faulty))]
    interleaved = [host for pair in zip(healthy, faulty, strict=True) for host in pair]
    fake = FunctionTransport(
        answer, connect=let_in, connect_delay=lambda t: FOREVER if t.name == "silent" else 0.0
    )
    report = sweep(interleaved, fake)

    assert [r.host for r in report.hosts] == [t.name for t in interleaved], "results in target order"
    results = by_host(report)
    got = {name: (results[name].status, results[name].error_kind, results[name].error) for name in EXPECTED}
    assert got == EXPECTED
    for host in healthy:
        assert_measured(results[host.name])
    assert all(results[name].rates is None for name in EXPECTED)
    assert fake.opens["bad-port"] == 0, "a host whose settings are broken is not connected to"
    assert fake.opens["refused"] == fake.opens["changed-key"] == 1, "only a dropped handshake is retried"
    assert report.duration_s < 0.3 + 1.0, "the silent host ends at its connect timeout"


def test_the_output_cap_is_the_sweeps_option_and_a_probe_under_it_is_measured() -> None:
    fake = FunctionTransport(
        lambda t, command: (
            ExecResult("x" * 70_000, "", 0) if t.name == "chatty" else RESETTING.answer(command)
        )
    )
    results = by_host(sweep([target("chatty"), target("web1")], fake, max_output=64 * 1024))
    assert (results["chatty"].error_kind, results["chatty"].error) == ("output_cap", "output over 64 KiB")
    assert_measured(results["web1"])  # a real probe prints about 10 KiB


@pytest.mark.parametrize(
    ("output", "exit_status", "stderr", "message"),
    [
        ("hello\n", 0, "", "no fleetrst probe output (no '@@fleetrst-probe' line)"),
        (
            "",
            127,
            "sh: 1: cat: not found\n",
            "no fleetrst probe output (no '@@fleetrst-probe' line) (exit status 127: sh: 1: cat: not found)",
        ),
        ("first-sample-only", 0, "", "sample 1 is missing (output ends after sample 0)"),
        (
            "bad-counter",
            0,
            "",
            "could not parse /proc/net/snmp line 8: OutRsts is 'lots', not an integer (sample 0)",
        ),
    ],
)
def test_garbage_output_is_a_parse_error_that_says_what_is_wrong(
    output: str, exit_status: int, stderr: str, message: str
) -> None:
    def answer(target: Target, command: str) -> ExecResult:
        if output == "first-sample-only":  # derived: the real output cut after sample 0
            whole = RESETTING.probe_output(command)
            return ExecResult(whole[: whole.index("@@sleep")], "", 0)
        if output == "bad-counter":  # derived: OutRsts (line 8 of the captured snmp) is not a number
            files = ProcFiles.captured()
            tcp = files.snmp.split("\n")[7].split(" ")
            tcp[14] = "lots"
            snmp = files.snmp.replace(files.snmp.split("\n")[7], " ".join(tcp))
            return FakeHost(files=replace(files, snmp=snmp)).answer(command)
        return ExecResult(output, stderr, exit_status)

    results = by_host(sweep([target("junk"), target("web1")], FunctionTransport(answer)))
    assert (results["junk"].status, results["junk"].error_kind) == ("error", "parse")
    assert results["junk"].error == message


def test_a_host_that_reboots_between_the_samples_is_an_error_not_a_negative_rate() -> None:
    rebooting = FakeHost({"OutRsts": 120.0}, reboots_before_sample=1)
    fake = FunctionTransport(
        lambda t, command: (rebooting if t.name == "rebooter" else RESETTING).answer(command)
    )
    results = by_host(sweep([target("rebooter"), target("web1")], fake))
    rebooted = results["rebooter"]
    assert (rebooted.status, rebooted.error_kind, rebooted.error) == (
        "error",
        "rebooted",
        "rebooted during the window",
    )
    assert rebooted.rates is None
    assert_measured(results["web1"])


# --- handshakes: caps and retry --------------------------------------------------------------------


def test_the_global_handshake_cap_is_never_exceeded_and_is_used() -> None:
    fake = FunctionTransport(resetting, connect_delay=0.01)
    targets = [target(f"h{n:03}", f"10.231.2.{n}") for n in range(40)]
    report = sweep(targets, fake, handshakes=4)
    assert fake.peak_opening == 4
    assert all(result.status == "warning" for result in report.hosts)


def test_the_per_address_handshake_cap_holds_for_hosts_behind_one_address() -> None:
    fake = FunctionTransport(resetting, connect_delay=0.01)
    addresses = ["10.231.3.1", "10.231.3.2", "10.231.3.3"]
    targets = [target(f"h{n:03}", addresses[n % 3]) for n in range(30)]
    report = sweep(targets, fake, handshakes=100, handshakes_per_address=2)
    assert fake.peak_opening_by_address == dict.fromkeys(addresses, 2)
    assert fake.peak_opening <= 6
    assert all(result.status == "warning" for result in report.hosts)


def test_a_dropped_handshake_is_retried_once_and_a_second_drop_is_reported() -> None:
    def let_in(target: Target) -> None:
        # sshd's MaxStartups drops surplus handshakes: "flaky" once, "dropping" every time.
        if target.name == "dropping" or (target.name == "flaky" and fake.opens["flaky"] == 1):
            raise Unreachable.closed_in_handshake("Connection lost")

    fake = FunctionTransport(resetting, connect=let_in)
    results = by_host(sweep([target("flaky"), target("dropping")], fake))
    assert fake.opens == {"flaky": 2, "dropping": 2}
    assert_measured(results["flaky"])
    dropped = results["dropping"]
    assert (dropped.status, dropped.error_kind, dropped.error) == (
        "unreachable",
        "refused",
        "connection closed during the handshake: Connection lost",
    )


# --- deadlines --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "connect_delay", "message"),
    [
        (None, 0.0, "timed out after 0.4s (window 0.1s + timeout 0.3s) waiting for the probe"),
        (0.1, 0.0, "timed out after 0.5s (window 0.1s + baseline 0.1s + timeout 0.3s) waiting for the probe"),
        # A slow handshake spends the same budget: the host still ends at window + timeout.
        (None, 0.25, "timed out after 0.4s (window 0.1s + timeout 0.3s) waiting for the probe"),
    ],
)
def test_a_probe_that_never_returns_ends_at_window_plus_timeout(
    baseline: float | None, connect_delay: float, message: str
) -> None:
    async def answer(target: Target, command: str) -> ExecResult:
        if target.name == "stuck":
            await never()
        return RESETTING.answer(command)

    fake = FunctionTransport(answer, connect_delay=connect_delay)
    budget = 0.1 + (baseline or 0.0) + 0.3
    report = sweep([target("stuck"), target("web1")], fake, window_s=0.1, timeout_s=0.3, baseline_s=baseline)
    stuck = by_host(report)["stuck"]
    assert (stuck.status, stuck.error_kind, stuck.error) == ("error", "timeout", message)
    assert budget <= stuck.elapsed_s < budget + 0.15
    assert report.duration_s < budget + 0.3
    web1 = by_host(report)["web1"]  # with a baseline, a steady 120/s is no spike: ok, but measured
    assert web1.status == ("ok" if baseline else "warning") and web1.rates is not None


# --- streaming, forks, interrupts -------------------------------------------------------------------


def test_on_result_streams_each_host_as_it_finishes_not_when_the_sweep_ends() -> None:
    order: list[str] = []
    fast_reported = asyncio.Event()

    async def answer(target: Target, command: str) -> ExecResult:
        if target.name == "slow":
            # Finishes only once the fast host's result has been handed out: were results handed out
            # at the end of the sweep, this host would wait for its deadline and time out.
            await fast_reported.wait()
        return RESETTING.answer(command)

    def on_result(result: HostResult) -> None:
        order.append(result.host)
        if result.host == "fast":
            fast_reported.set()

    report = sweep([target("slow"), target("fast")], FunctionTransport(answer), on_result=on_result)
    assert order == ["fast", "slow"]
    assert [r.host for r in report.hosts] == ["slow", "fast"], "the report keeps the target order"
    assert all(r.status == "warning" for r in report.hosts)


def test_forks_bound_the_hosts_in_flight() -> None:
    async def answer(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(0.01)
        return RESETTING.answer(command)

    fake = FunctionTransport(answer)
    report = sweep([target(f"h{n:03}") for n in range(12)], fake, forks=3)
    assert fake.peak_open_sessions == 3 and fake.peak_running == 3
    assert all(result.status == "warning" for result in report.hosts)


def hanging(target: Target, command: str) -> ExecResult | Any:
    if target.name.startswith("stuck"):
        return never_answers()
    return RESETTING.answer(command)


async def never_answers() -> ExecResult:
    await never()
    raise AssertionError("unreachable")


def test_interrupt_marks_unfinished_hosts_interrupted_keeps_finished_ones_and_closes_connections() -> None:
    targets = [target("web1"), target("stuck1"), target("web2"), target("stuck-in-handshake")]
    fake = FunctionTransport(hanging, connect_delay=lambda t: FOREVER if "handshake" in t.name else 0.0)

    async def main() -> list[HostResult]:
        sweep = Sweep(replace(OPTIONS, timeout_s=30.0), fake)
        finished = asyncio.Event()
        reported: list[str] = []

        def on_result(result: HostResult) -> None:
            reported.append(result.host)
            if {"web1", "web2"} <= set(reported):
                finished.set()

        running = asyncio.ensure_future(sweep.run(targets, on_result))
        await finished.wait()
        sweep.interrupt("SIGTERM")
        return await running

    started = time.monotonic()
    results = {r.host: r for r in asyncio.run(asyncio.wait_for(main(), 5))}
    assert time.monotonic() - started < 1.0
    assert_measured(results["web1"])
    assert_measured(results["web2"])
    for name in ("stuck1", "stuck-in-handshake"):
        stopped = results[name]
        assert (stopped.status, stopped.error_kind, stopped.error) == (
            "interrupted",
            "interrupted",
            "interrupted by SIGTERM before this host finished",
        )
    assert fake.open_sessions == 0 and fake.opening == 0, "the interrupted hosts' connections are closed"


def test_an_interrupt_from_on_result_keeps_the_host_that_was_just_reported() -> None:
    fake = FunctionTransport(hanging)

    async def main() -> list[HostResult]:
        sweep = Sweep(OPTIONS, fake)
        return await sweep.run([target("stuck1"), target("web1")], lambda r: sweep.interrupt("enough"))

    results = {r.host: r for r in asyncio.run(asyncio.wait_for(main(), 5))}
    assert_measured(results["web1"])
    assert results["stuck1"].error == "interrupted by enough before this host finished"


def test_sigint_stops_run_sweep_with_the_finished_hosts_kept_and_the_signal_named() -> None:
    before = signal.getsignal(signal.SIGINT)

    def on_result(result: HostResult) -> None:
        if result.host == "web1":
            os.kill(os.getpid(), signal.SIGINT)  # as a user's Ctrl-C: to the whole process

    fake = FunctionTransport(hanging)
    report = sweep(
        [target("web1"), target("stuck1"), target("stuck2")], fake, timeout_s=30.0, on_result=on_result
    )
    assert report.interrupted_by == "SIGINT"
    results = by_host(report)
    assert_measured(results["web1"])
    assert {results[n].error for n in ("stuck1", "stuck2")} == {
        "interrupted by SIGINT before this host finished"
    }
    assert report.count("interrupted") == 2
    assert report.duration_s < 1.0
    assert signal.getsignal(signal.SIGINT) is before, "the sweep's signal handlers are removed"
