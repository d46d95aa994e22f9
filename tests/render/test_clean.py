"""``clean``: what a host or an inventory wrote, made safe for a terminal, exactly as documented.

Not just "no control character comes out" (tests/render/test_fleet.py): each character is shown as
the escape the docs promise, line breaks and tabs become one space, and nothing else changes. Written
so that every mutant of ``clean`` that changes what it returns fails here (benchmarks/mutation.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.render.text import clean
from tests.helpers import examples

# Every character clean() escapes: C0 but \t and \n (which become a space), DEL and C1, the line and
# paragraph separators, and the bidi embeddings, overrides and isolates.
ESCAPED = (
    [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def shown(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@pytest.mark.parametrize("code", ESCAPED, ids=[f"U+{c:04X}" for c in ESCAPED])
def test_each_control_character_is_shown_as_its_escape(code: int) -> None:
    assert clean(f"a{chr(code)}b") == f"a{shown(code)}b"


def test_the_escapes_of_the_examples_the_docs_give() -> None:
    assert clean("\x1b[2J") == "\\x1b[2J"
    assert clean("\x07") == "\\x07"
    assert clean("\x9b") == "\\x9b"
    assert clean("\u202e") == "\\u202e"
    assert clean("\u2028") == "\\u2028"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one\ntwo", "one two"),
        ("one\r\ntwo", "one two"),  # one space for a CRLF, not an escaped \r and a space
        ("one\ttwo", "one two"),
        ("a\r\n\r\nb", "a  b"),
        ("a\rb", "a\\x0db"),  # a lone CR can move the cursor: shown, not obeyed
        ("\n\t\r\n", "   "),
    ],
)
def test_line_breaks_and_tabs_become_one_space_each(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize("code", [0x20, 0x7E, 0xA0, 0xE9, 0x100, 0x2027, 0x202F, 0x2065, 0x206A, 0x1F600])
def test_printable_text_around_the_escaped_ranges_is_left_alone(code: int) -> None:
    assert clean(f"x{chr(code)}y") == f"x{chr(code)}y"


SAFE = st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\u2028\u2029" + "".join(
    chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
))  # fmt: skip


def cleaned_piece(piece: str) -> str:
    if piece in ("\n", "\t"):
        return " "
    if len(piece) == 1 and ord(piece) in ESCAPED:
        return shown(ord(piece))
    return piece


SPECIAL = st.sampled_from([chr(c) for c in ESCAPED] + ["\n", "\t"])


@examples(200)
@given(st.lists(st.one_of(st.text(SAFE, max_size=5), SPECIAL)))
def test_clean_is_the_concatenation_of_each_pieces_clean(pieces: list[str]) -> None:
    # Piece by piece: safe text is kept, each special character becomes its own escape or a space.
    text = "".join(pieces)
    if "\r\n" in text:
        return  # a CRLF split across two pieces is one space, not two: shown above
    assert clean(text) == "".join(cleaned_piece(p) for p in pieces)
