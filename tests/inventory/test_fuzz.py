"""Fuzzing the loaders and the pattern parser: whatever comes in, only our own one-line errors come out."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetrst.inventory import ConnectionDefaults, InventoryError, PatternError, load_inventory

from .conftest import corpus

_DIR = Path(tempfile.mkdtemp(prefix="fleetrst-fuzz-"))
_FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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
