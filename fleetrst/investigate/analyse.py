"""From the runbook's output to the per-host investigation (the JSON ``investigation`` object).

Pure: the framed output, the rates and what was asked go in; a plain dict comes out. A step that
failed, was refused or is missing becomes a line in ``unseen`` or ``errors``, never an exception.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .classify import Cause, Facts, ListenerFact, RstSeen, classify
from .errors import InvestigateParseError
from .lsof import LsofRow, parse_lsof
from .script import Plan, RunbookOutput, StepOutput
from .ss import Owner, SocketRow, parse_ss
from .tcpdump import Capture, orient_rst, parse_tcpdump, summarise_rsts

SCHEMA_VERSION = 1
TROUBLED_STATES = (
    "SYN-SENT",
    "SYN-RECV",
    "CLOSE-WAIT",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "LAST-ACK",
    "CLOSING",
)
LOG_WORDS = (
    "tcp",
    "syn flood",
    "orphan",
    "out of memory: kill",
    "socket memory",
    "conntrack",
    "reset",
    "link is down",
    "link is up",
    "nic link",
    "neighbour",
    "net_ratelimit",
    "dropped",
    "timeout",
)
MAX_LOG_LINES = 40


@dataclass(frozen=True)
class HostView:
    """Who ran the runbook and how, as far as the controller knows it."""

    login_user: str | None = None
    become_requested: bool = False
    become_user: str | None = None
    become_problem: str | None = None  # why become was not attempted (unsupported method, bad user)
    session_port: int | None = 22  # the SSH port we came in on (None: the local connection)


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def analyse(out: RunbookOutput, rates: Mapping[str, float], plan: Plan, view: HostView) -> dict[str, Any]:
    """The investigation of one host, ready for JSON."""
    unseen: list[str] = []
    errors: list[str] = []
    steps = out.steps
    context_step = steps.get("context")
    context, sysctls, login = _context(context_step.stdout if context_step else "")
    login = login or view.login_user or "the login user"
    root = login == "root"

    # --- become -------------------------------------------------------------------------------
    sudo_errors = {s.sudo_error for s in steps.values() if s.sudo_error}
    become: dict[str, Any] = {
        "requested": view.become_requested,
        "user": view.become_user,
        "ok": bool(
            view.become_requested and view.become_user and not sudo_errors and not view.become_problem
        ),
        "error": None,
    }
    if view.become_problem:
        become["error"] = view.become_problem
        unseen.append(f"privileged steps ran as {login}: {view.become_problem}")
    elif sudo_errors:
        said = sorted(sudo_errors)[0].splitlines()[0]
        if "password is required" in said:
            become["error"] = f"sudo needs a password (sudo -n never prompts): {said}"
        else:
            become["error"] = f"sudo refused: {said}"
        unseen.append(f"{become['error']}; the privileged steps ran as {login} instead")
    privileged = root or bool(become["ok"])

    # --- sockets -------------------------------------------------------------------------------
    rows: list[SocketRow] = []
    lsof_rows: list[LsofRow] = []
    ss_step = steps.get("ss")
    if ss_step is not None and ss_step.missing is None:
        rows = _parsed(ss_step, parse_ss, errors) or []
        if ss_step.truncated:
            unseen.append(
                f"ss printed more than {ss_step.cap // 1024} KiB: states counted over the first part only"
            )
    elif ss_step is not None:
        unseen.append("socket states: ss (iproute2) is not installed")
    lsof_step = steps.get("lsof")
    if lsof_step is not None:
        if lsof_step.missing:
            unseen.append("process owners: ss named none and lsof is not installed")
        else:
            lsof_rows = _parsed(lsof_step, parse_lsof, errors) or []
    listener_rows: list[SocketRow] = []
    lst = steps.get("listeners")
    if lst is not None and lst.missing is None:
        listener_rows = _parsed(lst, parse_ss, errors) or []
    sample_rows: list[SocketRow] = []
    if "samples" in steps:
        sample_rows = _parsed(steps["samples"], parse_ss, errors) or []

    if not rows and lsof_rows:  # no ss: lsof's view of the sockets
        rows = [
            SocketRow(r.state or "UNCONN", 0, 0, r.local, r.peer or r.local, (Owner(r.pid, r.command),))
            for r in lsof_rows
            if r.protocol == "TCP" and r.state
        ]
    owners: dict[int, dict[Owner, None]] = {}
    for row in [*rows, *sample_rows]:
        if row.local.port is not None:
            for o in row.owners:
                owners.setdefault(row.local.port, {})[o] = None
    for lr in lsof_rows:
        if lr.local.port is not None:
            owners.setdefault(lr.local.port, {})[Owner(lr.pid, lr.command)] = None
    owners_by_port = {p: tuple(d) for p, d in owners.items()}
    any_owner = bool(owners_by_port)
    if not privileged and (ss_step is not None or lsof_step is not None):
        unseen.append(
            f"owners of other users' sockets: ss/lsof ran as {login}, not root"
            + ("" if view.become_requested else " (use -b/--become to run them through sudo -n)")
        )
    elif not any_owner and rows:
        unseen.append("process owners: neither ss -p nor lsof named any")

    states = Counter(r.state for r in rows)
    listeners = _listeners(listener_rows or [r for r in rows if r.state == "LISTEN"], owners_by_port)
    socket_tuples = [
        (r.state, r.local.port or 0, r.peer.address, r.peer.port or 0) for r in [*rows, *sample_rows]
    ]

    # --- capture -------------------------------------------------------------------------------
    capture_json: dict[str, Any] | None = None
    rsts: list[RstSeen] | None = None
    if plan.capture_s:
        capture_json, rsts = _capture(out, plan, login, privileged, view, unseen, errors, owners_by_port)

    # --- logs ----------------------------------------------------------------------------------
    logs_json: dict[str, Any] | None = None
    if plan.logs:
        logs_json = _logs(steps, unseen, login, privileged)

    # --- causes --------------------------------------------------------------------------------
    tcp_mem = context.get("tcp_mem_pages")
    facts = Facts(
        states=dict(states),
        listeners=listeners,
        sockets=socket_tuples,
        owners=owners_by_port,
        rsts=rsts,
        sysctls=sysctls,
        tcp_mem_pages=tuple(tcp_mem) if isinstance(tcp_mem, list) and len(tcp_mem) == 3 else None,
        tcp_mem_used_pages=context.get("tcp_mem_used_pages"),
        orphans=context.get("orphans"),
        session_port=view.session_port,
    )
    causes = classify(rates, facts)

    processes: dict[tuple[int, str, int | None], None] = {}
    for cause in causes:
        for o in cause.processes:
            processes[(o.pid, o.command, cause.port)] = None
    for lf in listeners:
        for o in lf.owners:
            processes.setdefault((o.pid, o.command, lf.port), None)
    if capture_json:
        for flow in capture_json["flows"]:
            for p in flow.get("processes", []):
                processes.setdefault((p["pid"], p["command"], flow["local_port"]), None)

    top = _top_ports(rows)
    stuck = Counter(
        str(r.peer) for r in rows if r.state == "SYN-SENT" and not r.peer.address.startswith(("127.", "::1"))
    )
    headline = _headline(causes)
    if not out.complete:
        errors.append("the runbook did not finish (cut short by its deadline or output cap)")
    if out.fatal:
        errors.append(out.fatal)
    return {
        "version": SCHEMA_VERSION,
        "causes": [c.as_json() for c in causes],
        "top": headline,
        "processes": [{"pid": pid, "command": cmd, "port": port} for pid, cmd, port in processes],
        "states": dict(sorted(states.items())),
        "sockets_seen": len(rows),
        "top_ports": top,
        "stuck_peers": dict(stuck.most_common(5)),
        "listeners": [
            {
                "address": lf.address,
                "port": lf.port,
                "queue": lf.queue,
                "backlog": lf.backlog,
                "fill": round(lf.queue / lf.backlog, 3) if lf.backlog > 0 else None,
                "processes": [{"pid": o.pid, "command": o.command} for o in lf.owners],
            }
            for lf in listeners
        ],
        "capture": capture_json,
        "context": {**context, "sysctls": sysctls, "login_user": login},
        "logs": logs_json,
        "become": become,
        "privileged": privileged,
        "unseen": unseen,
        "errors": errors,
    }


def failed_investigation(message: str, view: HostView, plan: Plan) -> dict[str, Any]:
    """When the runbook could not run at all (the exec failed or timed out): a finding, not an error."""
    return {
        "version": SCHEMA_VERSION,
        "causes": [],
        "top": None,
        "processes": [],
        "states": {},
        "sockets_seen": 0,
        "top_ports": [],
        "stuck_peers": {},
        "listeners": [],
        "capture": None,
        "context": {},
        "logs": None,
        "become": {
            "requested": view.become_requested,
            "user": view.become_user,
            "ok": False,
            "error": view.become_problem,
        },
        "privileged": False,
        "unseen": ["everything: the runbook did not run (" + message + ")"],
        "errors": [message],
    }


def _parsed(step: StepOutput, parser: Any, errors: list[str]) -> Any:
    if step.timed_out:
        errors.append(f"{step.name}: timed out on the host")
    elif step.rc == 1 and step.name == "lsof" and not step.stdout.strip():
        return []  # lsof's "found nothing"
    elif step.rc not in (0, None) and not step.stdout.strip():
        errors.append(f"{step.name}: exit status {step.rc}: {_first_line(step.stderr) or 'no message'}")
        return None
    text = step.stdout
    if step.truncated:  # the last line may be cut in the middle
        text = text[: text.rfind("\n")] if "\n" in text else ""
    try:
        return parser(text)
    except InvestigateParseError as exc:
        errors.append(f"{step.name}: {exc}")
        return None


def _listeners(rows: list[SocketRow], owners: Mapping[int, tuple[Owner, ...]]) -> list[ListenerFact]:
    found: dict[tuple[str, int], ListenerFact] = {}
    for r in rows:
        if r.state == "LISTEN" and r.local.port is not None:
            key = (r.local.address, r.local.port)
            if key not in found:
                found[key] = ListenerFact(
                    r.local.address,
                    r.local.port,
                    r.recv_q,
                    r.send_q,
                    r.owners or owners.get(r.local.port, ()),
                )
    return sorted(found.values(), key=lambda lf: (-(lf.queue / max(1, lf.backlog)), lf.port, lf.address))


def _top_ports(rows: list[SocketRow], per_state: int = 3) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for state in TROUBLED_STATES:
        in_state = [r for r in rows if r.state == state]
        if not in_state:
            continue
        local = Counter(r.local.port for r in in_state if r.local.port is not None)
        peer = Counter(r.peer.port for r in in_state if r.peer.port is not None)
        out.append(
            {
                "state": state,
                "count": len(in_state),
                "local": [{"port": p, "count": n} for p, n in local.most_common(per_state)],
                "peer": [{"port": p, "count": n} for p, n in peer.most_common(per_state)],
            }
        )
    return out


def _headline(causes: list[Cause]) -> dict[str, Any] | None:
    """The table's TOP PORT/PROCESS for the host: what the first cause's own evidence points at.

    ``{"port", "peer", "pid", "command", "why"}``: a local port this host serves (and the process that
    owns it), or the peer ``address:port`` that resets it; None when that evidence names nothing (an
    unrelated port, such as a client's ephemeral one, is never put in its place).
    """
    top = causes[0].top if causes else None
    if top is None:
        return None
    owner = top.processes[0] if top.processes else None
    return {
        "port": top.port,
        "peer": top.peer,
        "pid": owner.pid if owner else None,
        "command": owner.command if owner else None,
        "why": f"{causes[0].cause}: {top.why}",
    }


def _context(text: str) -> tuple[dict[str, Any], dict[str, str], str | None]:
    context: dict[str, Any] = {}
    sysctls: dict[str, str] = {}
    login: str | None = None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        try:
            if key == "/proc/loadavg":
                context["loadavg"] = [float(v) for v in value.split()[:3]]
            elif key == "/proc/net/sockstat":
                words = value.split()
                if "TCP:" in words:
                    tcp = words[words.index("TCP:") + 1 :]
                    pairs = dict(zip(tcp[0::2], tcp[1::2], strict=False))
                    for name, field_name in (
                        ("inuse", "tcp_inuse"),
                        ("orphan", "orphans"),
                        ("tw", "time_wait"),
                        ("mem", "tcp_mem_used_pages"),
                    ):
                        if name in pairs and pairs[name].isdigit():
                            context[field_name] = int(pairs[name])
            elif key == "/proc/sys/net/ipv4/tcp_mem":
                context["tcp_mem_pages"] = [int(v) for v in value.split()[:3]]
            elif key in ("MemTotal:", "MemAvailable:"):
                context["mem_total_kib" if key == "MemTotal:" else "mem_available_kib"] = int(
                    value.split()[0]
                )
            elif key == "user":
                login = value or None
            elif key.startswith("/proc/sys/"):
                sysctls[key.rsplit("/", 1)[-1]] = " ".join(value.split())
        except (ValueError, IndexError):
            continue  # a value that is not what the kernel prints: left out, not fatal
    return context, sysctls, login


def _capture(
    out: RunbookOutput,
    plan: Plan,
    login: str,
    privileged: bool,
    view: HostView,
    unseen: list[str],
    errors: list[str],
    owners: Mapping[int, tuple[Owner, ...]],
) -> tuple[dict[str, Any], list[RstSeen] | None]:
    result: dict[str, Any] = {
        "duration_s": plan.capture_s,
        "max_packets": plan.max_packets,
        "packets": 0,
        "dropped": None,
        "flows": [],
        "error": None,
        "pcap": None,
        "pcap_bytes": None,
    }
    step = out.steps.get("capture")
    if step is None:
        result["error"] = "the capture did not report back (the runbook was cut short)"
        unseen.append("RST capture: " + result["error"])
        return result, None
    if step.missing:
        result["error"] = "tcpdump is not installed"
        unseen.append("RST capture: tcpdump is not installed on the host")
        return result, None
    stderr = step.stderr
    text_step = out.steps.get("capture-text")
    if step.bytes == 0 or text_step is None:
        lower = stderr.lower()
        if "permission" in lower or "not permitted" in lower:
            why = f"tcpdump is not permitted for {login} (it needs root"
            why += ": sudo refused)" if view.become_requested else ": use -b/--become)"
        else:
            why = "tcpdump failed: " + (_first_line(stderr) or f"exit status {step.rc}")
        result["error"] = why
        unseen.append("RST capture: " + why)
        return result, None
    capture = Capture()
    try:
        capture = parse_tcpdump(
            text_step.stdout if not text_step.truncated else text_step.stdout[: text_step.stdout.rfind("\n")]
        )
        stats = parse_tcpdump("\n".join(ln for ln in stderr.splitlines() if "packet" in ln))
    except InvestigateParseError as exc:
        errors.append(f"capture: {exc}")
        result["error"] = str(exc)
        return result, None
    result["packets"] = len(capture.segments)
    result["dropped"] = stats.counts.get("dropped by kernel")
    if len(capture.segments) >= plan.max_packets:
        unseen.append(f"RST capture: stopped at {plan.max_packets} packets before {plan.capture_s:g}s")
    local_addresses = frozenset({"127.0.0.1", "::1"})
    flows = summarise_rsts(capture.segments, local_addresses)
    for flow in flows:
        entry: dict[str, Any] = {
            "direction": flow.direction,
            "local_port": flow.local_port,
            "peer": flow.peer,
            "count": flow.count,
        }
        if flow.spread > 1:
            entry["ports"] = flow.spread
        if flow.local_port is not None and flow.local_port in owners:
            entry["processes"] = [{"pid": o.pid, "command": o.command} for o in owners[flow.local_port]]
        result["flows"].append(entry)
    exact: Counter[tuple[str, int, str, int]] = Counter()

    for seg in capture.segments:
        if seg.is_rst:
            direction, lport, peer = orient_rst(seg, local_addresses)
            exact[(direction, lport, peer.address, peer.port or 0)] += 1
    rsts = [RstSeen(d, lp, pa, pp, n) for (d, lp, pa, pp), n in exact.items()]
    if out.pcap_base64 is not None:
        result["pcap_base64"] = out.pcap_base64  # the runner writes it to a file and drops this key
    elif plan.save_pcap:
        pcap = out.steps.get("pcap")
        unseen.append(
            "pcap file: " + ("base64 is not installed" if pcap and pcap.missing else "not brought back")
        )
    return result, rsts


def _logs(steps: Mapping[str, StepOutput], unseen: list[str], login: str, privileged: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"sources": [], "lines": []}
    for name in ("journal", "syslog"):
        step = steps.get(name)
        if step is None:
            continue
        if step.missing:
            unseen.append(f"logs: {step.missing} is not installed")
            continue
        if step.rc not in (0, None) and not step.stdout.strip():
            reason = _first_line(step.stderr) or f"exit status {step.rc}"
            unseen.append(f"logs ({name}): {reason}" + ("" if privileged else f" (ran as {login})"))
            continue
        result["sources"].append(name)
        lines = step.stdout.splitlines()
        if step.truncated and lines:
            lines = lines[1:]  # tail -c may start mid-line
        matching = [ln for ln in lines if any(w in ln.lower() for w in LOG_WORDS)]
        result["lines"].extend(matching[-MAX_LOG_LINES:])
    if not result["sources"]:
        unseen.append("logs: no kernel log, journal or syslog could be read")
    result["lines"] = result["lines"][-MAX_LOG_LINES:]
    return result
