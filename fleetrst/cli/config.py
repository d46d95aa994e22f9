"""``fleetrst config``: the effective settings and where each came from."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..settings import SETTINGS, default_history_path
from ..units import format_duration
from .context import Context

DESCRIPTION = (
    "Show the settings fleetrst.toml, FLEETRST_* variables, ANSIBLE_* variables and ansible.cfg give, "
    "and where each came from. They are the defaults of every command's flags (sweep, investigate, "
    "inventory, history, report); command-line flags beat all of them."
)

# What a setting left unset means.
_UNSET_MEANS = {
    "inventory": "(none: this machine, local connection)",
    "user": "(~/.ssh/config, else the login name)",
    "private_key": "(~/.ssh/config, ssh-agent, ~/.ssh/id_*)",
    "host_key_checking": "yes",
    "connection": "ssh",
    "textfile": "(none)",
    "forks": "(every host)",
    "dask": "(none: sweep here)",
}


# Settings whose value is a duration: shown as one (30d, not 2592000.0).
DURATIONS = ("window", "timeout", "lock_wait", "keep", "keep_hourly", "keep_daily", "inventory_cache")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if value is None:
        return "-"
    return str(value)


def run(args: argparse.Namespace, context: Context) -> int:
    from tabulate import tabulate

    resolved = context.settings
    rows: list[dict[str, Any]] = []
    for setting in SETTINGS:
        if setting.name in resolved.values:
            v = resolved.values[setting.name]
            value, source = v.value, v.source
        elif setting.name == "db":
            value = str(default_history_path())
            source = "default ($XDG_STATE_HOME/fleetrst/history.sqlite)"
        else:
            value, source = context.builtin.get(setting.name), "default"
            value = _UNSET_MEANS.get(setting.name, value) if value is None else value
        if setting.name in DURATIONS and isinstance(value, float):
            value = format_duration(value) if value else "0"
        rows.append({"setting": setting.name, "value": value, "from": source, "about": setting.help})
    if args.output == "json":
        sys.stdout.write(json.dumps({"settings": rows, "files": resolved.files}, indent=2) + "\n")
        return 0
    table = tabulate(
        [[r["setting"], _show(r["value"]), r["from"]] for r in rows],
        headers=["SETTING", "VALUE", "FROM"],
        disable_numparse=True,
    )
    files = ", ".join(resolved.files) or "none"
    sys.stdout.write(f"{table}\nfiles read: {files}\ncommand-line flags beat all of these\n")
    return 0
