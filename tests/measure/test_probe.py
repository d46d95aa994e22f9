"""The remote probe command and its framed output, on real probe runs (tests/fixtures/proc/CAPTURED.md).

The ``probe/*.out`` files are what ``sh -c "$(probe_command(1))"`` printed inside a network namespace
under load (probe output format v2: one ``cat`` of the four files per sample). Tests marked "derived"
change one of them in one stated way (cut short, a failed read) to reach failures the machine cannot
produce on demand.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import NAMED_RATES, measure_rates, parse_boot_id, parse_netstat, parse_snmp
from fleetrst.measure.probe import FILES, FORMAT_VERSION, ProbeParseError, parse_probe_output, probe_command
from fleetrst.model import Snapshot
from tests.helpers import damaged, examples
from tests.shim import PathShim

PROC = Path(__file__).parents[1] / "fixtures" / "proc"
PROBES = PROC / "probe"
ABORTS = [name for name in NAMED_RATES if name.startswith("aborts_")]


def probe_output(name: str) -> str:
    return (PROBES / f"{name}.out").read_text()


def pair_file(load: str, when: str, name: str) -> str:
    """One file of a real before/after capture: the same kernel, each file cat'ed on its own."""
    return (PROC / load / when / name).read_text()


def line_of(text: str, prefix: str, nth: int = 1) -> int:
    """The number of the nth line of ``text`` that starts with ``prefix`` (1-based, as errors count)."""
    numbers = [n for n, line in enumerate(text.split("\n"), start=1) if line.startswith(prefix)]
    return numbers[nth - 1]


def sample_span(text: str, index: int) -> tuple[int, int]:
    """Where sample ``index``'s cat output is in a probe output: after its header, up to its @@rc."""
    start = text.index("\n", text.index(f"@@fleetrst-probe v{FORMAT_VERSION} sample {index} of ")) + 1
    return start, text.index("\n@@rc ", start) + 1


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


def test_the_error_names_the_duration_that_is_wrong_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"^the window must be more than 0 and at most 3600 seconds, got 0$"):
        probe_command(0)
    with pytest.raises(ValueError, match=r"^the window must be a number of seconds, got '5'$"):
        probe_command("5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^the window must be at least 0.001 seconds, got 0.0004$"):
        probe_command(0.0004)
    baseline = r"^the baseline must be more than 0 and at most 3600 seconds, got -60$"
    with pytest.raises(ValueError, match=baseline):
        probe_command(5, baseline_s=-60)


def test_a_window_of_exactly_an_hour_is_the_longest_allowed() -> None:
    assert "sleep 3600 " in probe_command(3600) and "sleep 3600 " in probe_command(5, baseline_s=3600.0)
    for too_long in (3600.001, 3601):
        with pytest.raises(ValueError, match="at most 3600 seconds"):
            probe_command(too_long)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1"), (1.0, "1"), (0.5, "0.5"), (0.25, "0.25"), (0.125, "0.125"), (0.1239, "0.124"), (2.5, "2.5"),
     (10.05, "10.05"), (100, "100"), (0.001, "0.001"), (3599.999, "3599.999")],
)  # fmt: skip
def test_each_duration_is_written_as_the_shortest_decimal_sleep_reads(seconds: float, text: str) -> None:
    command = probe_command(seconds)
    assert f"echo '@@sleep {text}'; sleep {text} 2>&1 & p=$!;" in command


def run_probe(tmp_path: Path, command: str, **replace: str) -> tuple[str, list[list[str]]]:
    """The probe run by a real POSIX shell whose PATH is a logging shim: its output, and every
    program it executed (name and arguments), in order. Builtins (echo, wait, trap) are not there."""
    shim = PathShim(tmp_path, replace=replace)
    out = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, env={"PATH": shim.path}, check=False
    )
    return out.stdout, shim.runs()


@pytest.mark.parametrize(("baseline", "samples"), [(None, 2), (0.05, 3)])
def test_a_real_run_executes_one_cat_per_sample_and_one_sleep_per_interval_and_nothing_else(
    tmp_path: Path, baseline: float | None, samples: int
) -> None:
    # Counted as the shell runs it, not read off the text: every program the run starts is logged.
    out, runs = run_probe(tmp_path, probe_command(0.05, baseline_s=baseline))
    cat = ["cat", *FILES]
    sleeps = [["sleep", "0.05"]] * (samples - 1)
    assert runs == [cat, *(step for pair in zip(sleeps, [cat] * (samples - 1), strict=True) for step in pair)]
    assert len(parse_probe_output(out)) == samples
    assert out.count("\n@@rc 0\n") == 2 * samples - 1  # every cat and every sleep succeeded


def test_cats_own_exit_status_is_the_one_the_probe_reports(tmp_path: Path) -> None:
    # A cat that cannot read a file: its status (not that of anything after it) reaches @@rc.
    failing_cat = "echo 'cat: /proc/net/netstat: Permission denied' >&2; exit 1"
    out, _ = run_probe(tmp_path, probe_command(0.05), cat=failing_cat)
    assert "\n@@rc 1\n" in out
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(out)
    assert str(caught.value) == "could not read /proc/net/netstat: cat: /proc/net/netstat: Permission denied"


def test_the_sleeps_exit_status_is_the_one_the_probe_reports(tmp_path: Path) -> None:
    out, _ = run_probe(tmp_path, probe_command(0.05), sleep="echo 'sleep: invalid time interval' >&2; exit 1")
    with pytest.raises(ProbeParseError, match=r"^the remote 'sleep 0.05' failed: sleep: invalid time"):
        parse_probe_output(out)


def test_a_baseline_probe_takes_three_samples_sleeping_the_baseline_then_the_window() -> None:
    command = probe_command(10, baseline_s=60)
    assert command.count(f"@@fleetrst-probe v{FORMAT_VERSION} sample") == 3
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


@pytest.mark.parametrize("name", ["idle", "closed-port", "linger-abort", "listen-overflow"])
def test_a_real_probe_output_splits_into_the_same_four_files_cat_prints_one_by_one(name: str) -> None:
    # The pair captures were cat'ed file by file in the same namespace on the same boot: the probe's
    # one-cat output must give the same fields and the same boot id.
    before, after = parse_probe_output(probe_output(name))
    assert before.tcp.keys() == parse_snmp(pair_file(name, "after", "snmp")).keys()
    assert after.tcpext.keys() == parse_netstat(pair_file(name, "after", "netstat")).keys()
    assert after.boot_id == parse_boot_id(pair_file(name, "after", "boot_id"))


def test_every_captured_probe_output_is_format_v2_with_one_cat_output_per_sample() -> None:
    assert FORMAT_VERSION == 2
    for path in sorted(PROBES.glob("*.out")):
        text = path.read_text()
        assert text.startswith("@@fleetrst-probe v2 sample 0 of "), path.name
        assert "@@file" not in text, path.name
        samples = int(text.split("\n", 1)[0].rsplit(" ", 1)[1])
        assert text.count("\n@@rc 0\n") == 2 * samples - 1, path.name


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


def with_failed_cat(text: str, index: int, path: str, message: str, status: int = 1) -> str:
    """Sample ``index``'s cat output with ``path``'s text replaced by cat's error line, as cat prints it."""
    start, end = sample_span(text, index)
    out = text[start:end]
    if path == "/proc/net/netstat":
        first, last = out.index("\nTcpExt: ") + 1, out.rindex("\nMPTcpExt: ")
        last = out.index("\n", last + 1) + 1
    elif path == "/proc/uptime":
        lines = out.split("\n")  # ..., uptime, boot_id, "" (the echo), ""
        first = len("\n".join(lines[:-4])) + 1
        last = first + len(lines[-4]) + 1
    else:
        raise AssertionError(path)
    out = out[:first] + message + "\n" + out[last:]
    rc_end = text.index("\n", end) + 1
    return text[:start] + out + f"@@rc {status}\n" + text[rc_end:]


def test_a_file_cat_could_not_read_is_reported_with_cats_own_words() -> None:
    # Derived: in sample 1, the netstat text replaced by what cat prints when it cannot read the file
    # (the other three files still printed around it) and cat's status 1.
    failed = with_failed_cat(
        probe_output("idle"), 1, "/proc/net/netstat", "cat: /proc/net/netstat: Permission denied"
    )
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(failed)
    assert str(caught.value) == "could not read /proc/net/netstat: cat: /proc/net/netstat: Permission denied"


def test_busybox_cats_wording_names_the_file_too() -> None:
    # Derived: as above, for /proc/uptime in sample 0, in busybox cat's words.
    message = "cat: can't open '/proc/uptime': No such file or directory"
    failed = with_failed_cat(probe_output("closed-port"), 0, "/proc/uptime", message)
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(failed)
    assert str(caught.value) == f"could not read /proc/uptime: {message}"


def test_a_cat_that_failed_without_naming_a_file_is_reported_with_its_status() -> None:
    # Derived: sample 0's whole cat output replaced by what sh prints when there is no cat at all.
    real = probe_output("idle")
    start, end = sample_span(real, 0)
    rc_end = real.index("\n", end) + 1
    failed = real[:start] + "sh: 1: cat: not found\n\n@@rc 127\n" + real[rc_end:]
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(failed)
    assert str(caught.value) == "could not read the counter files (cat's status 127): sh: 1: cat: not found"


def damage(text: str, index: int, line_prefix: str, old: str, new: str) -> str:
    """``old`` -> ``new`` once, in the first line of sample ``index`` that starts with ``line_prefix``."""
    start, end = sample_span(text, index)
    match = re.compile("^" + re.escape(line_prefix) + ".*$", re.M).search(text, start, end)
    assert match and old in match.group(0)
    return text[: match.start()] + match.group(0).replace(old, new, 1) + text[match.end() :]


def test_garbage_inside_a_file_names_the_file_the_line_and_the_sample() -> None:
    # Derived: the MaxConn value (-1) in sample 1 replaced by a word. The line is counted within
    # /proc/net/snmp, as in the file cat'ed on its own.
    damaged = damage(probe_output("idle"), 1, "Tcp: 1 ", " -1 ", " minus-one ")
    line = line_of(pair_file("idle", "after", "snmp"), "Tcp: ", 2)
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(damaged)
    assert str(caught.value) == (
        f"could not parse /proc/net/snmp line {line}: MaxConn is 'minus-one', not an integer (sample 1)"
    )


def test_garbage_in_netstat_is_counted_from_netstats_own_first_line() -> None:
    # Derived: the first TcpExt value in sample 0 replaced by a word.
    damaged = damage(probe_output("closed-port"), 0, "TcpExt: 0 ", "TcpExt: 0 ", "TcpExt: zero ")
    netstat = pair_file("closed-port", "before", "netstat")
    line = line_of(netstat, "TcpExt: ", 2)
    first = netstat.split("\n", 1)[0].split()[1]
    assert line == 2
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(damaged)
    assert str(caught.value) == (
        f"could not parse /proc/net/netstat line {line}: {first} is 'zero', not an integer (sample 0)"
    )


def test_garbage_in_uptime_or_boot_id_names_that_file() -> None:
    # Derived: sample 1's uptime line, then sample 0's boot id, replaced by a word.
    real = probe_output("idle")
    start, end = sample_span(real, 1)
    lines = real[start:end].split("\n")
    uptime, boot_id = lines[-4], lines[-3]
    bad_uptime = real[:start] + real[start:end].replace(uptime + "\n", "soon\n") + real[end:]
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(bad_uptime)
    assert str(caught.value) == (
        "could not parse /proc/uptime line 1: 'soon' is not a number of seconds (sample 1)"
    )
    start, end = sample_span(real, 0)
    bad_boot = real[:start] + real[start:end].replace(boot_id + "\n", "reboot?\n") + real[end:]
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(bad_boot)
    assert str(caught.value) == (
        "could not parse /proc/sys/kernel/random/boot_id line 1: 'reboot?' is not a boot id (sample 0)"
    )


def test_a_netstat_without_tcpext_is_a_netstat_error_not_an_snmp_one() -> None:
    # Derived: sample 0's two TcpExt lines dropped, as from a kernel without TCP extensions; netstat
    # then starts at IpExt, and snmp still parses.
    real = probe_output("idle")
    start, end = sample_span(real, 0)
    kept = [line for line in real[start:end].split("\n") if not line.startswith("TcpExt: ")]
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(real[:start] + "\n".join(kept) + real[end:])
    assert str(caught.value) == 'could not parse /proc/net/netstat: no "TcpExt:" header line (sample 0)'


def test_a_failed_remote_sleep_is_an_error_not_a_zero_length_window() -> None:
    real = probe_output("idle")
    at = real.index("@@sleep 1\n")
    end = real.index("@@rc 0\n", at) + len("@@rc 0\n")
    failed = "@@sleep 1\nsleep: invalid time interval '1'\n\n@@rc 1\n"
    with pytest.raises(ProbeParseError, match=r"^the remote 'sleep 1' failed: sleep: invalid time interval"):
        parse_probe_output(real[:at] + failed + real[end:])


@pytest.mark.parametrize("version", [1, 3])
def test_an_older_or_newer_output_format_version_is_refused(version: int) -> None:
    # Derived: the real v2 output's headers relabelled (v1: what a fleetrst before format 2 expects).
    other = probe_output("idle").replace("@@fleetrst-probe v2 ", f"@@fleetrst-probe v{version} ")
    with pytest.raises(
        ProbeParseError, match=rf"^unsupported probe output format v{version} \(this fleetrst reads v2\)$"
    ):
        parse_probe_output(other)


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
                "@@fleetrst-probe v2 sample 0 of 2",
                "@@fleetrst-probe v2 sample 1 of 2",
                "@@rc 0",
                "@@rc 1",
                "@@end 0",
                "@@end 1",
                "@@sleep 1",
                "cat: /proc/uptime: Permission denied",
                "12.5 3.0",
                "56fe78fa-bbf9-4866-8c9d-e81f757b38ab",
                "Tcp: A",
                "Tcp: 1",
                "TcpExt: A",
                "TcpExt: 1",
                "IpExt: A",
                "",
            ]
        ),
        max_size=40,
    )
)
def test_marker_soup_gives_snapshots_or_a_parse_error(lines: list[str]) -> None:
    check_only_parse_errors("\n".join(lines))


def damaged_output() -> st.SearchStrategy[str]:
    return damaged(REAL_OUTPUTS)


@examples(400)
@given(damaged_output())
def test_a_damaged_real_probe_output_gives_snapshots_or_a_parse_error(text: str) -> None:
    check_only_parse_errors(text)


def assert_every_value_is_in(snapshots: list[Snapshot], text: str) -> None:
    """Every name and number the parser returned is written in ``text``: it invents nothing."""
    numbers = {float(n) for n in re.findall(r"-?[0-9]+(?:\.[0-9]+)?", text)}
    for snap in snapshots:
        for name, value in [*snap.tcp.items(), *snap.tcpext.items()]:
            assert name in text and value in numbers, (name, value)
        assert snap.uptime_s in numbers and snap.boot_id in text


@examples(400)
@given(damaged_output())
def test_every_value_parsed_from_a_damaged_output_is_written_in_it(text: str) -> None:
    try:
        snapshots = parse_probe_output(text)
    except ProbeParseError:
        return
    assert_every_value_is_in(snapshots, text)


# Lines a login shell or a broken host could print around the frames: anything but a frame header.
_NOISE_LINE = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=30),
    st.sampled_from(
        ["@@rc 0", "@@end 0", "@@end 1", "@@sleep 1", "Tcp: 1 2", "TcpExt: A B", "@@fleetrst-probex",
         "12.5 3.0", "56fe78fa-bbf9-4866-8c9d-e81f757b38ab", ""]
    ),
).filter(lambda line: not re.fullmatch(r"@@fleetrst-probe\b.*", line.rstrip("\r")))  # fmt: skip


@examples(300)
@given(
    st.sampled_from(REAL_OUTPUTS),
    st.lists(_NOISE_LINE, max_size=8),
    st.text(max_size=200),
)
def test_text_outside_the_frames_never_changes_what_is_parsed(
    real: str, before: list[str], after: str
) -> None:
    # Before the first frame: whole lines (a motd, an rc file's echo). After the last: anything at all.
    noisy = "".join(line + "\n" for line in before) + real + after
    assert parse_probe_output(noisy) == parse_probe_output(real)


def test_a_terminated_probe_ends_its_sleep_at_once() -> None:
    # What a stopped sweep relies on: SIGTERM to the remote shell ends the window's sleep too.
    proc = subprocess.Popen(
        ["sh", "-c", probe_command(30)], stdout=subprocess.DEVNULL, start_new_session=True
    )
    time.sleep(0.5)
    proc.terminate()
    assert proc.wait(timeout=5) == 143
    time.sleep(0.2)
    ps = subprocess.run(
        ["ps", "-o", "stat=,args=", "-g", str(proc.pid)], capture_output=True, text=True, check=False
    )
    alive = [line for line in ps.stdout.splitlines() if not line.strip().startswith("Z")]  # not zombies
    assert alive == [], f"the sleep outlived its shell: {alive}"
