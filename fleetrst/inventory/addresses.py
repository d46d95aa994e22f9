"""Host names, ports and ranges, parsed the way Ansible parses them.

``parse_address`` splits ``host:port`` / ``[v6]:port`` and checks the host looks like an IPv4
address, an IPv6 address or a DNS-style name (each of which may hold ``[a:b]`` ranges);
``expand_host_pattern`` turns ``www[01:03].example.com:2222`` into hosts and a port. The rules and
their oddities (an unparseable entry is taken verbatim as a host name; ``[3:1]`` yields nothing;
``[001:10]`` is an error) follow ansible-core 2.19.
"""

from __future__ import annotations

import re
import string

# A range in brackets: numeric everywhere, hexadecimal inside IPv6, single letters in names.
_NUM_RANGE = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]"
_HEX_RANGE = r"\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]"
_NAME_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"

_V4_PART = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUM_RANGE})"
_V6_PART = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_V4_TAIL = rf"(?:{_V6_PART}\.){{3}}{_V6_PART}"
_LABEL = rf"(?:\w|{_NAME_RANGE})(?:[\w-]|{_NAME_RANGE})*(?<![_-])"

_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_V4_PART}\.){{3}}{_V4_PART}$", re.I)
_IPV6 = re.compile(
    "^(?:"
    + "|".join(
        [
            rf"(?:{_V6_PART}:){{7}}{_V6_PART}",
            rf"(?:{_V6_PART}:){{1,6}}:",
            rf"(?:{_V6_PART}:)(?::{_V6_PART}){{1,6}}",
            rf"(?:{_V6_PART}:){{2}}(?::{_V6_PART}){{1,5}}",
            rf"(?:{_V6_PART}:){{3}}(?::{_V6_PART}){{1,4}}",
            rf"(?:{_V6_PART}:){{4}}(?::{_V6_PART}){{1,3}}",
            rf"(?:{_V6_PART}:){{5}}(?::{_V6_PART}){{1,2}}",
            rf"(?:{_V6_PART}:){{6}}(?::{_V6_PART})",
            rf":(?::{_V6_PART}){{1,6}}",
            rf"{_V6_PART}?::",
            rf"(?:0:){{6}}{_V4_TAIL}",
            rf"::(?:ffff:)?{_V4_TAIL}",
            rf"(?:0:){{5}}ffff:{_V4_TAIL}",
        ]
    )
    + ")$",
    re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)

LOCALHOST_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class AddressError(ValueError):
    """The text is not a host identifier (with an optional port)."""


class RangeError(ValueError):
    """A ``[begin:end:step]`` range that Ansible rejects."""


def is_ip_address(name: str) -> bool:
    return bool(_IPV4.match(name) or _IPV6.match(name))


def parse_address(address: str, allow_ranges: bool = False) -> tuple[str, int | None]:
    """Split ``address`` into host and port; raise AddressError if the host part is not valid."""
    port: int | None = None
    # Both forms are tried in turn, as Ansible does: "[h:1]:2" ends up as host "h", port 1.
    for form in (_BRACKETED_HOSTPORT, _HOSTPORT):
        m = form.match(address)
        if m:
            address, port = m.group(1), int(m.group(2))
    if not (_IPV4.match(address) or _IPV6.match(address) or _HOSTNAME.match(address)):
        raise AddressError(f"not a valid network hostname: {address}")
    if not allow_ranges and "[" in address:
        raise AddressError(f"range in host name where none is allowed: {address}")
    return address, port


def expand_range(text: str) -> list[str]:
    """Expand the first ``[begin:end(:step)]`` in ``text``, recursively, into host names."""
    # Ansible cuts at the first "[" and the first "]", whichever comes first, through a marker
    # character: a name holding that marker, or missing either bracket, is malformed.
    opening, closing = text.find("["), text.find("]")
    if opening < 0 or closing < 0 or "|" in text:
        raise RangeError(f"malformed host range in {text!r}")
    cut1, cut2 = sorted((opening, closing))
    head, body, tail = text[:cut1], text[cut1 + 1 : cut2], text[cut2 + 1 :]
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError("host range must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise RangeError("host range must specify end value")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if len(end) != width:
            raise RangeError("host range must specify equal-length begin and end formats")
    values: list[str]
    try:
        first = string.ascii_letters.index(begin)
        last = string.ascii_letters.index(end)
        if first > last:
            raise RangeError("host range must have begin <= end")
        values = list(string.ascii_letters[first : last + 1 : _int(step_text)])
    except ValueError as exc:
        if isinstance(exc, RangeError):
            raise
        values = [str(n) for n in range(_int(begin), _int(end) + 1, _int(step_text))]
    names: list[str] = []
    for value in values:
        name = f"{head}{value.zfill(width) if width else value}{tail}"
        if "[" in name:
            names.extend(expand_range(name))
        else:
            names.append(name)
    return names


def _int(text: str) -> int:
    return int(text)  # Python's int(): "+1", " 1" and "1_0" are accepted, as in Ansible


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """Turn one inventory host entry into host names and an optional port (Ansible's rules)."""
    try:
        name, port = parse_address(pattern, allow_ranges=True)
    except AddressError:
        name, port = pattern, None
    if "[" in name:
        try:
            return expand_range(name), port
        except RangeError:
            raise
        except ValueError as exc:
            raise RangeError(f"bad host range in {pattern!r}: {exc}") from exc
    return [name], port
