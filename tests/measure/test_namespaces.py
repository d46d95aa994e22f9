"""Every network namespace on a host (``--containers``): the probe's listing and reads, the parser, the
names, identity, per-namespace rates and verdicts — on real probe runs (tests/fixtures/netns/).

The ``*.out`` files are what the probe printed inside a test machine with real runc containers in it
(tests/fixtures/netns/capture.py says how; CAPTURED.md what ran). Tests marked "derived" change one of
them in one stated way, to reach what the machine cannot produce on demand.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.namespaces import (
    BEGIN_LIST,
    MAX_NAMESPACES,
    Listed,
    Names,
    become_user_for,
    measure_namespaces,
    name_namespace,
    namespace_judge,
    parse_namespace_output,
)
from fleetrst.measure.probe import FILES, ProbeParseError, parse_probe_output, probe_command
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, ThresholdError
from fleetrst.model import ConnectionSettings, FleetReport, HostResult, NamespaceResult, Rates
from tests.helpers import damaged, examples
from tests.shim import PathShim

NETNS = Path(__file__).parents[1] / "fixtures" / "netns"
POD_UID = "3f1c2a9e-5b7d-4e21-9c0a-7d2e8b6f4a11"


def capture(name: str) -> str:
    return (NETNS / name).read_text()


def judged(text: str, **variables: object) -> tuple[NamespaceResult, ...]:
    snapshots = parse_probe_output(text)
    judge = namespace_judge(variables, "host h1", {}, {})
    results, _ = judge.results(text, snapshots[-1].boot_id, baseline=len(snapshots) == 3)
    assert results is not None
    return results


def by_name(results: tuple[NamespaceResult, ...]) -> dict[str, NamespaceResult]:
    return {r.name: r for r in results}


# --- the command -----------------------------------------------------------------------------------


def test_without_containers_the_probe_is_exactly_what_it_was() -> None:
    assert "netns" not in probe_command(10) and "awk" not in probe_command(10, 60)
    assert probe_command(10) == probe_command(10, containers=False)


def test_with_containers_the_namespaces_are_listed_once_and_read_after_every_sample() -> None:
    command = probe_command(1, 60, containers=True)
    # once on Linux; the FreeBSD branch of the same `if` only says there is nothing to list
    linux, _, freebsd = command.partition("else NP=;")
    assert linux.count("@@fleetrst-netns v1 list") == 1 and "not Linux" not in linux
    assert freebsd.startswith(" echo '@@fleetrst-netns v1 list'; echo '@@unseen not Linux")
    assert command.count("@@fleetrst-netns v1 sample ") == 3
    assert command.index("v1 list") < command.index("@@fleetrst-probe v2 sample 0")


def test_the_sudo_user_is_checked_before_it_reaches_a_shell() -> None:
    with pytest.raises(ValueError, match="not a user name"):
        probe_command(1, containers=True, become_user="root; rm -rf /")
    assert "sudo -n -u deploy -- sh -c " in probe_command(1, containers=True, become_user="deploy")


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (ConnectionSettings("h", user="ops"), None),
        (ConnectionSettings("h", user="ops", become=True), "root"),
        (ConnectionSettings("h", user="root", become=True), None),  # as Ansible: no become to oneself
        (ConnectionSettings("h", user="ops", become=True, become_method="su"), None),
    ],
)
def test_the_listing_goes_through_sudo_only_under_become(
    connection: ConnectionSettings, expected: str | None
) -> None:
    assert become_user_for(connection) == expected


FAKE_LS = "printf '%s\\n' '1 lrwxrwxrwx 1 0 0 0 Nov 29 13:18 {pid}/ns/net -> net:[4026599999]'"


def test_a_real_run_executes_a_bounded_set_of_programs_whatever_the_number_of_processes(
    tmp_path: Path,
) -> None:
    # Counted as the shell runs it (every program the run starts is logged), with -b: the listing
    # through sudo (a stand-in that drops sudo's options, as sudo would run it) and ls replaced by one
    # holder line for this process (the real /proc of a shared machine holds other tests' namespaces).
    # Deliberate, against test_probe's "only cat and sleep": --containers adds ls and awk once, then
    # one awk per sample — never one program per process or per namespace.
    shim = PathShim(
        tmp_path,
        replace={"sudo": 'shift 4; exec "$@"', "ls": FAKE_LS.format(pid=os.getpid())},
    )
    command = probe_command(0.05, containers=True, become_user="root")
    out = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, env={"PATH": shim.path}, check=False
    ).stdout
    # The awk programs are arguments with newlines in them: the log's lines that start with a
    # program's name are the runs (the programs' own lines are indented or punctuation).
    runs = [run for run in shim.runs() if run[0] and (shim.dir / run[0]).exists()]
    names = [run[0] for run in runs]
    # ls | awk is a pipeline: its two start in either order.
    assert names[:2] == ["sudo", "sh"] and sorted(names[2:4]) == ["awk", "ls"]
    assert names[4:] == ["cat", "awk", "sleep", "cat", "awk"]
    assert runs[4] == ["cat", *FILES]
    results = judged(out)
    assert [(r.pid, r.inode, r.status) for r in results] == [(os.getpid(), 4026599999, "ok")]


# --- real captures ---------------------------------------------------------------------------------


def test_a_storm_inside_one_runc_container_is_found_on_that_container_named_by_its_id() -> None:
    results = judged(capture("root.out"))
    tripped = [r for r in results if r.status in ("warning", "critical")]
    assert [(r.runtime, r.name) for r in tripped] == [("runc", "storm")]
    assert tripped[0] is results[0]  # worst first
    rates = tripped[0].rates
    assert (
        rates is not None
        and rates.per_second["resets_sent"] > 100
        and rates.per_second["resets_received"] > 100
    )
    assert {t.metric for t in tripped[0].tripped} == {"resets_received", "resets_sent"}


def test_the_hosts_own_namespace_stays_quiet_while_its_container_storms() -> None:
    before, after = parse_probe_output(capture("root.out"))
    from fleetrst.measure.counters import measure_rates

    assert measure_rates(before, after).per_second["resets_sent"] < 5


def test_every_namespace_is_named_as_its_runtime_knows_it() -> None:
    named = {(r.runtime, r.name) for r in judged(capture("root.out"))}
    assert named == {
        ("runc", "storm"),
        ("kubernetes", "shop/cart-7d9f"),  # the pod, from its cgroup's uid and /var/log/pods
        ("netns", "blue"),  # an ip netns with a process in it
        ("netns", "green"),  # an ip netns held only by its bind mount, entered by the probe as root
    }


def test_a_pods_containers_share_one_namespace_held_by_its_pause_container() -> None:
    pod = by_name(judged(capture("root.out")))["shop/cart-7d9f"]
    assert pod.processes == 2  # pause and app
    listing = capture("root.out").split("@@fleetrst-netns end list")[0]
    assert (
        f"@@comm {pod.pid} sleep" in listing and "cart-7d9f-pause" in listing.split(f"@@cgroup {pod.pid} ")[1]
    )


def test_a_namespace_is_identified_by_inode_holder_pid_and_start_time() -> None:
    storm = by_name(judged(capture("root.out")))["storm"]
    listing = capture("root.out")
    assert re.search(rf"^@@netns {storm.inode} {storm.pid} {storm.start_ticks} 1$", listing, re.M)
    assert storm.key == f"{storm.inode}:{storm.pid}:{storm.start_ticks}" and storm.start_ticks > 0


def test_a_baseline_probe_judges_namespaces_over_the_window() -> None:
    results = judged(capture("root-baseline.out"))
    assert [r.name for r in results if r.status != "ok"] == ["storm"]


def test_as_another_user_the_host_is_measured_and_the_json_says_why_no_namespace_was_seen() -> None:
    text = capture("not-root.out")
    assert len(parse_probe_output(text)) == 2
    judge = namespace_judge({}, "host h1", {}, {})
    results, unseen = judge.results(text, "b")
    assert results == ()
    assert unseen == (
        "namespaces not listed: the probe's user is not root (use -b to list them through sudo)",
    )


def test_sudo_that_wants_a_password_is_said_in_sudos_own_words() -> None:
    text = capture("sudo-refused.out")
    assert len(parse_probe_output(text)) == 2
    _, unseen = namespace_judge({}, "h", {}, {}).results(text, "b")
    assert unseen == ("namespaces not listed: sudo refused (-b): sudo: a password is required",)


def test_output_without_a_namespace_part_has_no_namespaces_at_all() -> None:
    real = (Path(__file__).parents[1] / "fixtures" / "proc" / "probe" / "idle.out").read_text()
    assert parse_namespace_output(real) is None


def test_the_hosts_snapshots_are_the_same_with_or_without_the_namespace_blocks() -> None:
    # Derived: root.out with every namespace block cut out.
    text = capture("root.out")
    stripped = re.sub(r"@@fleetrst-netns v1 .*?@@fleetrst-netns end [^\n]*\n", "", text, flags=re.S)
    assert BEGIN_LIST not in stripped
    assert parse_probe_output(stripped) == parse_probe_output(text)


# --- identity and failures (derived) ---------------------------------------------------------------


def sample_block(text: str, index: int) -> tuple[int, int]:
    start = text.index(f"@@fleetrst-netns v1 sample {index}\n")
    return start, text.index(f"@@fleetrst-netns end sample {index}", start)


def test_a_holder_replaced_during_the_window_is_an_error_not_a_rate() -> None:
    # Derived: in sample 1, the storm holder's start time changed (its pid reused by another process).
    text = capture("root.out")
    storm = by_name(judged(text))["storm"]
    start, end = sample_block(text, 1)
    block = text[start:end].replace(f"@@ns {storm.pid} {storm.start_ticks}", f"@@ns {storm.pid} 1", 1)
    result = by_name(judged(text[:start] + block + text[end:]))["storm"]
    assert result.status == "error" and result.rates is None
    assert result.error == "its holder was replaced during the window (pid reused)"


def test_a_container_that_exits_during_the_window_is_an_error_of_its_own_never_the_hosts() -> None:
    # Derived: in sample 1, the storm holder is gone (what the awk prints when its stat is missing).
    text = capture("root.out")
    storm = by_name(judged(text))["storm"]
    start, end = sample_block(text, 1)
    block = re.sub(rf"@@ns {storm.pid} .*?(?=@@ns |\Z)", f"@@gone {storm.pid}\n", text[start:end], flags=re.S)
    results = by_name(judged(text[:start] + block + text[end:]))
    assert results["storm"].status == "error" and results["storm"].error == "its holder exited (sample 1)"
    assert len(parse_probe_output(text[:start] + block + text[end:])) == 2


def test_a_sample_cut_at_its_budget_is_said() -> None:
    text = capture("root.out")
    end = sample_block(text, 1)[1]
    out = parse_namespace_output(text[:end] + "@@cut 3\n" + text[end:])
    assert out is not None and any("reached its cap" in u for u in out.unseen)


def test_more_namespaces_than_are_read_are_counted() -> None:
    text = capture("root.out").replace("@@cut 0", "@@cut 12", 1)
    out = parse_namespace_output(text)
    assert out is not None
    assert f"12 namespaces not read: more than {MAX_NAMESPACES} on the host" in out.unseen


# --- names ------------------------------------------------------------------------------------------

DOCKER_ID = "4e5c8b7b0f1d" + "a" * 52
CRIO_ID = "9" * 64


@pytest.mark.parametrize(
    ("cgroup", "names", "expected"),
    [
        (f"/docker/{DOCKER_ID}", Names(docker={DOCKER_ID: "web"}), ("docker", "web")),
        (f"/system.slice/docker-{DOCKER_ID}.scope", Names(), ("docker", DOCKER_ID[:12])),
        (
            "/kubepods.slice/kubepods-besteffort.slice/"
            f"kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CRIO_ID}.scope",
            Names(pods={POD_UID: "shop/cart-7d9f"}),
            ("kubernetes", "shop/cart-7d9f"),
        ),
        (f"/kubepods/burstable/pod{POD_UID}/crio-{CRIO_ID}", Names(), ("kubernetes", f"pod {POD_UID}")),
        (f"/machine.slice/libpod-{DOCKER_ID}.scope", Names(podman={DOCKER_ID: "db"}), ("podman", "db")),
        (f"/system.slice/crio-{CRIO_ID}.scope", Names(), ("cri-o", CRIO_ID[:12])),
        ("/lxc.payload.build-7/init.scope", Names(), ("lxc", "build-7")),
        ("/machine.slice/systemd-nspawn@debian.service/payload", Names(), ("nspawn", "debian")),
        ("/machine.slice/machine-my\\x2dbox.scope", Names(), ("nspawn", "my-box")),
    ],
)
def test_names_come_from_the_cgroup_path_each_runtime_makes(
    cgroup: str, names: Names, expected: tuple[str, str]
) -> None:
    assert name_namespace(Listed(4026532000, 42, 1, 1, "sh", (cgroup,)), names) == expected


def test_a_namespace_nobody_names_is_named_by_its_inode_and_holder() -> None:
    listed = Listed(4026532999, 4242, 7, 3, "python3", ("/user.slice/session-4.scope",))
    assert name_namespace(listed, Names()) == ("unknown", "netns:4026532999 (4242 python3)")


def test_a_docker_sandbox_bind_mount_names_a_namespace_only_when_nothing_else_does() -> None:
    listed = Listed(4026532998, 9, 1, 1, "pause", (), ("/run/docker/netns/1a2b3c",))
    assert name_namespace(listed, Names()) == ("docker", "sandbox 1a2b3c")


# --- thresholds per container ----------------------------------------------------------------------


def test_an_inventory_pattern_can_switch_a_containers_reset_limits_off() -> None:
    off = {"resets_sent": None, "resets_received": None}
    results = by_name(judged(capture("root.out"), fleetrst_container_thresholds={"sto*": off}))
    assert results["storm"].status == "ok"


def test_a_container_pattern_beats_the_hosts_thresholds_and_the_command_line_beats_both() -> None:
    judge = namespace_judge(
        {
            "fleetrst_thresholds": {"resets_sent": {"warning": 5}},
            "fleetrst_container_thresholds": {"shop/*": {"resets_sent": {"warning": 500}}},
        },
        "host h1",
        {},
        {"resets_sent": 900.0},
    )
    assert judge.thresholds_for("shop/cart").get("resets_sent") == DEFAULT_THRESHOLDS[
        "resets_sent"
    ].__class__(warning=500.0, critical=900.0)
    assert judge.thresholds_for("other")["resets_sent"].warning == 5.0


def test_a_bad_container_threshold_names_the_host_the_variable_and_the_pattern() -> None:
    with pytest.raises(ThresholdError) as caught:
        namespace_judge(
            {"fleetrst_container_thresholds": {"web*": {"resets_sent": {"warning": "lots"}}}},
            "host h1",
            {},
            {},
        )
    assert str(caught.value) == (
        "host h1: fleetrst_container_thresholds['web*'].resets_sent.warning must be a number, got 'lots'"
    )


def test_a_tripped_container_sets_the_exit_code_though_its_hosts_row_is_ok() -> None:
    storm = judged(capture("root.out"))[0]
    host = HostResult("h1", "10.0.0.1", (), "ok", rates=Rates(1.0, {}), namespaces=(storm,))
    report = FleetReport(hosts=(host,), started_at="2026-11-29T10:00:00+00:00", duration_s=1, window_s=1)
    assert report.exit_code == (2 if storm.status == "critical" else 1)
    assert not host.all_clear and host.namespace_level == storm.status


# --- never another exception ------------------------------------------------------------------------

REAL = [capture(name) for name in ("root.out", "root-baseline.out", "not-root.out", "sudo-refused.out")]


def check(text: str) -> None:
    out = parse_namespace_output(text)
    if out is None:
        return
    results = measure_namespaces(out, "b", lambda name: DEFAULT_THRESHOLDS)
    for r in results:
        assert r.status in ("ok", "warning", "critical", "error")
        assert r.rates is not None or r.error
    for line in out.unseen:
        assert line.isprintable() and len(line) < 400


@given(st.text())
def test_any_text_gives_namespaces_or_none_never_an_exception(text: str) -> None:
    check(BEGIN_LIST + "\n" + text)


@examples(300)
@given(damaged(REAL))
def test_a_damaged_real_output_gives_namespaces_or_errors_never_an_exception(text: str) -> None:
    check(text)
    with contextlib.suppress(ProbeParseError):
        parse_probe_output(text)  # and the host's part still fails only with its own error


@examples(200)
@given(damaged(REAL))
def test_every_counter_parsed_from_a_damaged_output_is_written_in_it(text: str) -> None:
    out = parse_namespace_output(text)
    if out is None:
        return
    numbers = set(re.findall(r"-?[0-9]+", text))
    for _, readings in out.samples:
        for reading in readings.values():
            for name, value in [*reading.tcp.items(), *reading.tcpext.items()]:
                assert name in text and str(value) in numbers, (name, value)
    for ns in out.listed:
        assert str(ns.inode) in numbers and str(ns.pid) in numbers
