"""A script or plugin config that fails gets one clear line naming it and what went wrong, exit 64:
a failing script (its exit status and the last line of its standard error), one that prints garbage,
one that hangs, one whose interpreter is missing, JSON that is not an inventory, a plugin config
without ansible-core; and a script is run without a shell, bounded, and stopped with what it started.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetrst.cli import options
from fleetrst.cli.main import main
from fleetrst.inventory import ConnectionDefaults, InventoryError, LoadOptions, load_inventory


def _script(tmp_path: Path, name: str, body: str, shebang: str = "#!/bin/sh") -> str:
    path = tmp_path / name
    path.write_text(f"{shebang}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _fleetrst(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def _one_line_exit_64(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 64, proc
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("fleetrst: error: "), proc.stderr
    return proc.stderr.removeprefix("fleetrst: error: ").rstrip("\n")


@pytest.mark.parametrize("command", [["inventory", "--list"], ["sweep", "--list-hosts"]])
def test_a_failing_script_names_itself_its_exit_status_and_its_last_words(
    tmp_path: Path, command: list[str]
) -> None:
    script = _script(
        tmp_path, "ec2.sh", "echo 'connecting...' >&2\necho 'boom: no credentials' >&2\nexit 3\n"
    )
    line = _one_line_exit_64(_fleetrst(command[0], "-i", script, *command[1:]))
    assert line == f"{script}: inventory script --list failed with exit status 3: boom: no credentials"


def test_a_script_that_prints_garbage(tmp_path: Path) -> None:
    script = _script(tmp_path, "garbage.sh", "echo 'Traceback (most recent call last):'\necho '  oops'\n")
    line = _one_line_exit_64(_fleetrst("inventory", "-i", script, "--list"))
    assert line == (
        f"{script}: inventory script --list printed invalid JSON at line 1 column 1: Expecting value; "
        "it begins 'Traceback (most recent call last):' (42 bytes)"
    )


def test_a_script_that_prints_json_that_is_not_an_inventory(tmp_path: Path) -> None:
    script = _script(tmp_path, "wrong.sh", """echo '{"web": {"hosts": "w1"}, "_meta": {"hostvars": {}}}'\n""")
    line = _one_line_exit_64(_fleetrst("inventory", "-i", script, "--list"))
    assert line == (
        f"{script}: inventory script --list printed JSON that is not an inventory: "
        "'web.hosts' is the text 'w1', not a list of names"
    )
    listed = _script(tmp_path, "list.sh", "echo '[1, 2]'\n")
    line = _one_line_exit_64(_fleetrst("inventory", "-i", listed, "--list"))
    assert line.endswith("printed JSON that is not an inventory: the JSON is a list, not an object of groups")


def test_a_script_whose_interpreter_is_missing(tmp_path: Path) -> None:
    script = _script(tmp_path, "inventory.php", "<?php echo '{}';\n", shebang="#!/nonexistent/bin/php")
    line = _one_line_exit_64(_fleetrst("inventory", "-i", script, "--list"))
    assert line == (
        f"{script}: inventory script --list: cannot run it: "
        "its interpreter /nonexistent/bin/php is not installed"
    )


def test_a_script_that_fails_for_one_host(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "old.sh",
        'if [ "$1" = --list ]; then echo \'{"g": ["a", "b"]}\'; '
        'elif [ "$2" = b ]; then echo "no such host" >&2; exit 1; else echo "{}"; fi\n',
    )
    line = _one_line_exit_64(_fleetrst("inventory", "-i", script, "--list"))
    assert line == f"{script}: inventory script --host b failed with exit status 1: no such host"


def test_a_script_that_hangs_is_stopped_at_its_deadline_with_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    child_pid = tmp_path / "child.pid"
    script = _script(tmp_path, "hang.sh", f"sleep 300 &\necho $! > {child_pid}\nwait\n")
    monkeypatch.setattr(options, "inventory_load_options", lambda args: LoadOptions(script_timeout=1.0))
    started = time.monotonic()
    assert main(["inventory", "-i", script, "--list"]) == 64
    assert time.monotonic() - started < 10
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err == f"fleetrst: error: {script}: inventory script --list: did not finish within 1s (stopped)\n"
    )
    pid = int(child_pid.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the script's child {pid} outlived the deadline")


def test_a_script_that_leaves_a_child_holding_its_output_is_not_waited_for(tmp_path: Path) -> None:
    script = _script(tmp_path, "daemon.sh", 'sleep 8 &\necho \'{"g": ["a"], "_meta": {"hostvars": {}}}\'\n')
    started = time.monotonic()
    inv = load_inventory([script], LoadOptions(script_timeout=30))
    assert inv.select("all") == ["a"]
    assert time.monotonic() - started < 4


def test_a_script_runs_without_a_shell_and_reads_no_input(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    args_file = tmp_path / "args"
    script = _script(
        tmp_path,
        "args.sh",
        f'printf "%s\\n" "$@" >> {args_file}\n'
        'if [ "$1" = --list ]; then read -r line; echo \'{"g": ["x; touch ' + str(marker) + "\"]}'; "
        "else echo '{}'; fi\n",
    )
    inv = load_inventory([script], LoadOptions(stdin=io.BytesIO(b"")))
    assert inv.select("all") == [f"x; touch {marker}"]
    assert not marker.exists()
    assert args_file.read_text().splitlines() == ["--list", "--host", f"x; touch {marker}"]


def test_stdin_is_read_once_and_a_constructed_config_needs_readable_sources(tmp_path: Path) -> None:
    doc = b'{"g": ["a"], "_meta": {"hostvars": {}}}'
    with pytest.raises(InventoryError, match=r"standard input \(-i -\) can be read only once"):
        load_inventory(["-", "-"], LoadOptions(stdin=io.BytesIO(doc)))
    config = tmp_path / "constructed.yml"
    config.write_text("plugin: constructed\ngroups:\n  any: true\n")
    with pytest.raises(InventoryError, match=r"cannot read <stdin>"):
        load_inventory(["-", str(config)], LoadOptions(stdin=io.BytesIO(doc), cache_ttl=0))


def test_a_vault_value_fleetrst_needs_fails_closed(tmp_path: Path) -> None:
    saved = tmp_path / "export.json"
    vault = {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162"}
    doc = {
        "g": {"hosts": ["a", "b"], "vars": {"ansible_become_password": vault}},
        "_meta": {"hostvars": {"b": {"ansible_become_password": "plain", "other": vault}}},
    }
    saved.write_text(json.dumps(doc))
    inv = load_inventory([str(saved)])
    a, b = inv.targets(["a", "b"], ConnectionDefaults())
    assert a.error == (
        "host a: ansible_become_password is vault-encrypted; fleetrst cannot decrypt vault values"
    )
    assert b.error is None and b.connection.become_password == "plain"  # a vault value it does not need


def test_an_unreadable_plugin_config_names_ansible_inventory_s_reason(tmp_path: Path) -> None:
    config = tmp_path / "broken.yml"
    config.write_text("plugin: ansible.builtin.constructed\nkeyed_groups: 12\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    line = _one_line_exit_64(_fleetrst("inventory", "-i", str(config), "--list", env=env))
    assert line.startswith(f"{config}: ansible-inventory cannot read it: ")


def test_toml_output_without_tomli_w_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tomli_w", None)  # as if it were not installed
    corpus = Path(__file__).parent / "corpus" / "yaml_basic" / "hosts.yml"
    assert main(["inventory", "-i", str(corpus), "--list", "--toml"]) == 64
    assert capsys.readouterr().err == (
        "fleetrst: error: --toml needs the Python library tomli-w, as ansible-inventory does: "
        "pip install tomli-w\n"
    )
