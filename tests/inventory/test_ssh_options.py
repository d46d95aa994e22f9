"""Reaching hosts as Ansible does: ``ProxyCommand`` from ``ansible_ssh_common_args`` and
``ansible_ssh_extra_args`` becomes the argument list the transport runs (no shell), and every ssh
option fleetrst does not honour is named once on stderr with the host or group it came from."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetrst.inventory import ConnectionDefaults, load_inventory
from fleetrst.inventory.connection import parse_ssh_args
from fleetrst.model import Target


def _targets(tmp_path: Path, text: str, name: str = "hosts.yml") -> dict[str, Target]:
    path = tmp_path / name
    path.write_text(text)
    inv = load_inventory([str(path)])
    return {t.name: t for t in inv.targets(inv.select("all"), ConnectionDefaults())}


def test_proxy_command_from_common_or_extra_args_as_bastions_and_aws_ssm_write_it(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        r"""
all:
  hosts:
    bastioned:
      ansible_host: 10.0.0.5
      ansible_port: 2222
      ansible_user: ops
      ansible_ssh_common_args: '-o ProxyCommand="ssh -W %h:%p -q jump@bastion.example.com"'
    ssm:
      ansible_host: i-0abc123
      ansible_ssh_extra_args: >-
        -o ProxyCommand="sh -c \"aws ssm start-session --target %h
        --document-name AWS-StartSSHSession --parameters 'portNumber=%p'\""
    tokens:
      ansible_ssh_common_args: -o 'ProxyCommand ssh -l %r -W %n:%p%% ~/bastion'
    plain:
""",
    )
    assert targets["bastioned"].connection.proxy_command == (
        "ssh", "-W", "10.0.0.5:2222", "-q", "jump@bastion.example.com",
    )  # fmt: skip
    assert targets["bastioned"].connection.proxy_jump is None
    assert targets["ssm"].connection.proxy_command == (
        "sh",
        "-c",
        "aws ssm start-session --target i-0abc123 --document-name AWS-StartSSHSession "
        "--parameters 'portNumber=22'",
    )
    home = os.path.expanduser("~")
    assert targets["tokens"].connection.proxy_command == (
        "ssh", "-l", getpass.getuser(), "-W", "tokens:22%", f"{home}/bastion",
    )  # fmt: skip
    assert targets["plain"].connection.proxy_command == ()
    assert all(t.error is None for t in targets.values())


def test_the_first_of_proxy_jump_and_proxy_command_wins_as_in_openssh(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        """
all:
  hosts:
    jump-first:
      ansible_ssh_common_args: -J j1 -o ProxyCommand="ssh -W %h:%p b"
    command-first:
      ansible_ssh_common_args: -o ProxyCommand="ssh -W %h:%p b"
      ansible_ssh_extra_args: -J j1
    none:
      ansible_ssh_common_args: -o ProxyCommand=none -J j1
    local:
      ansible_connection: local
      ansible_ssh_common_args: -o ProxyCommand="ssh -W %h:%p b"
""",
    )
    assert targets["jump-first"].connection.proxy_jump == "j1"
    assert targets["jump-first"].connection.proxy_command == ()
    assert targets["command-first"].connection.proxy_command[:2] == ("ssh", "-W")
    assert targets["command-first"].connection.proxy_jump is None
    assert targets["none"].connection.proxy_command == () and targets["none"].connection.proxy_jump is None
    assert targets["local"].connection.proxy_command == ()


def test_nothing_from_the_inventory_reaches_the_proxy_command_as_an_option_or_shell_text(
    tmp_path: Path,
) -> None:
    targets = _targets(
        tmp_path,
        """
all:
  vars:
    ansible_ssh_common_args: -o ProxyCommand="sh -c 'nc %h %p'"
  hosts:
    semicolon:
      ansible_host: "x;touch /tmp/pwned"
    option:
      ansible_host: "-oProxyCommand=evil"
    user:
      ansible_user: "$(id)"
      ansible_ssh_common_args: -o ProxyCommand="ssh -l %r -W %h:%p b"
    unknown-token:
      ansible_ssh_common_args: -o ProxyCommand="ssh -W %C b"
    missing-program:
      ansible_ssh_common_args: -o ProxyCommand="no-such-proxy-program %h %p"
    fine:
      ansible_host: "fe80::1%eth0"
""",
    )
    assert targets["semicolon"].error == (
        "host semicolon: ProxyCommand: the host address 'x;touch /tmp/pwned' is not a plain name, so it is "
        "not passed to the proxy command"
    )
    assert "the host address '-oProxyCommand=evil' is not a plain name" in (targets["option"].error or "")
    assert "the user '$(id)' is not a plain name" in (targets["user"].error or "")
    assert targets["unknown-token"].error == (
        "host unknown-token: ProxyCommand token %C is not supported (only %h, %p, %r, %n and %%)"
    )
    assert targets["missing-program"].error == (
        "host missing-program: ProxyCommand program 'no-such-proxy-program' is not found "
        "(not on PATH, or not executable)"
    )
    assert targets["fine"].connection.proxy_command == ("sh", "-c", "nc fe80::1%eth0 22")


def test_unhonoured_ssh_options_are_named_as_written() -> None:
    parsed = parse_ssh_args(
        ["-C", "-o", "ControlMaster=auto", "-oControlPersist=60s", "-F", "/etc/ssh.cfg", "-vq", "-p", "22",
         "-o", "ProxyCommand=ssh -W %h:%p b", "stray"]
    )  # fmt: skip
    assert parsed.ignored == (
        "-C", "-o ControlMaster=auto", "-o ControlPersist=60s", "-F /etc/ssh.cfg", "-v", "-q", "stray",
    )  # fmt: skip
    assert parsed.options["port"] == "22" and parsed.proxy == ("proxycommand", "ssh -W %h:%p b")
    # "Key Value": an "=" in the value belongs to the value (found by the fleet test, not by reading)
    spaced = parse_ssh_args(["-o", "ProxyCommand ssh -o UserKnownHostsFile=/k -W %h:%p b"])
    assert spaced.proxy == ("proxycommand", "ssh -o UserKnownHostsFile=/k -W %h:%p b")
    assert parse_ssh_args(["-o", "User = deploy"]).options == {"user": "deploy"}


def test_each_unhonoured_option_is_named_once_with_the_host_or_group_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "db.yml").write_text("ansible_ssh_extra_args: -o ServerAliveInterval=30\n")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        """
all:
  children:
    web:
      vars:
        ansible_ssh_common_args: -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=no
      hosts:
        web1:
        web2:
        web3:
          ansible_ssh_common_args: -C -o ProxyCommand="ssh -W %h:%p b"
    db:
      hosts:
        db1:
        db2:
    quiet:
      hosts:
        q1:
          ansible_ssh_common_args: -o Port=2200 -J jump
"""
    )
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "--list-hosts"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "  hosts (6):\n    web1\n    web2\n    web3\n    db1\n    db2\n    q1\n"
    assert proc.stderr.splitlines() == [
        "fleetrst: warning: group web: ansible_ssh_common_args: fleetrst does not honour "
        "'-o ControlMaster=auto', '-o ControlPersist=60s' (ignored)",
        "fleetrst: warning: host web3: ansible_ssh_common_args: fleetrst does not honour '-C' (ignored)",
        "fleetrst: warning: group db: ansible_ssh_extra_args: fleetrst does not honour "
        "'-o ServerAliveInterval=30' (ignored)",
    ]


@pytest.mark.parametrize("connection", ["ssh", "paramiko"])
def test_the_proxy_command_is_kept_for_both_ssh_transports(connection: str, tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        f"all:\n  hosts:\n    a:\n      ansible_connection: {connection}\n"
        "      ansible_ssh_common_args: -o ProxyCommand='ssh -W %h:%p b'\n",
    )
    assert targets["a"].connection.connection == connection
    assert targets["a"].connection.proxy_command == ("ssh", "-W", "a:22", "b")
