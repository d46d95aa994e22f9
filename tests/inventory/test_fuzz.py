"""Fuzzing the loaders and the pattern parser: whatever comes in, only our own one-line errors come out;
and where fleetrst and Ansible (ansible-core, in-process) both accept a generated YAML inventory, they
read the same hosts, groups and variables."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fleetrst.inventory import ConnectionDefaults, InventoryError, PatternError, load_inventory
from tests.helpers import examples

from .conftest import corpus

_DIR = Path(tempfile.mkdtemp(prefix="fleetrst-fuzz-"))
_FAST = settings(examples(200), suppress_health_check=[HealthCheck.too_slow])

_INI_LINES = st.one_of(
    st.sampled_from(
        ["[web]", "[db:vars]", "[all:children]", "[web:children]", "db", "[db]", "x=1", "h1 a=1 b='x'",
         "h[1:3]", "h[01:3]", "h[a:c]:22", "#c", ";c", "[", "]", "h1:", "---", "k = v", "[g:hosts]", "a=b=c",
         "h 'q", "[x y]", "h[1:2:0]", "h[3:1]", "h[:]", "v6 ::1", "[::1]:22", "a=[1,{2:3}]", "h b'x'"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
)  # fmt: skip


def _load(text: str | bytes, name: str) -> None:
    path = _DIR / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        inv = load_inventory([str(path)])
        inv.list_json()
        inv.graph(vars=True)
        inv.targets(inv.select("all"), ConnectionDefaults())
    except InventoryError as exc:
        assert str(exc) and "\n" not in str(exc)


@_FAST
@given(st.lists(_INI_LINES, max_size=12))
def test_ini_loader_only_raises_inventory_errors(lines: list[str]) -> None:
    _load("\n".join(lines), "fuzz.ini")


@_FAST
@given(st.binary(max_size=80))
def test_any_bytes_only_raise_inventory_errors(data: bytes) -> None:
    _load(data, "fuzz-bytes")
    _load(data, "fuzz-bytes.yml")


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False),
    st.sampled_from(["web", "db", "h[1:2]", "h[001:9]", "{{ x }}", "ssh", "hosts", "vars", "children", "all",
                     "ungrouped", "plugin", "[::1]:22", "h:2222", "", "{{ inventory_hostname }}"]),
    st.text(max_size=8),
)  # fmt: skip
_VALUES: Any = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_SCALARS, inner, max_size=4)),
    max_leaves=15,
)


@_FAST
@given(_VALUES)
def test_yaml_loader_only_raises_inventory_errors(data: Any) -> None:
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    _load(text, "fuzz.yml")


_GROUPS = st.sampled_from(["web", "db", "all", "ungrouped", "g1"])
_HOSTNAMES = st.sampled_from(["h1", "h[1:3]", "10", "db:22", "x[a:c]"])
_VARS = st.dictionaries(
    st.sampled_from(["ansible_port", "ansible_host", "ansible_user", "ansible_ssh_common_args",
                     "ansible_become", "ansible_become_method", "ansible_connection", "ansible_timeout",
                     "ansible_group_priority", "fleetrst_x", "other"]),
    _SCALARS, max_size=4,
)  # fmt: skip
_GROUP_BODY: Any = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "hosts": st.dictionaries(_HOSTNAMES, st.one_of(st.none(), _VARS), max_size=3),
            "vars": _VARS,
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {}, optional={"children": st.dictionaries(_GROUPS, inner, max_size=2)}
    ),
    max_leaves=6,
)


@_FAST
@given(st.dictionaries(_GROUPS, st.one_of(st.none(), _GROUP_BODY), max_size=4))
def test_structured_yaml_inventories_load_or_fail_cleanly(data: dict[str, Any]) -> None:
    _load(yaml.safe_dump(data), "structured.yml")


_INV = load_inventory(corpus("ini_basic/hosts.ini"))


@_FAST
@given(
    st.text(alphabet="ab*?[]~:&!,.-0123456789@ ()^$|\\{}+", max_size=20),
    st.one_of(st.none(), st.text(alphabet="ab*?[]~:&!,0123456789 ", max_size=10)),
)
def test_pattern_parser_only_raises_pattern_errors(pattern: str, limit: str | None) -> None:
    try:
        names = _INV.select(pattern, limit)
    except PatternError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len(names) == len(set(names))


# --- fleetrst and Ansible read the same thing ---------------------------------------------------------


def ansible_reads(path: Path) -> tuple[bool, dict[str, Any], dict[str, set[str]]]:
    """What ansible-core's YAML inventory plugin makes of one file, in-process (about 15 ms): whether
    it accepted the file, every host's variables as ``ansible-inventory --list`` prints them, and every
    group's hosts (its own and its children's, as the ``groups`` magic variable has them).

    Only the YAML plugin: on a file it refuses, Ansible would go on to try it as INI (documented
    difference 3 in test_differences.py), which is not a reading of the YAML to compare with."""
    from ansible import constants as C
    from ansible._internal._json._profiles import _inventory_legacy
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    manager = InventoryManager(loader, sources=None)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its warnings
            inventory_loader.get("yaml").parse(manager._inventory, loader, str(path), cache=False)
            manager._inventory.reconcile_inventory()
    except (AnsibleError, ValueError, TypeError):  # Ansible's own crashes too: it did not accept the file
        return False, {}, {}
    variables = VariableManager(loader=loader, inventory=manager)
    hostvars: dict[str, Any] = {}
    for host in manager.get_hosts("all"):
        found = variables.get_vars(host=host, include_hostvars=False, stage="all")
        for name in C.INTERNAL_STATIC_VARS:
            found.pop(name, None)
        hostvars[host.name] = json.loads(json.dumps(found, cls=_inventory_legacy.Encoder))
    groups = {name: {h.name for h in group.get_hosts()} for name, group in manager.groups.items()}
    return True, hostvars, groups


@settings(examples(100), suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_GROUPS, st.one_of(st.none(), _GROUP_BODY), max_size=4))
def test_where_both_accept_a_yaml_inventory_fleetrst_and_ansible_read_the_same_hosts_and_vars(
    data: dict[str, Any],
) -> None:
    text = yaml.safe_dump(data)
    path = _DIR / f"both-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yml"  # no cache can mix two
    path.write_text(text)
    try:
        inv = load_inventory([str(path)])
    except InventoryError:
        event("fleetrst refuses")
        return  # loudly, where Ansible may warn and go on: nothing to compare
    hosts = inv.select("all")
    ansible_parsed, ansible_hostvars, ansible_groups = ansible_reads(path)
    if not ansible_parsed:
        event("Ansible refuses")
        return
    event("both accept: compared")
    listed = inv.list_json()
    assert set(hosts) == set(ansible_hostvars), text
    assert {h: listed["_meta"]["hostvars"].get(h, {}) for h in hosts} == ansible_hostvars, text
    assert {name: set(inv.group_hosts(name)) for name in inv.groups} == ansible_groups, text


def test_a_host_named_like_its_group_has_the_variables_ansible_gives_it(tmp_path: Path) -> None:
    """Found by the property above. Ansible sets the variables of a host named like an existing group
    on the *group* (InventoryData.set_variable looks groups up first), so they reach the group's other
    hosts and lose to the host's own port; fleetrst does the same, and says so."""
    path = tmp_path / "same-name.yml"
    path.write_text("db:\n  hosts:\n    db:2222:\n      ansible_port: null\n    db2:\n")
    parsed, ansible_hostvars, _ = ansible_reads(path)
    assert parsed and ansible_hostvars == {"db": {"ansible_port": 2222}, "db2": {"ansible_port": None}}
    inv = load_inventory([str(path)])
    assert inv.list_json()["_meta"]["hostvars"] == ansible_hostvars
    assert inv.warnings == [
        "host 'db' has the name of a group: its variables were set on the group, for all the group's "
        "hosts (as Ansible does)"
    ]
