"""``fleetrst watch`` as a command: its flags, its keys, and a whole run over the local connection inside
a network namespace of its own (real counters, real resets, no SSH), with events in the history."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fleetrst.cli.watch import _Keys, parse_listen
from fleetrst.errors import UsageError
from tests.helpers import run_cli

INVENTORY = """\
all:
  children:
    web:
      hosts:
        web1: {ansible_host: 127.0.0.1, ansible_port: 1}
        web2: {ansible_host: 127.0.0.1, ansible_port: 1}
"""


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9477") == ("127.0.0.1", 9477)
    assert parse_listen(":9477") == ("0.0.0.0", 9477)
    assert parse_listen("[::1]:9477") == ("::1", 9477)
    for bad in ("9477", "localhost:", "a:b", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="expected ADDR:PORT"):
            parse_listen(bad)


def test_the_keys_sort_filter_toggle_and_quit() -> None:
    quit: list[bool] = []
    keys = _Keys(lambda: quit.append(True))
    keys.press("s")
    assert keys.state.sort == "host"
    keys.press("ssss")
    assert keys.state.sort == "worst", "s cycles through the orders"
    keys.press("/web\x7fb1\r")
    assert (keys.state.filter, keys.state.editing) == ("web1", False), "typed, backspace, Enter"
    keys.press("/x\x1b")
    assert (keys.state.filter, keys.state.editing) == ("", False), "Esc clears"
    keys.press("\x1b[A")  # an arrow key: nothing
    keys.press("p")
    assert keys.state.problems_only
    assert not quit
    keys.press("q")
    assert quit == [True]


def test_list_hosts_and_usage_errors(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "inv.yml").write_text(INVENTORY)
    listed = run_cli("watch", "-i", "inv.yml", "web", "--list-hosts", env=cli_env, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.split() == ["hosts", "(2):", "web1", "web2"]
    bad = run_cli("watch", "-i", "inv.yml", "--listen", "nowhere", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 64 and "--listen 'nowhere': expected ADDR:PORT" in bad.stderr
    bad = run_cli("watch", "-i", "inv.yml", "--every", "0s", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 64
    none = run_cli("watch", "-i", "inv.yml", "db", env=cli_env, cwd=tmp_path)
    assert none.returncode == 64 and "matches no host" in none.stderr


def test_unreachable_hosts_are_lost_once_each_and_the_watch_exits_unknown(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "inv.yml").write_text(INVENTORY)
    proc = run_cli(
        "watch",
        "-i",
        "inv.yml",
        "--every",
        "1s",
        "--duration",
        "2s",
        "--no-history",
        env=cli_env,
        cwd=tmp_path,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 3, proc.stderr
    assert [(e["event"], e["host"], e["error"]) for e in events] == [
        ("lost", "web1", "connection refused by 127.0.0.1:1"),
        ("lost", "web2", "connection refused by 127.0.0.1:1"),
    ], "one event each, however often they are retried"


STORM = """
import socket, time
end = time.monotonic() + 2
while time.monotonic() < end:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 1))
    except OSError:
        pass
    s.close()
    time.sleep(0.004)
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare and ip (a network namespace of its own)",
)
def test_a_whole_watch_of_this_machine_in_a_namespace_of_its_own(tmp_path: Path) -> None:
    """No inventory: the watch watches this machine over the local connection. Inside a new network
    namespace its counters are its own: quiet, then a storm of refused connects after 1.5 s, raised
    and investigated."""
    db = tmp_path / "history.sqlite"
    watch = (
        f"{sys.executable} -m fleetrst.cli watch --every 0.5s --duration 5s --crit resets_sent=20 "
        f"--crit resets_received=20 --db {db}"
    )
    script = f"ip link set lo up && ( sleep 1.5; {sys.executable} -c '{STORM}' ) & exec {watch}"
    proc = subprocess.run(
        ["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr, events)  # critical when it ended
    assert {(e["event"], e["host"], e["metric"], e["level"]) for e in events} == {
        ("raised", "localhost", "resets_sent", "critical"),
        ("raised", "localhost", "resets_received", "critical"),
        ("investigated", "localhost", "resets_received", "critical"),  # the worst of what raised it
    }
    # The raised alarms were investigated over the same (local) connection: the storm's closed port.
    [found] = [e for e in events if e["event"] == "investigated"]
    assert (found["cause"], found["error"]) == ("closed_port", None), found
    assert {t["metric"] for t in found["triggers"]} == {"resets_sent", "resets_received"}
    assert found["investigation"]["causes"][0]["cause"] == "closed_port"
    with sqlite3.connect(db) as history:
        recorded = history.execute("SELECT event, host, metric, cause FROM events ORDER BY ts").fetchall()
    assert sorted(recorded, key=str) == sorted(
        ((e["event"], e["host"], e["metric"], e["cause"]) for e in events), key=str
    )
