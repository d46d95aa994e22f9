"""The investigation's ``top`` (the table's TOP PORT/PROCESS) comes from the first cause's own evidence:
a port this host serves, or the peer that resets it, or nothing, never an unrelated (ephemeral) port.

The runbooks are the real ones in fixtures/ (h001: a closed-port storm on loopback, h002: an aborting
server); the cross-host lines below are real too, spliced into h001's runbook in place of its own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fleetrst.investigate.analyse import HostView, analyse
from fleetrst.investigate.correlate import fleet_findings
from fleetrst.investigate.result import Top
from fleetrst.investigate.script import Plan, RunbookOutput, parse_runbook_output
from fleetrst.model import HostResult, Rates

FIXTURES = Path(__file__).parent / "fixtures"
NONCE = "0123456789abcdef"

# Real output, made on kernel 6.18.44 with tcpdump 4.99.3 and iproute2 6.1.0: two network namespaces
# on one veth, 10.233.0.11 (the client) dialling 10.233.0.14:5432, where nothing listens; each side
# ran fleetrst's runbook (``tcpdump -i any -w``, read back with ``tcpdump -nn -r``).
CLIENT_CAPTURE = (
    "13:19:30.334036 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40046: "
    "Flags [R.], seq 0, ack 1464113779, win 0, length 0\n"
    "13:19:30.344205 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40062: "
    "Flags [R.], seq 0, ack 1234304223, win 0, length 0\n"
    "13:19:30.356817 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40076: "
    "Flags [R.], seq 0, ack 2953759265, win 0, length 0\n"
    "13:19:30.366997 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40078: "
    "Flags [R.], seq 0, ack 2956669384, win 0, length 0\n"
    "13:19:30.377188 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40082: "
    "Flags [R.], seq 0, ack 148166061, win 0, length 0\n"
    "13:19:30.387365 eth0  In  IP 10.233.0.14.5432 > 10.233.0.11.40088: "
    "Flags [R.], seq 0, ack 373032727, win 0, length 0\n"
)
SERVER_CAPTURE = (
    "13:19:30.344203 eth0  Out IP 10.233.0.14.5432 > 10.233.0.11.40062: "
    "Flags [R.], seq 0, ack 1234304223, win 0, length 0\n"
    "13:19:30.356815 eth0  Out IP 10.233.0.14.5432 > 10.233.0.11.40076: "
    "Flags [R.], seq 0, ack 2953759265, win 0, length 0\n"
    "13:19:30.366995 eth0  Out IP 10.233.0.14.5432 > 10.233.0.11.40078: "
    "Flags [R.], seq 0, ack 2956669384, win 0, length 0\n"
    "13:19:30.377186 eth0  Out IP 10.233.0.14.5432 > 10.233.0.11.40082: "
    "Flags [R.], seq 0, ack 148166061, win 0, length 0\n"
    "13:19:30.387363 eth0  Out IP 10.233.0.14.5432 > 10.233.0.11.40088: "
    "Flags [R.], seq 0, ack 373032727, win 0, length 0\n"
)
# ``ss -tanp`` on the client: its SSH server (here a stand-in on port 22) closed two earlier sessions
# first, so they wait in TIME-WAIT with the other side's ephemeral ports as peers
CLIENT_SS = """\
State     Recv-Q Send-Q Local Address:Port Peer Address:Port Process
LISTEN    0      8        10.233.0.11:22        0.0.0.0:*     users:(("python3",pid=17241,fd=3))
TIME-WAIT 0      0        10.233.0.11:22    10.233.0.14:51426
TIME-WAIT 0      0        10.233.0.11:22    10.233.0.14:51432
"""
EPHEMERAL = (40046, 40062, 40076, 40078, 40082, 40088, 51426, 51432)
REFUSED = {"resets_received": 98.0}  # the client: AttemptFails only
REFUSING = {"resets_sent": 98.0}  # the server: OutRsts only


def _replace_step(text: str, name: str, body: str) -> str:
    start = text.index(f"@@{NONCE} step {name} ")
    body_start = text.index("\n", start) + 1
    body_end = text.index(f"@@{NONCE} stderr", body_start)
    return text[:body_start] + body + "\n" + text[body_end:]


def runbook(host: str, *, ss: str | None = None, capture: str | None = None) -> RunbookOutput:
    """A real runbook's output, with its ss or capture text replaced by other real output."""
    text = (FIXTURES / f"runbook-{host}.out").read_text()
    if ss is not None:
        text = _replace_step(text, "ss", ss)
    if capture is not None:
        text = _replace_step(text, "capture-text", capture)
    return parse_runbook_output(text, NONCE)


def without_why(top: Top | None) -> Top:
    assert top is not None, "the first cause's evidence names something"
    assert top.why.strip(), "a top always says why"
    return replace(top, why="")


def test_a_client_refused_by_a_peer_points_at_that_peer_not_at_its_own_ports() -> None:
    out = runbook("h001", ss=CLIENT_SS, capture=CLIENT_CAPTURE)
    inv = analyse(out, REFUSED, Plan(capture_s=2), HostView())
    cause = inv.causes[0]
    assert cause.cause == "closed_port" and "refused by their peers" in cause.summary, inv.causes
    assert inv.capture is not None and [f.peer for f in inv.capture.flows] == ["10.233.0.14:5432"]
    top = inv.top
    assert top is not None, "the capture names the peer that refuses this host"
    assert without_why(top) == Top(port=None, peer="10.233.0.14:5432", pid=None, command=None)
    assert top.why.startswith("closed_port: ") and "6 RSTs received" in top.why
    assert not set(EPHEMERAL) & {top.port}


def test_three_clients_name_the_same_peer_as_their_common_finding() -> None:
    out = runbook("h001", ss=CLIENT_SS, capture=CLIENT_CAPTURE)
    results = [
        HostResult(
            host=name,
            address="10.233.0.1" + name[-1],
            groups=(),
            status="warning",
            rates=Rates(2.0, REFUSED),
            investigation=analyse(out, REFUSED, Plan(capture_s=2), HostView()),
        )
        for name in ("c1", "c2", "c3")
    ]
    (finding,) = fleet_findings(results)
    assert finding.summary.startswith("3 hosts get resets from 10.233.0.14:5432")
    for h in results:
        assert h.investigation is not None and h.investigation.top is not None
        assert h.investigation.top.peer == finding.peer


def test_a_client_without_a_capture_names_nothing_rather_than_an_unrelated_port() -> None:
    inv = analyse(runbook("h001", ss=CLIENT_SS), REFUSED, Plan(), HostView())
    assert inv.causes[0].cause == "closed_port"
    assert inv.states == {"LISTEN": 1, "TIME-WAIT": 2}
    assert inv.top is None, "the TIME-WAIT sockets' ephemeral peer ports are not what refuses it"


def test_a_server_refusing_on_a_closed_port_with_a_capture_gets_its_port() -> None:
    inv = analyse(runbook("h001", capture=SERVER_CAPTURE), REFUSING, Plan(capture_s=2), HostView())
    cause = inv.causes[0]
    assert cause.cause == "closed_port" and cause.port == 5432
    assert without_why(inv.top) == Top(port=5432, peer=None, pid=None, command=None)
    assert inv.top is not None and inv.top.why.startswith("closed_port: ") and "5 RSTs sent" in inv.top.why


def test_the_loopback_storm_with_its_capture_gets_the_closed_port() -> None:
    inv = analyse(
        runbook("h001"), {"resets_received": 100.0, "resets_sent": 100.0}, Plan(capture_s=2), HostView()
    )
    assert inv.capture is not None
    storm_port = inv.capture.flows[0].local_port
    assert storm_port == 46027
    assert without_why(inv.top) == Top(port=storm_port, peer=None, pid=None, command=None)


def test_a_server_without_a_capture_has_no_top_and_says_a_capture_would_name_the_port() -> None:
    for rates in (REFUSING, {"resets_received": 100.0, "resets_sent": 100.0}):
        inv = analyse(runbook("h001"), rates, Plan(), HostView())
        (cause,) = inv.causes
        assert cause.cause == "closed_port" and cause.port is None
        assert inv.top is None
        assert "a capture (--capture 10s, with -b for tcpdump's privileges) names the port" in cause.next_step


def test_an_aborting_server_gets_its_port_and_process() -> None:
    rates = {"resets_sent": 100.0, "estab_resets": 200.0, "aborts_on_data": 100.0}
    inv = analyse(runbook("h002"), rates, Plan(capture_s=2, samples=10, logs=True), HostView())
    assert inv.causes[0].cause == "aborted_connection"
    top = inv.top
    assert top is not None and top.port == 9400 and top.peer is None and top.command == "aborting-server"
    assert top.why == "aborted_connection: the capture shows the RSTs coming from it"
