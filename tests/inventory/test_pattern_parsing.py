"""The host-pattern parser, piece by piece, against ansible-core's own functions and on the inputs the
mutation run (benchmarks/mutation.py) showed no other test looked at: names that start with a letter
the parser tests for, a regex or glob that matches a group and hosts outside it, ``&``/``!`` terms
that name a group with a host of the same name, limit files with spaces and non-ASCII names."""

from __future__ import annotations

import locale
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.inventory import PatternError, load_inventory
from fleetrst.inventory.patterns import split_pattern
from tests.helpers import examples

from .conftest import Oracle

# Hosts and groups whose names trip a parser that tests a term's first character or tries hosts only
# sometimes: "X..." names, a group "web" and a host "web-standalone" outside it, a host "db" beside a
# group "db" that does not hold it (Ansible warns about the clash and goes on).
INVENTORY = """\
all:
  hosts:
    Xeon1:
    Xeon2:
    web-standalone:
    db:
  children:
    web:
      hosts:
        app1:
        app2:
    db:
      hosts:
        db1:
    Xgroup:
      hosts:
        x9:
"""

PATTERNS = [
    "Xeon1", "Xeon*", "X*", "Xgroup", "all:&Xeon1", "all:!Xeon1", "all:&Xgroup", "all:!X*", "~^X", "~X",
    "web", "web*", "~web", "~^web", "web:&web*", "all:&web", "all:!web",
    "db", "all:&db", "all:!db", "db:&db1", "db*", "~^db$", "&db", "!db",
    "Xeon1:web-standalone", "Xeon1,db1", "app*[1:]", "app*[0:]", "app*[-1]", "all[2:]",
]  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("patterns") / "hosts.yml"
    path.write_text(INVENTORY)
    return [str(path)]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_names_that_trip_a_first_character_or_a_group_match_select_what_ansible_selects(
    sources: list[str], pattern: str
) -> None:
    expected = Oracle(sources).select(pattern)
    assert sorted(load_inventory(sources).select(pattern)) == sorted(expected), pattern


@pytest.mark.parametrize(
    "pattern",
    ["web[1:3]:22", "db[01:10]", "host:22", "[::1]:22", "fe80::1", "a:b", "a,b:c", "x[1:2]:y[3]", "a[b:c]:d"],
)
def test_a_pattern_splits_into_the_terms_ansible_splits_it_into(pattern: str) -> None:
    from ansible.inventory.manager import split_host_pattern

    assert split_pattern(pattern) == split_host_pattern(pattern)


@examples(300)
@given(st.text(alphabet="ab01:[],-~&!*.? \t@", max_size=16))
def test_any_pattern_splits_as_ansible_splits_it(pattern: str) -> None:
    from ansible.inventory.manager import split_host_pattern

    assert split_pattern(pattern) == split_host_pattern(pattern)


def test_an_empty_term_after_and_or_not_is_one_clear_line(sources: list[str]) -> None:
    for pattern in ("web:&", "web:!", "&", "web,!"):
        with pytest.raises(PatternError) as caught:
            load_inventory(sources).select(pattern)
        assert str(caught.value) == "empty host pattern after '&' or '!'"


def test_a_limit_file_line_is_one_term_even_with_spaces_in_it(sources: list[str], tmp_path: Path) -> None:
    # Ansible splits a limit file on newlines only: "Xeon1 db1" is one term, which matches nothing.
    limit = tmp_path / "limit.txt"
    limit.write_text("Xeon1 db1\napp1\n")
    expected = Oracle(sources).select("all", f"@{limit}")
    assert expected == ["app1"]
    assert load_inventory(sources).select("all", f"@{limit}") == expected


def test_a_limit_file_that_is_not_utf8_is_one_clear_line(sources: list[str], tmp_path: Path) -> None:
    limit = tmp_path / "limit.txt"
    limit.write_bytes(b"app1\n\xff\xfe\n")
    with pytest.raises(PatternError) as caught:
        load_inventory(sources).select("all", f"@{limit}")
    assert str(caught.value).startswith(f"cannot read limit file {limit}: ")
    assert "utf-8" in str(caught.value) and "\n" not in str(caught.value)


def test_a_limit_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # Under the C locale Python's default encoding is ASCII (outside UTF-8 mode): the limit file must
    # still be read as UTF-8, as Ansible reads it.
    if sys.flags.utf8_mode:
        pytest.skip("Python runs in UTF-8 mode here: every default encoding is UTF-8")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    héllo:\n    other:\n", encoding="utf-8")
    limit = tmp_path / "limit.txt"
    limit.write_text("héllo\n", encoding="utf-8")
    inv = load_inventory([str(inventory)])
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968")
        assert inv.select("all", f"@{limit}") == ["héllo"]
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
