"""`select(pattern, limit)` picks the hosts Ansible picks, in Ansible's order where that order is
deterministic (as sets where Ansible walks nested groups through a set), checked against
ansible-core's InventoryManager in-process; `format_list_hosts` matches `ansible --list-hosts`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetrst.inventory import InventoryError, PatternError, format_list_hosts, load_inventory

from .conftest import Oracle, ansible_list_hosts, corpus, oracle

FLAT = corpus("ini_basic/hosts.ini")  # no group below a group below "all" with siblings: order is fixed
FLAT_YAML = corpus("yaml_basic/hosts.yml")
NESTED = corpus("deep/hosts.yml")
MULTI = corpus("multi/one/hosts.yml", "multi/two/hosts.ini")
IPV6 = corpus("ipv6/hosts.ini")
RANGES = corpus("ranges/hosts.yml")

PATTERNS = [
    "all", "*", "", "webservers", "dbservers", "webservers:dbservers", "webservers,dbservers",
    "webservers:&dbservers", "southeast:&atlanta", "southeast:!raleigh", "usa:!atlanta:!raleigh",
    "!atlanta", "&raleigh", "!atlanta:&southeast", "host2", "host*", "*.example.com", "www0?.example.com",
    "~www0[12]", "~(foo|bar)\\.example", "~.*", "webservers[0]", "webservers[-1]", "webservers[1:3]",
    "webservers[2:]", "webservers[0:0]", "webservers[1-2]", "southeast[0]:dbservers[-1]", "ungrouped",
    "ungrouped:&all", "mail.example.com", "10.0.0.5", "nomatch", "nomatch:host1", "web*", "*servers",
    "web-servers", "[w]eb*", "all:!ungrouped", "host1,host3,host1", "host3:host1:host2",
    "atlanta[1]:raleigh[0]",
    "usa", "northeast", "southeast:northeast", "dbservers[-3:1]", "dbservers[:1]", "localhost",
    "all:!*.example.com", "*:&~host[12]", "foo.example.com:bar.example.com", "db*:!two*",
]  # fmt: skip
LIMITS: list[str | list[str] | None] = [
    None, "all", "webservers", "!atlanta", "host1,host2", "southeast[0]", "usa:&raleigh", "*.example.com",
    ["atlanta", "dbservers"], "", "nomatch", "~host[13]",
]  # fmt: skip


def _check(sources: list[str], pattern: str, limit: str | list[str] | None, ordered: bool) -> None:
    try:
        expected = oracle(tuple(sources)).select(pattern, limit)
    except Exception:  # Ansible rejects the pattern (e.g. an out-of-range subscript): so must we
        with pytest.raises(PatternError):
            load_inventory(sources).select(pattern, limit)
        return
    got = load_inventory(sources).select(pattern, limit)
    if ordered:
        assert got == expected, (pattern, limit)
    else:
        assert sorted(got) == sorted(expected) and len(got) == len(set(got)), (pattern, limit)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_select_what_ansible_selects_in_its_order(pattern: str) -> None:
    for limit in LIMITS:
        _check(FLAT, pattern, limit, ordered=True)


@pytest.mark.parametrize(
    "pattern",
    ["all", "web", "db", "prod", "prod:!db", "staging:&web", "web2*", "*example*", "prod[0:2]", "bastion*",
     "all[-1]", "empty_group", "staging:prod", "~^(web|db)1", "stage1.example.com"],
)  # fmt: skip
def test_yaml_inventory_patterns(pattern: str) -> None:
    for limit in (None, "prod", "!web1.example.com", "web2.example.com,db*"):
        _check(FLAT_YAML, pattern, limit, ordered=True)


@pytest.mark.parametrize(
    "pattern",
    ["all", "region_eu", "dc_ams", "rack_a", "region_us:&rack_a", "region_eu:!dc_ams", "*-1", "ams*",
     "region_eu[0:3]", "monitoring:region_us", "~^(fra|nyc)", "rack_*"],
)  # fmt: skip
def test_nested_groups_select_the_same_set(pattern: str) -> None:
    for limit in (None, "region_eu", "!rack_a"):
        _check(NESTED, pattern, limit, ordered=False)


@pytest.mark.parametrize(
    "pattern",
    ["all", "v6", "::1", "fe80::1", "2001:db8::1", "192.168.1.*", "v4:&192.168.1.2", "localhost", "127.0.0.1",
     "192.168.1.[1:2]", "v4[0]:v6[0]", "~^192", "names,v6"],
)  # fmt: skip
def test_addresses_as_patterns(pattern: str) -> None:
    _check(IPV6, pattern, None, ordered=True)


@pytest.mark.parametrize("pattern", ["all", "web", "web:&db", "w*", "all:!web", "cache", "db[0]"])
def test_patterns_over_several_sources(pattern: str) -> None:
    for limit in (None, "web", "!w2"):
        _check(MULTI, pattern, limit, ordered=True)


def test_implicit_localhost_is_selected_like_ansible() -> None:
    # Ansible creates the implicit localhost once, named by the first pattern that asked for it.
    for pattern in ("localhost", "127.0.0.1", "::1", "localhost:www01.example.com"):
        assert load_inventory(RANGES).select(pattern) == Oracle(RANGES).select(pattern)
    inv, ansible = load_inventory(RANGES), Oracle(RANGES)
    for pattern in ("127.0.0.1", "localhost", "all:localhost"):
        assert inv.select(pattern) == ansible.select(pattern)


def test_limit_from_a_file(tmp_path: Path) -> None:
    limit_file = tmp_path / "limit.txt"
    limit_file.write_text("host1\n\nwww0*\n dbservers[0] \n")
    _check(FLAT, "all", f"@{limit_file}", ordered=True)
    _check(FLAT, "all", [f"@{limit_file}", "!host1"], ordered=True)
    with pytest.raises(PatternError, match="limit file not found"):
        load_inventory(FLAT).select("all", limit=f"@{tmp_path / 'missing'}")
    with pytest.raises(PatternError, match="not a directory"):
        load_inventory(FLAT).select("all", limit=f"@{tmp_path}")


def test_bad_patterns_are_one_clear_line() -> None:
    inv = load_inventory(FLAT)
    with pytest.raises(PatternError) as bad_regex:
        inv.select("~(web")
    assert "~(web" in str(bad_regex.value) and "\n" not in str(bad_regex.value)
    with pytest.raises(PatternError, match="webservers\\[9\\]"):
        inv.select("webservers[9]")
    with pytest.raises(PatternError):
        inv.select("webservers:&")
    assert isinstance(PatternError("x"), InventoryError)


def test_a_pattern_that_matches_nothing_is_an_empty_list() -> None:
    assert load_inventory(FLAT).select("nothing-here") == []
    assert load_inventory(FLAT).select("all", limit="nothing-here") == []


@pytest.mark.parametrize(
    ("pattern", "limit"),
    [("all", None), ("southeast:!raleigh", None), ("webservers", "www0*"), ("nomatch", None)],
)
def test_format_list_hosts_matches_the_ansible_cli(pattern: str, limit: str | None) -> None:
    names = load_inventory(FLAT).select(pattern, limit)
    assert format_list_hosts(names) == ansible_list_hosts(FLAT, pattern, limit)


# --- random patterns against the oracle -----------------------------------------------------------------

_ATOMS = st.sampled_from(
    ["all", "*", "webservers", "dbservers", "southeast", "atlanta", "raleigh", "usa", "northeast",
     "ungrouped",
     "host1", "host2", "host3", "www01.example.com", "*.example.com", "host?", "~host[23]", "~w+", "web*",
     "foo.example.com", "nomatch", "mail*", "10.0.0.5", "*servers", "[wh]*", "dash.example.com"]
)  # fmt: skip
_SUBSCRIPTS = st.sampled_from(["", "", "", "[0]", "[1]", "[-1]", "[0:1]", "[1:]", "[0:2]", "[2-3]"])
_TERMS = st.tuples(st.sampled_from(["", "", "&", "!"]), _ATOMS, _SUBSCRIPTS).map(
    lambda t: t[0] + t[1] + (t[2] if not t[1].startswith("~") else "")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    terms=st.lists(_TERMS, min_size=1, max_size=4),
    sep=st.sampled_from([":", ","]),
    limit_terms=st.one_of(st.none(), st.lists(_TERMS, min_size=1, max_size=2)),
)
def test_random_patterns_agree_with_ansible(
    terms: list[str], sep: str, limit_terms: list[str] | None
) -> None:
    limit = None if limit_terms is None else ",".join(limit_terms)
    _check(FLAT, sep.join(terms), limit, ordered=True)
