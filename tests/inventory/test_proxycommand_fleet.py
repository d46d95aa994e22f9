"""ProxyCommand for real: a host that answers only another host of the fleet (its replies to the
controller are dropped) is reached through ``ssh -W %h:%p`` to that host, the way a bastion is used;
the ProxyCommand comes from ``ansible_ssh_common_args``, from ``ansible_ssh_extra_args`` (both with the
asyncssh and the paramiko transport) and from ``~/.ssh/config``. Real namespaces, real sshd, the real
OpenSSH client as the proxy program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet

pytestmark = pytest.mark.fleet


def _fleet_vars(fleet: TestFleet) -> dict[str, Any]:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    found: dict[str, Any] = {}

    def walk(group: dict[str, Any]) -> None:
        found.update(group.get("vars") or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(doc["all"])
    return found


def _sweep(inventory: Path, env: dict[str, str]) -> tuple[dict[str, dict[str, Any]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "--window", "1",
         "--timeout", "8", "-o", "json", "--no-history"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    return {h["host"]: h for h in json.loads(proc.stdout)["hosts"]}, proc.stderr


def test_a_host_behind_a_bastion_is_reached_through_its_proxy_command(
    make_fleet: Any, tmp_path: Path
) -> None:
    fleet: TestFleet = make_fleet(2)
    fleet.drop_replies("h002")  # h002 answers h001, never the controller
    bastion, hidden = fleet.host("h001"), fleet.host("h002")
    known = fleet.known_hosts_path
    # the alias the ~/.ssh/config entry gives h002 is trusted under that name too
    aliased_known = tmp_path / "known_hosts"
    lines = known.read_text().splitlines()
    aliased_known.write_text(
        "\n".join(
            lines
            + [line.replace(hidden.address, "behind-bastion", 1) for line in lines if hidden.address in line]
        )
        + "\n"
    )
    through = (
        f"ssh -W %h:%p -i {fleet.client_key_path} -o UserKnownHostsFile={known} "
        f"-o StrictHostKeyChecking=yes -o BatchMode=yes {fleet.user}@{bastion.address}"
    )
    common = f"-o UserKnownHostsFile={aliased_known}"
    hosts = {
        "direct": {"ansible_host": hidden.address},
        "common-args": {
            "ansible_host": hidden.address,
            "ansible_ssh_common_args": f'{common} -o ProxyCommand="{through}"',
        },
        "extra-args": {
            "ansible_host": hidden.address,
            "ansible_ssh_extra_args": f'-o "ProxyCommand {through}"',
        },
        "paramiko": {
            "ansible_host": hidden.address,
            "ansible_connection": "paramiko",
            "ansible_ssh_common_args": f'{common} -o ProxyCommand="{through}"',
        },
        "ssh-config": {"ansible_host": "behind-bastion"},
    }
    group_vars = {**_fleet_vars(fleet), "ansible_ssh_common_args": common}
    inventory = tmp_path / "bastion.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts, "vars": group_vars}}}})
    )
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host behind-bastion\n  HostName {hidden.address}\n  ProxyCommand {through}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(home), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))

    result, stderr = _sweep(inventory, env)

    assert result["direct"]["status"] == "unreachable", result["direct"]
    for name in ("common-args", "extra-args", "paramiko", "ssh-config"):
        assert result[name]["status"] == "ok", (name, result[name]["error"])
        assert result[name]["interval_s"] > 0.5
    assert "warning" not in stderr, stderr  # every option given here is honoured
