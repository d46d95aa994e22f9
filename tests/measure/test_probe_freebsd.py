"""The probe's FreeBSD branch, read by the probe's parser: frames whose samples are the host's clock,
its boot time and netstat's TCP statistics (the FreeBSD samples of tests/fixtures/freebsd/, with
counters moved by ``advance_text``/``advance_json``), judged as any host's.

What the command does on a host (one ``test`` picks the branch) is proven on the fleet's FreeBSD
stand-in, tests/sweep/test_freebsd_fleet.py; here the parsing, the rates and the errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given

from fleetrst.measure.counters import measure_rates
from fleetrst.measure.freebsd import SAMPLE_COMMAND
from fleetrst.measure.probe import ProbeParseError, parse_probe_output, probe_command, watch_command
from fleetrst.testing.bsdhost import STANDIN_SAMPLES, TEXT_HEADER
from fleetrst.testing.freebsd import SAMPLES_DIR, advance_json, advance_text
from tests.helpers import damaged, examples

BOOT = "{ sec = 1732000000, usec = 250000 } Tue Nov 19 07:06:40 2024"
TEXT = TEXT_HEADER + (SAMPLES_DIR / STANDIN_SAMPLES["text"]).read_text()
JSON = (SAMPLES_DIR / STANDIN_SAMPLES["json"]).read_text()
Advance = Callable[[str, Mapping[str, int]], str]


def frames(first: str, second: str, now: tuple[str, str], boot: tuple[str, str] = (BOOT, BOOT)) -> str:
    """A probe's output over a FreeBSD host, framed as the probe frames it (window 10 s)."""
    out = []
    for index, (stats, clock, booted) in enumerate(zip((first, second), now, boot, strict=True)):
        if index:
            out += ["@@sleep 10", "", "@@rc 0"]
        out += [f"@@fleetrst-probe v2 sample {index} of 2", clock, booted, stats.rstrip("\n"), "", "@@rc 0"]
        out.append(f"@@end {index}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("sample", "advance"), [(TEXT, advance_text), (JSON, advance_json)], ids=["text", "json"]
)
def test_a_freebsd_window_gives_the_rates_netdata_would_name(sample: str, advance: Advance) -> None:
    later = advance(sample, {"tcps_conndrops": 300, "tcps_drops": 20})
    before, after = parse_probe_output(
        frames(sample, later, ("1732000100.250000000", "1732000110.250000000"))
    )
    assert after.uptime_s - before.uptime_s == pytest.approx(10.0)
    assert before.uptime_s == pytest.approx(100.0)
    rates = measure_rates(before, after)
    assert rates.per_second["resets_received"] == pytest.approx(30.0)  # tcps_conndrops: AttemptFails
    assert rates.per_second["estab_resets"] == pytest.approx(2.0)  # tcps_drops: EstabResets
    assert "resets_sent" not in rates.per_second  # FreeBSD counts no RSTs sent on their own
    assert all(rate == 0 for name, rate in rates.per_second.items() if name not in {
        "tcps_conndrops", "AttemptFails", "resets_received", "tcps_drops", "EstabResets", "estab_resets"
    })  # fmt: skip


def test_an_old_freebsd_date_without_nanoseconds_gives_whole_seconds() -> None:
    later = advance_text(TEXT, {"tcps_conndrops": 50})
    before, after = parse_probe_output(frames(TEXT, later, ("1732000100.N", "1732000109.N")))
    assert before.uptime_s == pytest.approx(99.75)  # the boot time keeps its microseconds
    assert measure_rates(before, after).per_second["resets_received"] == pytest.approx(50 / 9)


def test_a_changed_boot_time_is_a_reboot() -> None:
    other = "{ sec = 1732000090, usec = 0 } Tue Nov 19 07:08:10 2024"
    before, after = parse_probe_output(frames(TEXT, TEXT, ("1732000100.0", "1732000110.0"), (BOOT, other)))
    with pytest.raises(ProbeParseError, match="rebooted during the window"):
        measure_rates(before, after)


def test_a_failing_netstat_is_named_with_what_it_said() -> None:
    text = frames(TEXT, TEXT, ("1732000100.0", "1732000110.0"))
    text = text.replace("@@rc 0\n@@end 0", "@@rc 1\n@@end 0", 1)
    text = text.replace(TEXT.rstrip("\n"), "netstat: kvm not available: /dev/mem: Permission denied", 1)
    with pytest.raises(ProbeParseError) as caught:
        parse_probe_output(text)
    assert str(caught.value) == (
        "netstat -s -p tcp failed (status 1): netstat: kvm not available: /dev/mem: Permission denied"
    )


def test_the_probe_and_the_watch_loop_read_a_sample_through_one_branch() -> None:
    for command in (probe_command(5), probe_command(5, 60, containers=True), watch_command(10)):
        assert command.count("if [ -r /proc/net/snmp ]; then r() { cat ") == 1
        assert command.count(f"else r() {{ {SAMPLE_COMMAND}; }}; fi") == 1
        assert "cat /proc/net/snmp" not in command.split("r() {", 1)[0]
    assert re.findall(r"\br; s=\$\?", probe_command(5, 60)) == ["r; s=$?"] * 3


@examples(150)
@given(damaged([frames(TEXT, advance_text(TEXT, {"tcps_conndrops": 9}), ("1732000100.5", "1732000110.5"))]))
def test_damaged_freebsd_frames_give_snapshots_or_one_parse_error(text: str) -> None:
    try:
        parse_probe_output(text)
    except ProbeParseError as error:
        assert "\n" not in str(error)
