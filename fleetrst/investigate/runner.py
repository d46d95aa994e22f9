"""The investigator the sweep runs: the runbook over the host's open session, within its own deadline.

Implements ``fleetrst.sweep.Investigator``. One remote exec per host; whatever goes wrong (a timeout,
an output cap, garbage) comes back as a finding in the host's investigation, never as an exception.
The pcap the runbook brings back (``--save-pcap DIR``) is written here, from the runbook's output; the
investigation records only the file's path and size.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..model import HostResult, Rates, Target, Verdict
from ..transport.base import Session, TransportError
from .errors import InvestigateParseError

if TYPE_CHECKING:
    from .analyse import HostView
    from .result import Capture, Finding, Investigation
    from .script import Plan

# The runbook's modules (its script, the parsers, the classifier: ~20 ms to import) are imported when a
# host is investigated, not with the investigator: most hosts of most sweeps never trip.

Mode = Literal["auto", "always", "never"]
ABORT_RATES = ("aborts_on_data", "aborts_on_close", "aborts_on_linger", "estab_resets")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def pcap_file_name(host: str) -> str:
    """A file name for a host's capture that cannot leave the directory: inventory names are input.

    Anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``; a leading dot too (no hidden
    files, no ``..``); long names are cut. Distinct hosts that would collide keep distinct names by a
    short hash suffix.
    """
    safe = _SAFE_NAME.sub("_", host)[:100]
    if not safe or safe.startswith("."):
        safe = "_" + safe[1:] if safe else "_"
    if safe != host:
        import hashlib

        safe += "-" + hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return safe + ".pcap"


@dataclass(frozen=True)
class InvestigateOptions:
    mode: Mode = "auto"
    capture_s: float | None = None
    save_pcap_dir: str | None = None
    logs: bool = False
    max_packets: int = 1000
    pcap_max_bytes: int = 256 * 1024
    step_timeout_s: float = 4.0


class RunbookInvestigator:
    """Runs the runbook on hosts that tripped (``auto``), on every host (``always``), or on none."""

    def __init__(self, options: InvestigateOptions) -> None:
        self.options = options
        if options.save_pcap_dir is not None:
            Path(options.save_pcap_dir).mkdir(parents=True, exist_ok=True)

    def wants(self, target: Target, verdict: Verdict) -> bool:
        if self.options.mode == "always":
            return True
        if self.options.mode == "never":
            return False
        return bool(verdict.tripped)

    def plan_for(self, target: Target, rates: Rates) -> tuple[Plan | None, HostView]:
        from .analyse import HostView
        from .script import Plan

        conn = target.connection
        problem: str | None = None
        become_user: str | None = None
        if conn.become:
            if conn.become_method != "sudo":
                problem = f"become method {conn.become_method!r} is not supported (only sudo)"
            elif conn.user is not None and conn.become_user == conn.user:
                become_user = None  # as Ansible: no become to the user we already are
            else:
                become_user = conn.become_user
        aborting = any(rates.per_second.get(n, 0.0) >= 1.0 for n in ABORT_RATES)
        session_port = None if conn.connection == "local" else (conn.port or 22)
        view = HostView(
            conn.user, conn.become, conn.become_user if conn.become else None, problem, session_port
        )
        try:
            plan = Plan(
                capture_s=self.options.capture_s,
                max_packets=self.options.max_packets,
                save_pcap=self.options.save_pcap_dir is not None and self.options.capture_s is not None,
                pcap_max_bytes=self.options.pcap_max_bytes,
                logs=self.options.logs,
                become_user=become_user,
                step_timeout_s=self.options.step_timeout_s,
                samples=10 if aborting else 0,
            )
        except ValueError as exc:
            return None, HostView(
                conn.user, conn.become, conn.become_user, f"cannot use become: {exc}", session_port
            )
        return plan, view

    async def investigate(
        self, session: Session, target: Target, rates: Rates, verdict: Verdict
    ) -> Investigation:
        from .analyse import analyse, failed_investigation
        from .script import Plan, build_script, new_nonce, parse_runbook_output

        started = time.monotonic()
        plan, view = self.plan_for(target, rates)
        if plan is None:  # a become user sudo could not take: run unprivileged, say so
            plan = Plan(
                capture_s=self.options.capture_s,
                logs=self.options.logs,
                step_timeout_s=self.options.step_timeout_s,
            )
        nonce = new_nonce()
        try:
            result = await session.run(
                build_script(plan, nonce), timeout=plan.deadline_s, max_output=plan.max_output
            )
            out = parse_runbook_output(result.stdout, nonce)
        except TransportError as exc:
            found = failed_investigation(exc.message, view, plan)
        except InvestigateParseError as exc:
            found = failed_investigation(str(exc), view, plan)
        else:
            try:
                found = analyse(out, rates.per_second, plan, view)
            except Exception as exc:  # a bug of ours must stay this host's finding
                found = failed_investigation(f"internal error: {type(exc).__name__}: {exc}", view, plan)
            else:
                # the pcap belongs to a capture that was read (one without an error)
                if found.capture is not None and found.capture.error is None and out.pcap_base64 is not None:
                    found = replace(
                        found, capture=self._save_pcap(target.name, found.capture, out.pcap_base64)
                    )
        return replace(found, elapsed_s=round(time.monotonic() - started, 3))

    def _save_pcap(self, host: str, capture: Capture, data64: str) -> Capture:
        """Write the host's pcap under ``--save-pcap DIR``: the capture with its file, or with the error."""
        if self.options.save_pcap_dir is None:
            return capture
        try:
            data = base64.b64decode(data64.replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            return replace(capture, error="the pcap did not come back intact (bad base64)")
        data = data[: self.options.pcap_max_bytes]
        path = Path(self.options.save_pcap_dir) / pcap_file_name(host)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:
            return replace(capture, error=f"could not write {path}: {exc.strerror}")
        return replace(capture, pcap=str(path), pcap_bytes=len(data))

    def fleet_findings(self, results: Sequence[HostResult]) -> list[Finding]:
        if all(h.investigation is None for h in results):
            return []  # what fleet_findings says of hosts none of which was investigated
        from .correlate import fleet_findings

        return fleet_findings(results)
