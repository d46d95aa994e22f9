"""The reset generators: small stand-alone scripts, each named after its role.

Each script is run as ``python3 -I -S <script> ...`` inside one host's network namespace (by
:class:`fleetrst.testing.TestFleet`), uses only the standard library, sets its process name
(``/proc/self/comm``) to its role so that ``ss -p``, ``lsof`` and ``ps`` show who it is, talks only to
``127.0.0.1`` inside its namespace, is bounded in time (``--duration``, at most one hour) and in count,
prints one ``READY {json}`` line once it runs and one ``DONE {json}`` line when it ends.
"""

from __future__ import annotations

from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parent

#: role -> (script file, process name as the kernel shows it; at most 15 characters)
ROLES: dict[str, tuple[str, str]] = {
    "closed-port-storm": ("closed_port_storm.py", "rst-storm"),
    "aborting-server": ("aborting_server.py", "aborting-server"),
    "aborting-client": ("aborting_client.py", "abort-client"),
    "stuck-listener": ("stuck_listener.py", "stuck-listener"),
    "listen-flooder": ("listen_flooder.py", "listen-flooder"),
}

MAX_DURATION_S = 3600.0


def script_path(role: str) -> Path:
    return SCRIPTS_DIR / ROLES[role][0]
