"""Targets: connection settings resolved from inventory variables, ssh args and the command line,
templates rendered only where used, and one bad host never spoiling the others."""

from __future__ import annotations

from pathlib import Path

from fleetrst.inventory import HONOURED, ConnectionDefaults, load_inventory
from fleetrst.inventory.connection import parse_ssh_args

from .conftest import corpus


def _targets(tmp_path: Path, text: str, defaults: ConnectionDefaults | None = None, name: str = "hosts.yml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(text)
    inv = load_inventory([str(path)])
    return {t.name: t for t in inv.targets(inv.select("all"), defaults or ConnectionDefaults())}


def test_templates_render_in_used_variables_and_nowhere_else() -> None:
    inv = load_inventory(corpus("templates/hosts.yml"))
    targets = {t.name: t for t in inv.targets(inv.select("all"), ConnectionDefaults())}
    web1, web2 = targets["web1"], targets["web2"]
    assert web1.error is None and web1.connection.address == "web1.prod.example.com"
    assert web1.connection.user == "deployer"  # all's ansible_user refers to another variable
    assert web1.fleetrst_vars == {"fleetrst_threshold": 50}  # one expression keeps its type
    assert web2.connection.port == 2222 and web2.connection.address == "web2"
    assert web2.fleetrst_vars == {"fleetrst_label": "web-web2"}
    assert web1.groups == ("web",)


def test_a_bad_host_gets_an_error_and_the_others_do_not() -> None:
    inv = load_inventory(corpus("templates/hosts.yml"))
    targets = {t.name: t for t in inv.targets(inv.select("all"), ConnectionDefaults())}
    assert targets["web3"].error == "host web3: ansible_port must be an integer, got 'ssh'"
    assert targets["web4"].error == "host web4: ansible_become_method 'su' is not supported (only sudo)"
    assert "undefined" in (targets["web5"].error or "") and "missing_var" in (targets["web5"].error or "")
    assert "recursive template loop" in (targets["web6"].error or "")
    assert "vault-encrypted" in (targets["web7.example.com"].error or "")
    assert all("\n" not in (t.error or "") for t in targets.values())
    assert targets["web1"].error is None and targets["web2"].error is None


def test_targets_keep_the_order_of_the_names_given() -> None:
    inv = load_inventory(corpus("yaml_basic/hosts.yml"))
    names = list(reversed(inv.select("all")))
    assert [t.name for t in inv.targets(names, ConnectionDefaults())] == names


def test_inventory_beats_the_command_line_and_ssh_spellings_beat_generic_ones(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        """
all:
  children:
    g:
      vars:
        ansible_ssh_user: group-ssh-user
        ansible_port: 2000
      hosts:
        a:
          ansible_user: host-user
          ansible_ssh_port: 2001
        b:
          ansible_private_key_file: ~/.ssh/b_key
    plain:
      hosts:
        c:
""",
        ConnectionDefaults(
            user="cli-user", private_key="/cli/key", connection="paramiko", connect_timeout=3.0
        ),
    )
    assert (
        targets["a"].connection.user == "group-ssh-user"
    )  # ansible_ssh_user (group) beats ansible_user (host)
    assert targets["a"].connection.port == 2001
    assert targets["b"].connection.private_keys[0].endswith("/.ssh/b_key")
    assert targets["c"].connection.user == "cli-user"
    assert targets["c"].connection.private_keys == ("/cli/key",)
    assert targets["c"].connection.connection == "paramiko" and targets["c"].connection.connect_timeout == 3.0


def test_ssh_args_are_understood(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        """
all:
  hosts:
    a:
      ansible_ssh_common_args: >-
        -o UserKnownHostsFile="/k1 /k2" -o StrictHostKeyChecking=accept-new -o 'ProxyJump jump1'
        -o ConnectTimeout=7 -F /ignored/config -o Port=2200 -o User=args-user -o IdentityFile=/id1
      ansible_ssh_extra_args: -i /id2 -J jump2 -p 2300 -l other -vvv -o SomethingElse=1
    b:
      ansible_port: 22
      ansible_user: var-user
      ansible_host_key_checking: false
      ansible_ssh_common_args: -p2200 -lx -oStrictHostKeyChecking=yes -J none
""",
        ConnectionDefaults(known_hosts=("/cli/known",)),
    )
    a, b = targets["a"].connection, targets["b"].connection
    assert a.known_hosts == ("/k1", "/k2", "/cli/known")
    assert a.host_key_checking == "accept-new" and a.proxy_jump == "jump1" and a.connect_timeout == 7
    assert a.port == 2200 and a.user == "args-user" and a.private_keys == ("/id1", "/id2")
    assert b.port == 22 and b.user == "var-user" and b.host_key_checking == "no" and b.proxy_jump is None


def test_parse_ssh_args_skips_the_arguments_of_flags_it_ignores() -> None:
    parsed = parse_ssh_args(["-F", "-p", "-E", "-J", "-o", "ProxyJump=real", "-46C"])
    assert parsed.options == {"proxyjump": "real"}


def test_become_and_host_key_checking_defaults(tmp_path: Path) -> None:
    targets = _targets(
        tmp_path,
        """
[a]
x ansible_become=yes ansible_become_pass=s3cret
y ansible_become=true ansible_user=root
z ansible_host_key_checking=True ansible_ssh_common_args='-o StrictHostKeyChecking=no'
w ansible_connection=local
v ansible_connection=winrm
""",
        ConnectionDefaults(host_key_checking="accept-new", become_user="admin"),
        name="hosts.ini",
    )
    x = targets["x"].connection
    assert x.become and x.become_user == "admin" and x.become_password == "s3cret"
    assert "s3cret" not in repr(x) and x.host_key_checking == "accept-new"
    assert targets["z"].connection.host_key_checking == "no"
    assert targets["w"].connection.connection == "local"
    assert (
        targets["v"].error
        == "host v: ansible_connection 'winrm' is not supported (only local, paramiko, ssh)"
    )


def test_honoured_variables_are_declared_once() -> None:
    names = [v.name for v in HONOURED]
    assert len(names) == len(set(names))
    assert all(v.meaning and v.name.startswith("ansible_") for v in HONOURED)
