"""Settings reach every command, not only sweep: fleetrst.toml, FLEETRST_* and ansible.cfg give the
defaults of the same flags in ``sweep``, ``investigate``, ``inventory``, ``history`` and ``report``.

The bug this pins: with ``inventory = [...]`` in ./fleetrst.toml, ``fleetrst sweep`` used it and
``fleetrst investigate`` ignored it and investigated localhost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetrst.cli.commands import COMMANDS
from fleetrst.cli.main import apply_settings, build_parser
from fleetrst.settings import SETTINGS, resolve
from tests.helpers import run_cli

# A value for every setting, as fleetrst.toml would give it, and what the flag then holds.
TOML = """\
inventory = ["inv.yml"]
forks = 7
window = "3s"
timeout = "4s"
user = "audit"
private_key = "keys/id"
host_key_checking = "accept-new"
connection = "paramiko"
history = false
db = "hist.sqlite"
rules = "netdata-history"
history_audits = 5
lock_wait = "1m"
textfile = "out.prom"
dask = "tcp://scheduler.example:8786"
inventory_cache = "10m"
keep = "14d"
keep_hourly = "60d"
keep_daily = "365d"
[warn]
resets_sent = 20
[crit]
resets_sent = 90
[interval_warn]
resets_sent = 5
[interval_crit]
resets_sent = 30
"""


def _expected(base: Path) -> dict[str, object]:
    return {
        "inventory": [str(base / "inv.yml")],
        "forks": 7,
        "window": 3.0,
        "timeout": 4.0,
        "user": "audit",
        "private_key": str(base / "keys/id"),
        "host_key_checking": "accept-new",
        "connection": "paramiko",
        "history": False,
        "db": str(base / "hist.sqlite"),
        "rules": "netdata-history",
        "history_audits": 5,
        "lock_wait": 60.0,
        "textfile": str(base / "out.prom"),
        "dask": "tcp://scheduler.example:8786",
        "inventory_cache": 600.0,
        "warn": ["resets_sent=20"],
        "crit": ["resets_sent=90"],
        "keep": 14 * 86400.0,
        "keep_hourly": 60 * 86400.0,
        "keep_daily": 365 * 86400.0,
        "interval_warn": ["resets_sent=5"],
        "interval_crit": ["resets_sent=30"],
    }


def _minimal_argv(command: str) -> list[str]:
    return [command, "--list"] if command == "inventory" else [command]


def test_every_setting_is_the_default_of_its_flag_in_every_command_that_has_it(tmp_path: Path) -> None:
    (tmp_path / "fleetrst.toml").write_text(TOML)
    settings = resolve({}, tmp_path, tmp_path / "home")
    expected = _expected(tmp_path)
    assert set(expected) == {s.name for s in SETTINGS}, "this test names every setting"
    parser, commands = build_parser()
    apply_settings(commands, settings)
    seen: dict[str, set[str]] = {}
    for command in COMMANDS:
        args = parser.parse_args(_minimal_argv(command.name))
        for name, value in expected.items():
            if hasattr(args, name):
                assert getattr(args, name) == value, f"{command.name}: {name}"
                seen.setdefault(command.name, set()).add(name)
    # The settings each command takes: the selection and connection ones wherever hosts are reached.
    reach = {"inventory", "forks", "window", "timeout", "user", "private_key", "host_key_checking"}
    assert reach | {"connection", "warn", "crit"} <= seen["investigate"]
    audits = {"history", "db", "rules", "lock_wait", "keep", "keep_hourly", "keep_daily"}
    assert reach | {"connection", "warn", "crit", "interval_warn", "interval_crit"} | audits <= seen["sweep"]
    assert {"inventory"} <= seen["inventory"]
    assert {"db"} <= seen["history"] and {"db"} <= seen["report"]


def test_the_command_line_still_beats_the_settings(tmp_path: Path) -> None:
    (tmp_path / "fleetrst.toml").write_text(TOML)
    parser, commands = build_parser()
    apply_settings(commands, resolve({}, tmp_path, tmp_path / "home"))
    args = parser.parse_args(["investigate", "-i", "other.yml", "-f", "3", "--window", "1s", "-u", "me"])
    assert (args.inventory, args.forks, args.window, args.user) == (["other.yml"], 3, 1.0, "me")


INVENTORY = """\
all:
  hosts:
    web1:
      ansible_host: 127.0.0.1
      ansible_port: 1
"""


@pytest.mark.parametrize("source", ["fleetrst.toml", "FLEETRST_INVENTORY", "ansible.cfg"])
def test_investigate_reads_the_configured_inventory(
    tmp_path: Path, cli_env: dict[str, str], source: str
) -> None:
    """web1 is 127.0.0.1 port 1, where nothing listens: it is reported refused, by name. Had the
    inventory been ignored, this machine (localhost) would have been investigated instead."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "inv.yml").write_text(INVENTORY)
    if source == "fleetrst.toml":
        (work / "fleetrst.toml").write_text('inventory = ["inv.yml"]\nwindow = "1s"\n')
    elif source == "FLEETRST_INVENTORY":
        cli_env = {**cli_env, "FLEETRST_INVENTORY": "inv.yml", "FLEETRST_WINDOW": "1s"}
    else:
        (work / "ansible.cfg").write_text("[defaults]\ninventory = inv.yml\n")
    proc = run_cli("investigate", "-o", "json", "--capture", "1s", env=cli_env, cwd=work)
    assert proc.returncode == 3, proc.stderr  # UNKNOWN: the one host could not be measured
    doc = json.loads(proc.stdout)
    assert [h["host"] for h in doc["hosts"]] == ["web1"]
    assert doc["hosts"][0]["error"] == "connection refused by 127.0.0.1:1"
    assert doc["inventories"] == [str(work / "inv.yml")]
    if source != "ansible.cfg":
        assert doc["window_s"] == 1.0


def test_inventory_and_history_commands_read_their_settings(tmp_path: Path, cli_env: dict[str, str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "inv.yml").write_text(INVENTORY)
    (work / "fleetrst.toml").write_text('inventory = ["inv.yml"]\ndb = "audits/h.sqlite"\n')
    listed = run_cli("inventory", "--list", env=cli_env, cwd=work)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["_meta"]["hostvars"]["web1"]["ansible_port"] == 1
    history = run_cli("history", env=cli_env, cwd=work)
    assert history.returncode == 64
    assert str(work / "audits/h.sqlite") in history.stderr, "history looked where the settings say"
    report = run_cli("report", env=cli_env, cwd=work)
    assert str(work / "audits/h.sqlite") in report.stderr
