"""The remote probe command and its framed output, on real probe runs (tests/fixtures/proc/CAPTURED.md).

The ``probe/*.out`` files are what ``sh -c "$(probe_command(1))"`` printed inside a network namespace
under load. Tests marked "derived" change one of them in one stated way (cut short, a failed read)
to reach failures the machine cannot produce on demand.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetrst.counters import NAMED_RATES, measure_rates
from fleetrst.probe import FILES, ProbeParseError, parse_probe_output, probe_command

PROBES = Path(__file__).parent / "fixtures" / "proc" / "probe"
ABORTS = [name for name in NAMED_RATES if name.startswith("aborts_")]


def probe_output(name: str) -> str:
    return (PROBES / f"{name}.out").read_text()


# --- the command ------------------------------------------------------------------------------------


def test_an_integer_window_sleeps_whole_seconds_as_posix_sleep_wants() -> None:
    assert "sleep 5 " in probe_command(5) and "sleep 5.0" not in probe_command(5.0)


def test_a_fractional_window_sleeps_a_decimal_as_gnu_and_busybox_sleep_accept() -> None:
    assert "sleep 0.5 " in probe_command(0.5)
    assert "sleep 2.25 " in probe_command(2.25)
    assert "sleep 0.001 " in probe_command(0.0011)


@pytest.mark.parametrize(
    "window",
    [0, -1, 3601, float("nan"), float("inf"), 1e-9, 10**400, True, "5", "5; rm -rf /", None],
)
def test_a_window_that_is_not_a_sane_duration_is_refused_before_anything_reaches_a_shell(
    window: object,
) -> None:
    with pytest.raises(ValueError, match="must be"):
        probe_command(window)  # type: ignore[arg-type]


def test_a_bad_baseline_is_refused_too() -> None:
    with pytest.raises(ValueError, match="the baseline must be"):
        probe_command(5, baseline_s=-60)


def test_the_command_runs_only_echo_cat_and_sleep() -> None:
    command = probe_command(1, baseline_s=60)
    for step in command.split("; "):
        words = shlex.split(step)
        assert words[0] in {"echo", "cat", "sleep"} or re.fullmatch(r"s=\$\?", step), step
    for path in FILES:
        assert f"cat {path} 2>&1" in command


def test_a_baseline_probe_takes_three_samples_sleeping_the_baseline_then_the_window() -> None:
    command = probe_command(10, baseline_s=60)
    assert command.count("@@fleetrst-probe v1 sample") == 3
    assert command.index("sleep 60") < command.index("sleep 10 ")


def test_the_command_run_by_a_real_posix_shell_gives_two_snapshots() -> None:
    out = subprocess.run(["sh", "-c", probe_command(0.05)], capture_output=True, text=True, check=True)
    before, after = parse_probe_output(out.stdout)
    assert before.boot_id == after.boot_id
    assert after.uptime_s >= before.uptime_s


# --- real probe output ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["idle", "closed-port", "linger-abort", "listen-overflow"])
def test_a_real_probe_output_gives_two_snapshots_a_second_apart(name: str) -> None:
    before, after = parse_probe_output(probe_output(name))
    assert before.boot_id == after.boot_id
    assert after.uptime_s - before.uptime_s == pytest.approx(1.0, abs=0.05)
    assert {"AttemptFails", "OutRsts", "MaxConn"} <= before.tcp.keys()
    assert {"ListenOverflows", "TCPAbortOnData"} <= after.tcpext.keys()


def test_a_probe_during_a_closed_port_storm_measures_resets_both_ways_and_no_aborts() -> None:
    rates = measure_rates(*parse_probe_output(probe_output("closed-port"))).per_second
    assert rates["resets_received"] > 100 and rates["resets_sent"] > 100
    assert all(rates[name] == 0 for name in ABORTS)


def test_a_probe_during_linger_aborts_measures_aborts_on_data() -> None:
    rates = measure_rates(*parse_probe_output(probe_output("linger-abort"))).per_second
    assert rates["aborts_on_data"] > 100 and rates["estab_resets"] > 100


def test_a_probe_during_a_listen_flood_measures_overflows() -> None:
    rates = measure_rates(*parse_probe_output(probe_output("listen-overflow"))).per_second
    assert rates["listen_overflows"] > 100


def test_a_baseline_probe_gives_a_quiet_baseline_then_a_stormy_window() -> None:
    t0, t1, t2 = parse_probe_output(probe_output("baseline-closed-port"))
    assert measure_rates(t0, t1).per_second["resets_sent"] == 0
    assert measure_rates(t1, t2).per_second["resets_sent"] > 100


def test_what_a_login_shell_prints_around_the_frames_is_ignored() -> None:
    # Derived: a motd-like banner before the real output and a logout message after it.
    real = probe_output("idle")
    assert parse_probe_output("Welcome to web3!\n\n" + real + "bye\n") == parse_probe_output(real)


def test_crlf_line_ends_are_tolerated() -> None:
    # Derived: the real output with every "\n" turned into "\r\n", as through a pty.
    real = probe_output("idle")
    assert parse_probe_output(real.replace("\n", "\r\n")) == parse_probe_output(real)


# --- failures: one clear line -----------------------------------------------------------------------


def cut_after_sample(text: str, index: int) -> str:
    end = f"@@end {index}\n"
    return text[: text.index(end) + len(end)]


def test_output_that_ends_after_the_first_sample_says_the_second_is_missing() -> None:
    # Derived: the real output cut after "@@end 0", as when the connection drops during the sleep.
    with pytest.raises(ProbeParseError, match=r"^sample 1 is missing \(output ends after sample 0\)$"):
        parse_probe_output(cut_after_sample(probe_output("idle"), 0))


def test_output_cut_during_the_sleep_says_so() -> None:
    cut = cut_after_sample(probe_output("idle"), 0) + "@@sleep 1\n"
    with pytest.raises(ProbeParseError, match=r"^sample 1 is missing \(output ends during the sleep"):
        parse_probe_output(cut)


def test_a_baseline_probe_cut_after_two_samples_says_the_third_is_missing() -> None:
    with pytest.raises(ProbeParseError, match=r"^sample 2 is missing \(output ends after sample 1\)$"):
        parse_probe_output(cut_after_sample(probe_output("baseline-closed-port"), 1))


def test_a_file_cat_could_not_read_is_reported_with_cats_own_words() -> None:
    # Derived: the netstat block of sample 1 replaced by what cat prints when it cannot read a file.
    real = probe_output("idle")
    start = real.index("@@file /proc/net/netstat", real.index("@@end 0"))
    end = real.index("@@rc 0\n", start) + len("@@rc 0\n")
    failed = "@@file /proc/net/netstat\ncat: /proc/net/netstat: Permission denied\n\n@@rc 1\n"
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(real[:start] + failed + real[end:])
    assert str(caught.value) == "could not read /proc/net/netstat: cat: /proc/net/netstat: Permission denied"


def test_garbage_inside_a_file_names_the_file_the_line_and_the_sample() -> None:
    # Derived: one OutRsts value in sample 1 replaced by a word.
    real = probe_output("idle")
    second = real.index("@@end 0")
    tcp_values = re.compile(r"^Tcp: 1 .*$", re.M)
    match = tcp_values.search(real, second)
    assert match
    damaged = real[: match.start()] + match.group(0).replace(" -1 ", " minus-one ") + real[match.end() :]
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(damaged)
    assert re.fullmatch(
        r"could not parse /proc/net/snmp line \d+: MaxConn is 'minus-one', not an integer \(sample 1\)",
        str(caught.value),
    )


def test_a_failed_remote_sleep_is_an_error_not_a_zero_length_window() -> None:
    real = probe_output("idle")
    at = real.index("@@sleep 1\n")
    end = real.index("@@rc 0\n", at) + len("@@rc 0\n")
    failed = "@@sleep 1\nsleep: invalid time interval '1'\n\n@@rc 1\n"
    with pytest.raises(ProbeParseError, match=r"^the remote 'sleep 1' failed: sleep: invalid time interval"):
        parse_probe_output(real[:at] + failed + real[end:])


def test_an_unknown_output_format_version_is_refused() -> None:
    newer = probe_output("idle").replace("@@fleetrst-probe v1 ", "@@fleetrst-probe v2 ")
    with pytest.raises(
        ProbeParseError, match=r"unsupported probe output format v2 \(this fleetrst reads v1\)"
    ):
        parse_probe_output(newer)


def test_output_that_is_not_a_probe_at_all_says_so() -> None:
    with pytest.raises(ProbeParseError, match="no fleetrst probe output"):
        parse_probe_output("sh: 1: cat: not found\n")


# --- never another exception ------------------------------------------------------------------------

REAL_OUTPUTS = [probe_output(p.stem) for p in sorted(PROBES.glob("*.out"))]


def check_only_parse_errors(text: str) -> None:
    try:
        snapshots = parse_probe_output(text)
    except ProbeParseError as error:
        message = str(error)
        assert message and message.isprintable() and len(message) < 400
    else:
        assert snapshots


@given(st.text())
def test_any_text_gives_snapshots_or_a_parse_error(text: str) -> None:
    check_only_parse_errors(text)


@given(
    st.lists(
        st.sampled_from(
            [
                "@@fleetrst-probe v1 sample 0 of 2",
                "@@file /proc/uptime",
                "@@rc 0",
                "@@rc 1",
                "@@end 0",
                "@@sleep 1",
                "12.5 3.0",
                "Tcp: A",
                "Tcp: 1",
                "",
            ]
        ),
        max_size=40,
    )
)
def test_marker_soup_gives_snapshots_or_a_parse_error(lines: list[str]) -> None:
    check_only_parse_errors("\n".join(lines))


@st.composite
def damaged_output(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(REAL_OUTPUTS))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "cut", "drop-line", "repeat-line"]))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.text(min_size=1, max_size=12)) + text[at:]
        elif kind == "cut":
            text = text[:at]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [] if kind == "drop-line" else [lines[i], lines[i]]
            text = "\n".join(lines)
    return text


@settings(max_examples=400)
@given(damaged_output())
def test_a_damaged_real_probe_output_gives_snapshots_or_a_parse_error(text: str) -> None:
    check_only_parse_errors(text)
