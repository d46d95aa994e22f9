"""The runbook script, its framed output, the analysis of real runbook output, the investigator over
the Session seam, fleet correlation and the table columns."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetrst.investigate.analyse import HostView, analyse
from fleetrst.investigate.correlate import fleet_findings
from fleetrst.investigate.errors import InvestigateParseError
from fleetrst.investigate.result import Capture, CauseResult, Finding, Flow, Investigation, Top
from fleetrst.investigate.runner import InvestigateOptions, RunbookInvestigator, pcap_file_name
from fleetrst.investigate.script import Plan, build_script, parse_runbook_output
from fleetrst.model import ConnectionSettings, FleetReport, HostResult, Rates, Target, Trip, Verdict
from fleetrst.render.fleet import render_table
from fleetrst.render.schema import investigation_json, render_json
from fleetrst.transport.base import DEFAULT_MAX_OUTPUT, CommandTimeout, ExecResult

FIXTURES = Path(__file__).parent / "fixtures"
NONCE = "0123456789abcdef"


def runbook(host: str) -> str:
    return (FIXTURES / f"runbook-{host}.out").read_text()


# --- the script ---------------------------------------------------------------------------------


def test_the_script_is_valid_posix_shell_in_every_shape() -> None:
    for plan in (Plan(), Plan(capture_s=2, save_pcap=True, logs=True, become_user="root", samples=5)):
        script = build_script(plan, NONCE)
        subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_only_validated_values_reach_the_shell() -> None:
    with pytest.raises(ValueError, match="user name"):
        Plan(become_user="root; rm -rf /")
    with pytest.raises(ValueError):
        Plan(capture_s=float("nan"))
    with pytest.raises(ValueError):
        build_script(Plan(), "$(reboot)")
    script = build_script(Plan(become_user="svc.user-1"), NONCE)
    assert "BU=svc.user-1\n" in script or f"BU={shlex.quote('svc.user-1')}\n" in script
    assert 'sudo -n -u "$BU" --' in script, "sudo never prompts, and the user is a quoted variable"


# --- the framed output --------------------------------------------------------------------------


def test_real_runbook_output_splits_into_steps() -> None:
    out = parse_runbook_output(runbook("h002"), NONCE)
    assert out.complete
    assert {"ss", "listeners", "context", "capture", "capture-text", "samples", "journal"} <= set(out.steps)
    assert out.steps["ss"].rc == 0 and "LISTEN" in out.steps["ss"].stdout
    assert out.steps["capture"].rc == 124, "timeout(1) ended the capture"


def test_host_text_cannot_forge_a_frame() -> None:
    text = runbook("h003").replace("stuck-listener", "@@ffffffffffffffff end\\n@@0123 done")
    out = parse_runbook_output(text, NONCE)
    assert out.complete and "ss" in out.steps


def test_a_runbook_cut_short_keeps_what_finished() -> None:
    text = runbook("h001")
    cut = text[: text.index("step context")]
    out = parse_runbook_output(cut[: cut.rindex("\n")], NONCE)
    assert not out.complete and "ss" in out.steps and "context" not in out.steps


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(0, 5000))
def test_fuzz_framed_output(junk: str, at: int) -> None:
    text = runbook("h003")
    text = text[:at] + junk + text[at:]
    try:
        out = parse_runbook_output(text, NONCE)
    except InvestigateParseError as exc:
        assert "\n" not in str(exc)
    else:
        analyse(out, {"listen_overflows": 10.0}, Plan(), HostView())  # never raises


# --- analysis of real output --------------------------------------------------------------------


def test_analysis_of_the_flooded_host() -> None:
    out = parse_runbook_output(runbook("h003"), NONCE)
    inv = analyse(out, {"listen_overflows": 300.0, "listen_drops": 300.0}, Plan(), HostView())
    assert inv.causes[0].cause == "listen_queue_full" and inv.causes[0].port == 9401
    assert inv.states["SYN-SENT"] > 50 and inv.states["LISTEN"] == 2
    listener = next(lf for lf in inv.listeners if lf.port == 9401)
    assert listener.queue >= listener.backlog == 1 and (listener.fill or 0) >= 1 and listener.full
    assert listener.processes[0].command == "stuck-listener"
    syn_sent = next(t for t in inv.top_ports if t.state == "SYN-SENT")
    assert syn_sent.peer[0].port == 9401
    assert inv.top is not None and inv.top.port == 9401 and inv.top.command == "stuck-listener"
    assert (inv.context.sysctls or {})["somaxconn"].isdigit() and inv.context.loadavg is not None
    assert inv.privileged and inv.unseen == () and inv.errors == ()
    doc = json.loads(json.dumps(investigation_json(inv)))
    assert doc["listeners"][0]["processes"] == [
        {"pid": listener.processes[0].pid, "command": "stuck-listener"}
    ]


def test_analysis_of_the_storm_capture() -> None:
    out = parse_runbook_output(runbook("h001"), NONCE)
    inv = analyse(out, {"resets_received": 100.0, "resets_sent": 100.0}, Plan(capture_s=2), HostView())
    (cause,) = inv.causes
    assert inv.capture is not None and inv.capture.error is None
    flow = inv.capture.flows[0]
    assert cause.cause == "closed_port" and cause.port == flow.local_port
    assert flow.direction == "loopback" and flow.count > 50 and flow.peer == "127.0.0.1:*"
    assert flow.ports is not None and flow.ports > 1, "the peer's many ports are folded into one flow"


def test_sudo_refusal_is_a_clear_finding() -> None:
    text = runbook("h003").replace(
        f"@@{NONCE} stderr", f"@@{NONCE} sudo\nsudo: a password is required\n@@{NONCE} stderr", 1
    )
    out = parse_runbook_output(text, NONCE)
    inv = analyse(out, {}, Plan(become_user="root"), HostView("fleetrst-test", True, "root"))
    assert inv.become.ok is False and inv.become.requested and inv.become.user == "root"
    assert (inv.become.error or "").startswith("sudo needs a password")
    assert any("sudo needs a password" in u for u in inv.unseen)


# --- the investigator over the Session seam -------------------------------------------------------


class CannedSession:
    """A stand-in for a host (says so): answers every command with a fixed reply or error."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.commands: list[str] = []

    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        self.commands.append(command)
        if isinstance(self.reply, Exception):
            raise self.reply
        nonce = command.split("M=@@", 1)[1].split("\n", 1)[0]
        return ExecResult(self.reply.replace(NONCE, nonce), "", 0)

    async def close(self) -> None:
        return None


def target(name: str = "h1", **conn: Any) -> Target:
    return Target(name=name, groups=(), connection=ConnectionSettings(address="10.0.0.1", **conn))


RATES = Rates(interval_s=2.0, per_second={"listen_overflows": 300.0, "listen_drops": 300.0})
TRIPPED = Verdict("critical", (Trip("listen_overflows", "critical", 300.0, 5.0),))


def test_auto_investigates_only_hosts_that_tripped() -> None:
    inv = RunbookInvestigator(InvestigateOptions())
    assert inv.wants(target(), TRIPPED) and not inv.wants(target(), Verdict("ok"))
    assert RunbookInvestigator(InvestigateOptions(mode="always")).wants(target(), Verdict("ok"))
    assert not RunbookInvestigator(InvestigateOptions(mode="never")).wants(target(), TRIPPED)


def test_one_exec_and_the_analysis() -> None:
    session = CannedSession(runbook("h003"))
    found = asyncio.run(
        RunbookInvestigator(InvestigateOptions()).investigate(session, target(), RATES, TRIPPED)
    )
    assert len(session.commands) == 1, "the whole runbook is one remote exec"
    assert found.causes[0].cause == "listen_queue_full"
    assert found.elapsed_s is not None and found.elapsed_s >= 0


@pytest.mark.parametrize("reply", [CommandTimeout("timed out after 9s waiting for the command"), "garbage\n"])
def test_a_failing_runbook_is_a_finding_never_an_exception(reply: str | Exception) -> None:
    found = asyncio.run(
        RunbookInvestigator(InvestigateOptions()).investigate(CannedSession(reply), target(), RATES, TRIPPED)
    )
    assert found.causes == () and found.errors and found.unseen[0].startswith("everything")
    assert found.capture is None and found.top is None and found.elapsed_s is not None
    doc = investigation_json(found)
    assert doc["context"] == {} and doc["become"] == {
        "requested": False,
        "user": None,
        "ok": False,
        "error": None,
    }


PCAP = b"\xd4\xc3\xb2\xa1" + bytes(range(100))


def with_pcap(text: str, data: str) -> str:
    """A real runbook's output with a pcap brought back (``--save-pcap``), as the script frames it."""
    return text.replace(f"@@{NONCE} done", f"@@{NONCE} pcap bytes=104\n{data}\n@@{NONCE} end\n@@{NONCE} done")


def test_the_pcap_is_written_by_the_runner_and_only_its_path_and_size_are_reported(tmp_path: Path) -> None:
    options = InvestigateOptions(capture_s=2, save_pcap_dir=str(tmp_path))
    reply = with_pcap(runbook("h002"), base64.b64encode(PCAP).decode())
    found = asyncio.run(
        RunbookInvestigator(options).investigate(CannedSession(reply), target("web/1"), RATES, TRIPPED)
    )
    assert found.capture is not None and found.capture.error is None
    path = tmp_path / pcap_file_name("web/1")
    assert found.capture.pcap == str(path) and found.capture.pcap_bytes == len(PCAP) == 104
    assert path.read_bytes() == PCAP and stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = investigation_json(found)
    assert (doc["capture"]["pcap"], doc["capture"]["pcap_bytes"]) == (str(path), 104)
    assert "pcap_base64" not in json.dumps(doc) and base64.b64encode(PCAP).decode()[:40] not in json.dumps(
        doc
    )


def test_a_pcap_that_does_not_decode_is_the_capture_s_error(tmp_path: Path) -> None:
    options = InvestigateOptions(capture_s=2, save_pcap_dir=str(tmp_path))
    reply = with_pcap(runbook("h002"), "!!! not base64")
    found = asyncio.run(
        RunbookInvestigator(options).investigate(CannedSession(reply), target(), RATES, TRIPPED)
    )
    assert found.capture is not None and found.capture.pcap is None and found.capture.flows
    assert found.capture.error == "the pcap did not come back intact (bad base64)"
    assert list(tmp_path.iterdir()) == []


def test_without_save_pcap_nothing_is_written() -> None:
    reply = with_pcap(runbook("h002"), base64.b64encode(PCAP).decode())
    options = InvestigateOptions(capture_s=2)
    found = asyncio.run(
        RunbookInvestigator(options).investigate(CannedSession(reply), target(), RATES, TRIPPED)
    )
    assert found.capture is not None and found.capture.error is None
    assert (found.capture.pcap, found.capture.pcap_bytes) == (None, None)


def test_become_goes_through_sudo_unless_it_is_the_login_user() -> None:
    inv = RunbookInvestigator(InvestigateOptions())
    plan, _ = inv.plan_for(target(become=True, become_user="root", user="ops"), RATES)
    assert plan is not None and plan.become_user == "root"
    plan, _ = inv.plan_for(target(become=True, become_user="ops", user="ops"), RATES)
    assert plan is not None and plan.become_user is None
    plan, view = inv.plan_for(target(become=True, become_method="su"), RATES)
    assert plan is not None and plan.become_user is None and "not supported" in (view.become_problem or "")
    plan, view = inv.plan_for(target(become=True, become_user="x; reboot"), RATES)
    assert plan is None and "cannot use become" in (view.become_problem or "")


@pytest.mark.parametrize(
    ("host", "safe"),
    [("web1", "web1.pcap"), ("../../etc/passwd", None), (".hidden", None), ("a/b", None), ("", None)],
)
def test_pcap_file_names_stay_in_their_directory(host: str, safe: str | None) -> None:
    name = pcap_file_name(host)
    assert "/" not in name and not name.startswith(".") and name.endswith(".pcap")
    if safe:
        assert name == safe
    assert pcap_file_name("a/b") != pcap_file_name("a_b"), "two hosts never share a file"


# --- the fleet, the table -----------------------------------------------------------------------


def result(host: str, inv: Investigation | None, status: str = "warning") -> HostResult:
    return HostResult(
        host=host,
        address="10.0.0.1",
        groups=(),
        status=status,  # type: ignore[arg-type]
        rates=Rates(2.0, {"resets_received": 60.0}),
        investigation=inv,
    )


def captured(*flows: Flow) -> Investigation:
    return Investigation(capture=Capture(2.0, 1000, sum(f.count for f in flows), flows=flows))


def test_hosts_reset_by_one_peer_are_a_fleet_finding() -> None:
    inv = captured(Flow("received", None, "10.231.0.7:5432", 40, ports=12))
    other = captured(Flow("received", 80, "10.9.9.9:80", 1), Flow("received", 80, "127.0.0.1:5432", 9))
    results = [
        result("a", inv),
        result("b", inv),
        result("c", Investigation(stuck_peers={"10.231.0.7:5432": 3, "127.0.0.1:9": 5})),
        result("d", other),
        result("e", None),
        result("f", Investigation(stuck_peers={"127.0.0.1:9": 5})),
    ]
    (finding,) = fleet_findings(results)
    assert finding.kind == "common_peer" and finding.peer == "10.231.0.7:5432"
    assert finding.hosts == ("a", "b", "c") and finding.count == 83
    assert finding.summary.startswith("3 hosts get resets from 10.231.0.7:5432")
    assert finding.seen_in == ("capture", "sockets")
    doc = json.loads(
        render_json(FleetReport(hosts=(), started_at="x", duration_s=1.0, window_s=2.0, findings=(finding,)))
    )
    assert doc["findings"] == [
        {
            "kind": "common_peer",
            "peer": "10.231.0.7:5432",
            "hosts": ["a", "b", "c"],
            "count": 83,
            "seen_in": ["capture", "sockets"],
            "summary": finding.summary,
            "next_step": finding.next_step,
        }
    ]


def causes(*names: str) -> tuple[CauseResult, ...]:
    return tuple(CauseResult(name, f"{name} summary", f"{name} next step") for name in names)


def test_table_shows_cause_and_top_port_cleaned() -> None:
    inv = Investigation(
        causes=causes("aborted_connection", "closed_port"),
        top=Top(port=9400, pid=7, command="evil\x1b[2J", why="aborted_connection: the capture shows it"),
    )
    report = FleetReport(
        hosts=(result("h1", inv), result("h2", None, "ok")),
        started_at="x",
        duration_s=1.0,
        window_s=2.0,
        findings=(
            Finding(
                "common_peer",
                "10.0.0.7:5432",
                ("a", "b"),
                9,
                ("capture",),
                "2 hosts get resets from 10.0.0.7:5432",
                "look",
            ),
        ),
    )
    table = render_table(report)
    assert "CAUSE" in table and "TOP PORT/PROCESS" in table
    assert "aborted_connection +1" in table and "9400 evil\\x1b[2J[7]" in table and "\x1b" not in table
    assert "finding: 2 hosts get resets from 10.0.0.7:5432" in table
    plain = FleetReport(hosts=(result("h2", None, "ok"),), started_at="x", duration_s=1.0, window_s=2.0)
    assert "CAUSE" not in render_table(plain), "no investigation, no empty columns"
    doc = json.loads(render_json(report))
    assert doc["hosts"][0]["investigation"]["top"]["port"] == 9400 and doc["findings"]


def test_table_shows_the_peer_that_resets_a_client_and_nothing_for_a_cause_that_names_nothing() -> None:
    peer = Investigation(
        causes=causes("closed_port"), top=Top(peer="10.233.0.14:5432", why="closed_port: 6 RSTs received")
    )
    blind = Investigation(causes=causes("half_open"))
    none = Investigation()
    report = FleetReport(
        hosts=(result("client", peer), result("blind", blind), result("quiet", none)),
        started_at="x",
        duration_s=1.0,
        window_s=2.0,
    )
    rows = {line.split()[0]: line.split() for line in render_table(report).splitlines()[2:5]}
    assert rows["client"][-2:] == ["closed_port", "10.233.0.14:5432"], rows
    assert rows["blind"][-1] == "half_open", "a cause that names nothing: an empty TOP PORT/PROCESS"
    assert rows["quiet"][-1] == "-", "investigated, no cause found"
    assert "None" not in render_table(report)
