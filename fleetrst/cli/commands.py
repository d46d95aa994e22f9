"""The one table of commands: name, module, and the one line ``fleetrst --help`` shows for it.

Each module ``fleetrst.cli.<module>`` defines ``DESCRIPTION`` (and optionally ``EPILOG``),
``add_arguments(parser)`` and ``run(args, context) -> int``. A new command is a new module and a new
row here; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command("sweep", "sweep", "read every selected host's TCP counters twice and print one fleet table"),
    Command("watch", "watch", "watch the selected hosts continuously: Netdata's reset alarms, live"),
    Command(
        "inventory", "inventory", "show an inventory as Ansible sees it (same output as ansible-inventory)"
    ),
    Command(
        "investigate",
        "investigate",
        "run the full troubleshooting runbook (capture included) on the selected hosts",
    ),
    Command(
        "history",
        "history",
        "per-host trends from recorded sweeps: min, median, max, last, audits tripped "
        "(--events: what the watch recorded)",
    ),
    Command("report", "report", "top offenders, new offenders since the previous audit, recovered hosts"),
    Command("config", "config", "show the effective settings and where each came from"),
)
