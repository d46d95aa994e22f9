"""Every deliberate difference from ansible-core 2.19, each one asserted below.

1. Where Ansible warns and goes on with fewer hosts, fleetrst fails with one line naming the file
   (and line): a source that does not exist or cannot be parsed (Ansible: "Unable to parse ... as an
   inventory source"), `hosts:` given as a list, an unknown key in a group body, a group whose body is
   not a mapping, an INI `[g:vars]` for a group no source defines. A fleet audit that silently skips
   half the fleet is worse than none.
2. A key given twice in one YAML mapping is an error (Ansible warns and keeps the last one, which
   silently drops the first group's hosts). Keys brought in by a `<<` merge may still be overridden.
3. A `.yml`/`.yaml`/`.json` file that is not valid YAML is reported as such; Ansible then tries to read
   it as INI, which at best yields nonsense hosts.
4. Inventory scripts and plugin configs run as in Ansible, within bounds Ansible does not set: a script
   has a deadline (2 minutes a run) and an output cap (128 MiB) and gets /dev/null as its standard
   input; JSON that Ansible would quietly coerce (`children` given as text) is an error; a plugin
   config's result is reused for `--inventory-cache` (5 minutes by default) instead of asking the
   cloud again on every run. ansible-inventory's own `--list`/`--export` JSON is read as a file or
   on standard input (Ansible reads it only from a script that prints it).
5. `--graph --vars` prints `<vault-encrypted>` for a `!vault` value where Ansible stops with
   "Attempting to decrypt but no vault secrets found".
6. Templates are rendered only in the variables fleetrst uses (connection variables and `fleetrst_*`),
   with Jinja2's filters plus `bool`, `ternary`, `regex_replace`, `regex_search`, `mandatory` — not
   Ansible's whole filter set, and without `hostvars`.
7. Host order inside nested groups: Ansible walks grandchildren through a set, so its order changes
   from run to run; fleetrst walks level by level in declaration order, always the same.
8. `--toml` says in one line what TOML cannot hold (a null, a vault value) where ansible-inventory
   stops with an internal error; keys that are not text are written as text (as in JSON) where
   ansible-inventory stops too. For a plugin config, the variables in `--toml` output come in sorted
   order (they come back from ansible-inventory through JSON), not in Ansible's order.
9. `ProxyCommand` runs without a shell (OpenSSH hands it to `$SHELL -c`): it is split like a shell
   line and `~` is expanded, but `$VAR`, pipes and `;` are not interpreted (write `sh -c '...'` for
   them); a host address or user put into it through `%h`/`%r` must be a plain name.
10. Hosts under an ``ungrouped`` made a child of another group are an error: Ansible drops them from its
   inventory without a word (found by tests/inventory/test_fuzz.py's property against ansible-core).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from fleetrst.inventory import InventoryError, LoadOptions, load_inventory

from .conftest import ansible_inventory, corpus
from .test_fuzz import ansible_reads


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _ansible_hosts(sources: list[str]) -> list[str]:
    import json

    proc = ansible_inventory(sources, "--list")
    data = json.loads(proc.stdout)
    return sorted({h for g, body in data.items() if g != "_meta" for h in body.get("hosts", [])})


def test_1_we_fail_where_ansible_warns_and_skips(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.yml", "web:\n  hosts:\n    w1:\n")
    as_list = _write(tmp_path, "list.yml", "db:\n  hosts:\n    - d1\n    - d2\n")
    assert _ansible_hosts([good, as_list]) == ["w1"]  # Ansible: d1 and d2 silently gone
    with pytest.raises(InventoryError) as exc:
        load_inventory([good, as_list])
    assert str(exc.value) == (
        f"{as_list}:2: hosts of group 'db' must be a mapping, got a list"
        " (write hosts as 'name:' keys, not a list)"
    )

    unknown = _write(tmp_path, "unknown.yml", "db:\n  host:\n    d1:\n")
    assert _ansible_hosts([good, unknown]) == ["w1"]
    with pytest.raises(InventoryError, match=r"unknown.yml:2: unexpected key 'host' in group 'db'"):
        load_inventory([good, unknown])

    not_a_group = _write(tmp_path, "scalar.yml", "web:\n  hosts:\n    w2:\ndb: [d1]\n")
    with pytest.raises(InventoryError, match=r"scalar.yml:4: group 'db' must be a mapping"):
        load_inventory([not_a_group])

    missing = str(tmp_path / "missing.yml")
    assert _ansible_hosts([good, missing]) == ["w1"]
    with pytest.raises(InventoryError, match="inventory source not found"):
        load_inventory([good, missing])

    ini = corpus("multi/two/hosts.ini")  # [db:vars] for a group that only a later source defines
    assert "db" not in _ansible_hosts(ini)
    with pytest.raises(InventoryError, match=r"hosts.ini:5: section \[db:vars\] is for group 'db'"):
        load_inventory(ini)


def test_2_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    dup = _write(tmp_path, "dup.yml", "web:\n  hosts:\n    w1:\nweb:\n  hosts:\n    w2:\n")
    assert _ansible_hosts([dup]) == ["w2"]
    with pytest.raises(InventoryError, match=r"dup.yml:4: .*duplicate key 'web' \(first given on line 1\)"):
        load_inventory([dup])
    merged = _write(tmp_path, "merge.yml", "web:\n  vars: &v {a: 1}\n  hosts: {w1: {<<: *v, a: 2}}\n")
    assert load_inventory([merged]).host_json("w1") == {"a": 2}


def test_3_broken_yaml_is_not_retried_as_ini(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.yml", "web:\n  hosts: [\n")
    with pytest.raises(InventoryError, match=r"broken.yml:\d+: invalid YAML"):
        load_inventory([broken])


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = _write(tmp_path, name, "#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def test_4_scripts_run_within_bounds_and_json_is_not_coerced(tmp_path: Path) -> None:
    hang = _script(tmp_path, "hang.sh", "sleep 30\n")
    with pytest.raises(InventoryError, match=r"hang.sh: inventory script --list: did not finish within 1s"):
        load_inventory([hang], LoadOptions(script_timeout=1))
    loud = _script(tmp_path, "loud.sh", "head -c 5000 /dev/zero | tr '\\0' x\n")
    with pytest.raises(InventoryError, match=r"loud.sh: inventory script --list: printed more than"):
        load_inventory([loud], LoadOptions(max_output=1000))
    text_children = _script(
        tmp_path,
        "chars.sh",
        """echo '{"g": {"hosts": ["h"], "children": "ab"}, "_meta": {"hostvars": {}}}'\n""",
    )
    ansible = json.loads(ansible_inventory([text_children], "--list").stdout)
    assert ansible["g"]["children"] == ["a", "b"]  # Ansible: the characters become groups
    with pytest.raises(InventoryError, match=r"'g.children' is the text 'ab', not a list of group names"):
        load_inventory([text_children])
    saved = _write(tmp_path, "saved.json", ansible_inventory(corpus("yaml_basic/hosts.yml"), "--list").stdout)
    assert "web1.example.com" not in _ansible_hosts([saved])  # Ansible: a host named "{" (INI)
    assert len(load_inventory([saved]).select("all")) == 6


def test_5_graph_vars_shows_vault_values_as_a_marker() -> None:
    sources = corpus("vault_unsafe.yml")
    assert ansible_inventory(sources, "--graph", "--vars").returncode != 0
    assert "{y = <vault-encrypted>}" in load_inventory(sources).graph(vars=True)


def test_6_templates_only_where_used() -> None:
    inv = load_inventory(corpus("templates/hosts.yml"))
    [web1] = inv.targets(["web1"], __import__("fleetrst.inventory", fromlist=["x"]).ConnectionDefaults())
    assert web1.error is None  # the exotic filter and the vault value elsewhere never rendered


def test_7_nested_group_order_is_stable() -> None:
    sources = corpus("deep/hosts.yml")
    first = load_inventory(sources).select("all")
    assert all(load_inventory(sources).select("all") == first for _ in range(3))
    # all's children (region_eu, region_us, monitoring), then their children, and so on
    assert first == ["mon-1", "fra-2", "ams-core", "fra-1", "nyc-1", "ams-a1", "ams-a2", "ams-b1"]


def test_8_toml_names_what_it_cannot_write() -> None:
    from fleetrst.inventory.output import render_inventory

    sources = corpus("vault_unsafe.yml")
    assert ansible_inventory(sources, "--list", "--toml").returncode == 250  # an internal error
    with pytest.raises(InventoryError, match=r"--toml cannot write web.vars.y: it is vault-encrypted"):
        render_inventory(
            load_inventory(sources), graph=None, host=None, graph_vars=False, as_yaml=False, as_toml=True,
            export=True,
        )  # fmt: skip


def test_9_proxy_command_runs_without_a_shell(tmp_path: Path) -> None:
    from fleetrst.inventory import ConnectionDefaults

    path = _write(
        tmp_path,
        "proxy.yml",
        "all:\n  hosts:\n    a:\n      ansible_host: 10.0.0.5\n"
        "      ansible_ssh_common_args: -o 'ProxyCommand=ssh -W %h:%p ~/x $HOME|cat'\n",
    )
    inv = load_inventory([path])
    [a] = inv.targets(["a"], ConnectionDefaults())
    home = os.path.expanduser("~")
    assert a.connection.proxy_command == ("ssh", "-W", "10.0.0.5:22", f"{home}/x", "$HOME|cat")


def test_10_hosts_of_a_nested_ungrouped_are_refused_where_ansible_loses_them(tmp_path: Path) -> None:
    """Found by test_fuzz.py's property. A host listed under an 'ungrouped' made a child of another group
    vanishes from Ansible's inventory (reconcile_inventory drops it from ungrouped and it is in no
    other group), silently; fleetrst refuses such an inventory, naming the file and the hosts."""
    path = tmp_path / "nested-ungrouped.yml"
    path.write_text("web:\n  children:\n    ungrouped:\n      hosts:\n        h1:\n")
    parsed, ansible_hostvars, ansible_groups = ansible_reads(path)
    assert parsed and ansible_hostvars == {} and ansible_groups["ungrouped"] == set()
    with pytest.raises(InventoryError) as caught:
        load_inventory([str(path)])
    assert str(caught.value) == (
        f"{path}: group 'ungrouped' is a child of 'web': Ansible then drops its hosts (h1) from the "
        "inventory without a word; list them under 'all' or a group of their own"
    )
