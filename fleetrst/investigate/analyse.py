"""From the runbook's output to the per-host ``Investigation`` (``result.py``; the JSON
``investigation`` object is written from it by ``fleetrst.render.schema``).

Pure: the framed output, the rates and what was asked go in; an ``Investigation`` comes out. A step
that failed, was refused or is missing becomes a line in ``unseen`` or ``errors``, never an exception.
The pcap the runbook brought back stays in ``RunbookOutput.pcap_base64``: the runner writes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..units import ascii_digits
from .bsd import parse_netstat_an, parse_netstat_listen, parse_sockstat, with_owners
from .classify import Cause, Facts, ListenerFact, RstSeen, classify
from .errors import InvestigateParseError
from .lsof import LsofRow, parse_lsof
from .result import (
    Become,
    Capture,
    Context,
    Flow,
    Investigation,
    Listener,
    Logs,
    PortCount,
    Process,
    ProcessRef,
    StatePorts,
    Top,
)
from .script import Plan, RunbookOutput, StepOutput
from .ss import Owner, SocketRow, parse_ss
from .tcpdump import orient_rst, parse_tcpdump, summarise_rsts

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
# FreeBSD's tunables that mean what a Linux one the classifier reads means (listen backlog cap, cookies)
_FREEBSD_AS_LINUX = {
    "kern.ipc.soacceptqueue": "somaxconn",
    "kern.ipc.somaxconn": "somaxconn",
    "net.inet.tcp.syncookies": "tcp_syncookies",
}


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


def analyse(out: RunbookOutput, rates: Mapping[str, float], plan: Plan, view: HostView) -> Investigation:
    """The investigation of one host."""
    unseen: list[str] = []
    errors: list[str] = []
    steps = out.steps
    context_step = steps.get("context")
    context = _context(context_step.stdout if context_step else "")
    login = context.login_user or view.login_user or "the login user"
    context = replace(context, login_user=login)
    root = login == "root"

    # --- become -------------------------------------------------------------------------------
    sudo_errors = {s.sudo_error for s in steps.values() if s.sudo_error}
    become_error: str | None = None
    if view.become_problem:
        become_error = view.become_problem
        unseen.append(f"privileged steps ran as {login}: {view.become_problem}")
    elif sudo_errors:
        said = sorted(sudo_errors)[0].splitlines()[0]
        if "password is required" in said:
            become_error = f"sudo needs a password (sudo -n never prompts): {said}"
        else:
            become_error = f"sudo refused: {said}"
        unseen.append(f"{become_error}; the privileged steps ran as {login} instead")
    become = Become(
        requested=view.become_requested,
        user=view.become_user,
        ok=bool(view.become_requested and view.become_user and not sudo_errors and not view.become_problem),
        error=become_error,
    )
    privileged = root or become.ok

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

    netstat_step = steps.get("netstat")
    if netstat_step is not None:  # FreeBSD: netstat's states and queues, sockstat's owners
        rows, listener_rows = _freebsd_sockets(steps, errors, unseen)
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
    if netstat_step is not None and not privileged and not any_owner and rows:
        # FreeBSD's sockstat shows every user's sockets unless security.bsd.see_other_uids=0
        unseen.append(f"process owners: sockstat named none as {login} (security.bsd.see_other_uids=0?)")
    elif not privileged and (ss_step is not None or lsof_step is not None):
        unseen.append(
            f"owners of other users' sockets: ss/lsof ran as {login}, not root"
            + ("" if view.become_requested else " (use -b/--become to run them through sudo -n)")
        )
    elif not any_owner and rows:
        tools = "sockstat named none" if netstat_step is not None else "neither ss -p nor lsof named any"
        unseen.append(f"process owners: {tools}")

    states = Counter(r.state for r in rows)
    # ss's LISTEN rows hold the accept queue; FreeBSD netstat -an's hold buffer bytes: netstat -L only
    fallback = [] if netstat_step is not None else [r for r in rows if r.state == "LISTEN"]
    listeners = _listeners(listener_rows or fallback, owners_by_port)
    socket_tuples = [
        (r.state, r.local.port or 0, r.peer.address, r.peer.port or 0) for r in [*rows, *sample_rows]
    ]

    # --- capture -------------------------------------------------------------------------------
    capture: Capture | None = None
    rsts: list[RstSeen] | None = None
    if plan.capture_s:
        capture, rsts = _capture(out, plan, plan.capture_s, login, view, unseen, errors, owners_by_port)

    # --- logs ----------------------------------------------------------------------------------
    logs: Logs | None = None
    if plan.logs:
        logs = _logs(steps, unseen, login, privileged)

    # --- causes --------------------------------------------------------------------------------
    mem = context.tcp_mem_pages
    facts = Facts(
        states=dict(states),
        listeners=listeners,
        sockets=socket_tuples,
        owners=owners_by_port,
        rsts=rsts,
        sysctls=context.sysctls or {},
        tcp_mem_pages=(mem[0], mem[1], mem[2]) if mem is not None and len(mem) == 3 else None,
        tcp_mem_used_pages=context.tcp_mem_used_pages,
        orphans=context.orphans,
        session_port=view.session_port,
    )
    causes = classify(rates, facts)

    processes: dict[ProcessRef, None] = {}
    for cause in causes:
        for o in cause.processes:
            processes[ProcessRef(o.pid, o.command, cause.port)] = None
    for lf in listeners:
        for o in lf.owners:
            processes.setdefault(ProcessRef(o.pid, o.command, lf.port), None)
    if capture is not None:
        for flow in capture.flows:
            for p in flow.processes or ():
                processes.setdefault(ProcessRef(p.pid, p.command, flow.local_port), None)

    top = _top_ports(rows)
    stuck = Counter(
        str(r.peer) for r in rows if r.state == "SYN-SENT" and not r.peer.address.startswith(("127.", "::1"))
    )
    if not out.complete:
        errors.append("the runbook did not finish (cut short by its deadline or output cap)")
    if out.fatal:
        errors.append(out.fatal)
    return Investigation(
        causes=tuple(c.as_result() for c in causes),
        top=_headline(causes),
        processes=tuple(processes),
        states=dict(sorted(states.items())),
        sockets_seen=len(rows),
        top_ports=top,
        stuck_peers=dict(stuck.most_common(5)),
        listeners=tuple(
            Listener(lf.address, lf.port, lf.queue, lf.backlog, _processes(lf.owners)) for lf in listeners
        ),
        capture=capture,
        context=context,
        logs=logs,
        become=become,
        privileged=privileged,
        unseen=tuple(unseen),
        errors=tuple(errors),
    )


def failed_investigation(message: str, view: HostView, plan: Plan) -> Investigation:
    """When the runbook could not run at all (the exec failed or timed out): a finding, not an error.

    An investigation that saw nothing (the defaults), saying why.
    """
    return Investigation(
        become=Become(view.become_requested, view.become_user, False, view.become_problem),
        unseen=("everything: the runbook did not run (" + message + ")",),
        errors=(message,),
    )


def _freebsd_sockets(
    steps: Mapping[str, StepOutput], errors: list[str], unseen: list[str]
) -> tuple[list[SocketRow], list[SocketRow]]:
    """FreeBSD's sockets: ``netstat -an -p tcp`` (states, queues), owners from ``sockstat``, listen
    queues from ``netstat -Lan`` (qlen as Recv-Q, maxqlen as Send-Q, as ``ss -tln`` shows them)."""
    rows: list[SocketRow] = []
    listeners: list[SocketRow] = []
    netstat = steps["netstat"]
    if netstat.missing is None:
        rows = _parsed(netstat, parse_netstat_an, errors) or []
        if netstat.truncated:
            unseen.append(
                f"netstat printed more than {netstat.cap // 1024} KiB: "
                "states counted over the first part only"
            )
    else:
        unseen.append("socket states: netstat is not installed")
    sockstat = steps.get("sockstat")
    if sockstat is not None and sockstat.missing is None:
        rows = with_owners(rows, _parsed(sockstat, parse_sockstat, errors) or [])
    elif sockstat is not None:
        unseen.append("process owners: sockstat is not installed")
    queues = steps.get("netstat-listen")
    if queues is not None and queues.missing is None:
        listeners = _parsed(queues, parse_netstat_listen, errors) or []
    return rows, listeners


def _processes(owners: tuple[Owner, ...]) -> tuple[Process, ...]:
    return tuple(Process(o.pid, o.command) for o in owners)


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


def _top_ports(rows: list[SocketRow], per_state: int = 3) -> tuple[StatePorts, ...]:
    out: list[StatePorts] = []
    for state in TROUBLED_STATES:
        in_state = [r for r in rows if r.state == state]
        if not in_state:
            continue
        local = Counter(r.local.port for r in in_state if r.local.port is not None)
        peer = Counter(r.peer.port for r in in_state if r.peer.port is not None)
        out.append(
            StatePorts(
                state,
                len(in_state),
                tuple(PortCount(p, n) for p, n in local.most_common(per_state)),
                tuple(PortCount(p, n) for p, n in peer.most_common(per_state)),
            )
        )
    return tuple(out)


def _headline(causes: list[Cause]) -> Top | None:
    """The table's TOP PORT/PROCESS for the host: what the first cause's own evidence points at.

    A local port this host serves (and the process that owns it), or the peer ``address:port`` that
    resets it; None when that evidence names nothing (an unrelated port, such as a client's ephemeral
    one, is never put in its place).
    """
    top = causes[0].top if causes else None
    if top is None:
        return None
    owner = top.processes[0] if top.processes else None
    return Top(
        port=top.port,
        peer=top.peer,
        pid=owner.pid if owner else None,
        command=owner.command if owner else None,
        why=f"{causes[0].cause}: {top.why}",
    )


def _context(text: str) -> Context:
    """The context step's lines; ``login_user`` is the user the host said it ran as (None: unsaid)."""
    context: dict[str, Any] = {}
    sysctls: dict[str, str] = {}
    login: str | None = None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        try:
            if key == "/proc/loadavg":
                context["loadavg"] = tuple(float(v) for v in value.split()[:3])
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
                        if name in pairs and ascii_digits(pairs[name]):
                            context[field_name] = int(pairs[name])
            elif key == "/proc/sys/net/ipv4/tcp_mem":
                context["tcp_mem_pages"] = tuple(int(v) for v in value.split()[:3])
            elif key in ("MemTotal:", "MemAvailable:"):
                context["mem_total_kib" if key == "MemTotal:" else "mem_available_kib"] = int(
                    value.split()[0]
                )
            elif key == "user":
                login = value or None
            elif key == "sysctl":  # FreeBSD's, as `sysctl NAME: VALUE`
                name, _, said = value.partition(":")
                name = name.strip()
                said = " ".join(said.split())
                sysctls[name] = said
                if name in _FREEBSD_AS_LINUX:
                    sysctls.setdefault(_FREEBSD_AS_LINUX[name], said)
            elif key.startswith("/proc/sys/"):
                sysctls[key.rsplit("/", 1)[-1]] = " ".join(value.split())
        except (ValueError, IndexError):
            continue  # a value that is not what the kernel prints: left out, not fatal
    return Context(**context, sysctls=sysctls, login_user=login)


def _capture(
    out: RunbookOutput,
    plan: Plan,
    duration_s: float,
    login: str,
    view: HostView,
    unseen: list[str],
    errors: list[str],
    owners: Mapping[int, tuple[Owner, ...]],
) -> tuple[Capture, list[RstSeen] | None]:
    """The capture as read (its ``error`` None), or why there is none; and the RSTs it saw, exactly.

    The pcap itself is not part of it: the runner writes ``out.pcap_base64`` for a capture that was read.
    """
    none = Capture(duration_s, plan.max_packets)
    step = out.steps.get("capture")
    if step is None:
        why = "the capture did not report back (the runbook was cut short)"
        unseen.append("RST capture: " + why)
        return replace(none, error=why), None
    if step.missing:
        unseen.append("RST capture: tcpdump is not installed on the host")
        return replace(none, error="tcpdump is not installed"), None
    stderr = step.stderr
    text_step = out.steps.get("capture-text")
    if step.bytes == 0 or text_step is None:
        lower = stderr.lower()
        if "permission" in lower or "not permitted" in lower:
            why = f"tcpdump is not permitted for {login} (it needs root"
            why += ": sudo refused)" if view.become_requested else ": use -b/--become)"
        else:
            why = "tcpdump failed: " + (_first_line(stderr) or f"exit status {step.rc}")
        unseen.append("RST capture: " + why)
        return replace(none, error=why), None
    try:
        capture = parse_tcpdump(
            text_step.stdout if not text_step.truncated else text_step.stdout[: text_step.stdout.rfind("\n")]
        )
        stats = parse_tcpdump("\n".join(ln for ln in stderr.splitlines() if "packet" in ln))
    except InvestigateParseError as exc:
        errors.append(f"capture: {exc}")
        return replace(none, error=str(exc)), None
    if len(capture.segments) >= plan.max_packets:
        unseen.append(f"RST capture: stopped at {plan.max_packets} packets before {duration_s:g}s")
    local_addresses = frozenset({"127.0.0.1", "::1"})
    flows = tuple(
        Flow(
            direction=flow.direction,
            local_port=flow.local_port,
            peer=flow.peer,
            count=flow.count,
            ports=flow.spread if flow.spread > 1 else None,
            processes=(
                _processes(owners[flow.local_port])
                if flow.local_port is not None and flow.local_port in owners
                else None
            ),
        )
        for flow in summarise_rsts(capture.segments, local_addresses)
    )
    exact: Counter[tuple[str, int, str, int]] = Counter()

    for seg in capture.segments:
        if seg.is_rst:
            direction, lport, peer = orient_rst(seg, local_addresses)
            exact[(direction, lport, peer.address, peer.port or 0)] += 1
    rsts = [RstSeen(d, lp, pa, pp, n) for (d, lp, pa, pp), n in exact.items()]
    if out.pcap_base64 is None and plan.save_pcap:
        pcap = out.steps.get("pcap")
        unseen.append(
            "pcap file: " + ("base64 is not installed" if pcap and pcap.missing else "not brought back")
        )
    read = replace(
        none, packets=len(capture.segments), dropped=stats.counts.get("dropped by kernel"), flows=flows
    )
    return read, rsts


def _logs(steps: Mapping[str, StepOutput], unseen: list[str], login: str, privileged: bool) -> Logs:
    sources: list[str] = []
    found: list[str] = []
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
        sources.append(name)
        lines = step.stdout.splitlines()
        if step.truncated and lines:
            lines = lines[1:]  # tail -c may start mid-line
        matching = [ln for ln in lines if any(w in ln.lower() for w in LOG_WORDS)]
        found.extend(matching[-MAX_LOG_LINES:])
    if not sources:
        unseen.append("logs: no kernel log, journal or syslog could be read")
    return Logs(tuple(sources), tuple(found[-MAX_LOG_LINES:]))
