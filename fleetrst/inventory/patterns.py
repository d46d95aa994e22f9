"""Ansible host patterns: ``all``, ``*``, groups, hosts, ``a:b``/``a,b``, ``a:&b``, ``a:!b``, globs,
``~regex``, subscripts ``[i]``, ``[-i]``, ``[i:j]``, ``[i:]``, and ``@file`` limits.

The rules are ansible-core's (``InventoryManager``): a pattern is split on ``,`` when it has one,
else on ``:`` outside brackets (unless the whole pattern reads as a host address such as
``db[1:3]`` or ``host:22``); plain terms are applied first, then ``&`` terms, then ``!`` terms, and
``all`` is assumed when there is no plain term. A term equal to a host name selects that host; other
terms are matched (``fnmatch``, or ``re.match`` after ``~``) against group names, and against host
names too when no group matched or the term has ``.?*[`` or is a regex. Subscripts apply to the
term's matches. A term that matches nothing adds nothing.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .addresses import LOCALHOST_NAMES, AddressError, parse_address
from .errors import PatternError

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = (".", "?", "*", "[")


def split_pattern(pattern: str | Sequence[str]) -> list[str]:
    """Split a pattern (or several) into terms, as Ansible's ``split_host_pattern`` does."""
    if not isinstance(pattern, str):
        return [term for p in pattern for term in split_pattern(p)]
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            parse_address(pattern, allow_ranges=True)
            parts = [pattern]
        except AddressError:
            parts = _COLON_TERMS.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def order_terms(terms: Iterable[str]) -> list[str]:
    plain = [t for t in terms if t and t[0] not in "&!"]
    both = [t for t in terms if t and t[0] == "&"]
    minus = [t for t in terms if t and t[0] == "!"]
    return (plain or ["all"]) + both + minus


def expand_limit(limit: str | Sequence[str]) -> list[str]:
    """The terms of a ``--limit``: ``@file`` entries are replaced by the file's lines."""
    terms: list[str] = []
    for term in split_pattern(limit):
        if term[0] != "@":
            terms.append(term)
            continue
        path = term[1:]
        if not os.path.exists(path):
            raise PatternError(f"limit file not found: {path}")
        if not os.path.isfile(path):
            raise PatternError(f"a limit starting with '@' must name a file, not a directory: {path}")
        try:
            with open(path, encoding="utf-8") as fh:
                terms.extend(line.strip() for line in fh.read().split("\n"))
        except (OSError, UnicodeDecodeError) as exc:
            raise PatternError(f"cannot read limit file {path}: {exc}") from None
    return terms


@dataclass(frozen=True)
class Subscript:
    start: int
    end: int | None  # None: a single index; -1: to the end


def split_subscript(term: str) -> tuple[str, Subscript | None]:
    if term.startswith("~"):
        return term, None
    m = _SUBSCRIPT.match(term)
    if not m:
        return term, None
    expr, index, start, _sep, end = m.groups()
    if index:
        return expr, Subscript(int(index), None)
    return expr, Subscript(int(start), int(end) if end else -1)


def apply_subscript(hosts: list[str], subscript: Subscript | None, term: str) -> list[str]:
    if not hosts or subscript is None:
        return hosts
    if subscript.end:  # as in Ansible, an end of 0 means "a single index"
        end = len(hosts) - 1 if subscript.end == -1 else subscript.end
        return hosts[subscript.start : end + 1]
    try:
        return [hosts[subscript.start]]
    except IndexError:
        raise PatternError(
            f"no host at the subscript of pattern {term!r}: only {len(hosts)} matched"
        ) from None


def compile_term(expr: str) -> re.Pattern[str]:
    try:
        if expr.startswith("~"):
            return re.compile(expr[1:])
        return re.compile(fnmatch.translate(expr))
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"invalid host pattern {expr!r}: {exc}") from None


class PatternIndex:
    """What pattern matching needs to know about an inventory."""

    def __init__(
        self,
        group_names: Sequence[str],
        host_names: Sequence[str],
        group_hosts: Callable[[str], list[str]],
        implicit_localhost: Callable[[str], str | None],
    ) -> None:
        self.group_names = group_names
        self.host_names = host_names
        self.host_set = frozenset(host_names)
        self.group_hosts = group_hosts
        self.implicit_localhost = implicit_localhost
        self._term_cache: dict[str, list[str]] = {}

    def evaluate(self, terms: Iterable[str]) -> list[str]:
        """Hosts selected by already-split terms (may hold duplicates; callers deduplicate)."""
        hosts: list[str] = []
        for term in order_terms(list(terms)):
            if term in self.host_set:
                hosts.append(term)
                continue
            matched = self.match_term(term)
            if term[0] == "!":
                drop = set(matched)
                hosts = [h for h in hosts if h not in drop]
            elif term[0] == "&":
                keep = set(matched)
                hosts = [h for h in hosts if h in keep]
            else:
                present = set(hosts)
                hosts.extend(h for h in matched if h not in present)
        return hosts

    def match_term(self, term: str) -> list[str]:
        if term[0] in "&!":
            term = term[1:]
        if term not in self._term_cache:
            if not term:
                raise PatternError("empty host pattern after '&' or '!'")
            expr, subscript = split_subscript(term)
            self._term_cache[term] = apply_subscript(self._enumerate(expr), subscript, term)
        return self._term_cache[term]

    def _enumerate(self, expr: str) -> list[str]:
        regex = compile_term(expr)
        results: list[str] = []
        groups = [g for g in self.group_names if regex.match(g)]
        for group in groups:
            results.extend(self.group_hosts(group))
        if not groups or expr[0] == "~" or any(c in expr for c in _GLOB_CHARS):
            results.extend(h for h in self.host_names if regex.match(h))
        if not results and expr in LOCALHOST_NAMES:
            implicit = self.implicit_localhost(expr)
            if implicit is not None:
                results.append(implicit)
        return results


def deduplicate(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def select(index: PatternIndex, pattern: str, limit: str | Sequence[str] | None) -> list[str]:
    """Ansible's ``subset(limit)`` then ``get_hosts(pattern)``: the selected host names, in order."""
    hosts = index.evaluate(split_pattern(pattern))
    if limit is not None:
        limit_terms = expand_limit(limit)
        if limit_terms:
            allowed = set(index.evaluate(limit_terms))
            hosts = [h for h in hosts if h in allowed]
    return deduplicate(hosts)
