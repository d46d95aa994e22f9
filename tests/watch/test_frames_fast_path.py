"""A watch reads a host's frames after the first at the places the full parser found (``_Layout``):
the same snapshots, the same errors, for frames the real loop printed under a real shell here."""

from __future__ import annotations

import itertools
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetrst.measure.counters import ProbeParseError
from fleetrst.measure.probe import WatchFrames, watch_command
from fleetrst.model import Snapshot

TEXT = subprocess.run(
    ["sh", "-c", watch_command(0.01, 4)], capture_output=True, text=True, timeout=30, check=True
).stdout
FRAMES = ["@@fleetrst-watch" + part for part in TEXT.split("@@fleetrst-watch")[1:]]


def read(frames: WatchFrames, text: str) -> list[Snapshot]:
    out = []
    for line in text.split("\n"):
        got = frames.feed(line)
        if got is not None:
            out.append(got[1])
    return out


def full(text: str) -> Snapshot:
    """The frame through the probe's full parser (a fresh reader has no layout yet)."""
    [snapshot] = read(WatchFrames(), text)
    return snapshot


def test_later_frames_read_at_the_known_places_are_what_the_full_parser_reads() -> None:
    frames = WatchFrames()
    assert read(frames, TEXT) == [full(frame) for frame in FRAMES]
    assert frames._layout is not None, "the layout was learnt"


def test_kept_counters_only_and_hosts_of_one_kernel_share_one_layout() -> None:
    keep = {"OutRsts", "AttemptFails", "ListenOverflows", "NoSuchCounter"}
    one, two = WatchFrames(keep=keep), WatchFrames(keep=keep)
    snapshots = read(one, TEXT) + read(two, TEXT)
    for snapshot, whole in zip(snapshots, [full(f) for f in FRAMES] * 2, strict=True):
        assert set(snapshot.tcp) == {"OutRsts", "AttemptFails"}
        assert set(snapshot.tcpext) == {"ListenOverflows"}
        assert snapshot.tcp["OutRsts"] == whole.tcp["OutRsts"] and snapshot.uptime_s == whole.uptime_s
    assert one._layout is two._layout


def _damaged(frame: str, old: str, new: str) -> str:
    assert old in frame
    return frame.replace(old, new, 1)


def _tcpext_values(frame: str) -> str:
    return [line for line in frame.split("\n") if line.startswith("TcpExt: ")][1]


def _first_tcpext_value(frame: str, value: str) -> str:
    values = _tcpext_values(frame)
    tokens = values.split(" ")
    return _damaged(frame, values, " ".join([tokens[0], value, *tokens[2:]]))


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: _first_tcpext_value(f, "12x"),  # not a number
        lambda f: _first_tcpext_value(f, "-5"),  # negative, in an unsigned counter
        lambda f: _first_tcpext_value(f, "١٢"),  # digits, but not ASCII ones
        lambda f: _damaged(f, _tcpext_values(f), _tcpext_values(f) + " 7"),  # one value too many
        lambda f: _damaged(f, "\n@@rc 0", "\ncat: /proc/net/netstat: Permission denied\n@@rc 1"),
    ],
)
def test_a_damaged_later_frame_gets_the_full_parsers_own_error(damage: object) -> None:
    first, second = FRAMES[0], damage(FRAMES[1])  # type: ignore[operator]
    with pytest.raises(ProbeParseError) as fresh:
        full(second)
    frames = WatchFrames()
    read(frames, first)
    with pytest.raises(ProbeParseError) as known:
        read(frames, second)
    assert str(known.value) == str(fresh.value)
    assert read(frames, FRAMES[2]) == [full(FRAMES[2])], "and the next frame is read afresh"


def test_a_frame_of_another_layout_and_a_new_boot_id_are_read_right() -> None:
    frames = WatchFrames()
    read(frames, FRAMES[0])
    longer = _damaged(FRAMES[1], "\nTcpExt:", "\nSomethingNew: 1\nSomethingNew: 2\nTcpExt:")
    assert read(frames, longer) == [full(longer)]
    boot = full(FRAMES[2]).boot_id
    rebooted = _damaged(FRAMES[2], boot, "0" * 8 + boot[8:])
    [snapshot] = read(frames, rebooted)
    assert snapshot.boot_id == "0" * 8 + boot[8:]


def test_frames_past_the_thousandth_are_read_as_the_first() -> None:
    """The loop runs for days: at 10 s a round it prints sample 1000 after 2.8 hours."""
    late = [
        frame.replace(f"sample {i}\n", f"sample {i + 99_998}\n").replace(
            f"@@end {i}\n", f"@@end {i + 99_998}\n"
        )
        for i, frame in enumerate(FRAMES[:3])
    ]
    frames = WatchFrames()
    got = []
    for frame in late:
        for line in frame.split("\n"):
            if (found := frames.feed(line)) is not None:
                got.append(found[0])
    assert got == [99_998, 99_999, 100_000]


# --- a batch of lines read as one frame (WatchFrames.whole) is what feeding them one by one gives ---

_PIECES = [
    *FRAMES,
    _first_tcpext_value(FRAMES[1], "12x"),
    _damaged(FRAMES[2], "\n@@rc 0", "\n@@rc 0\r"),
    _damaged(FRAMES[1], "\nTcp:", "\n@@end 1\nTcp:"),  # an end marker inside a frame
    _damaged(FRAMES[2], "\nTcp:", "\n@@fleetrst-watch v2 sample 9\nTcp:"),  # a header inside one
    _damaged(FRAMES[1], "\nTcp:", "\n@note\nTcp:"),  # a body line that starts as markers do
    _damaged(FRAMES[3], "\n@@end 3\n", "\n@@end 03\n"),
    _damaged(FRAMES[0], "@@fleetrst-watch v2", "@@fleetrst-watch v3"),
    _damaged(FRAMES[0], "sample 0\n", "sample 0\r\n"),
    "Last login: today\n",
    "@@end 2\n",
]


# What a watch keeps (the counters its rules judge and it serves), not MaxConn: a signed value that
# sends every frame through the full parser.
KEEP = frozenset({"OutRsts", "AttemptFails", "EstabResets", "InSegs", "ListenOverflows", "ListenDrops"})


def _outcomes(frames: WatchFrames, batches: list[list[str]], whole: bool) -> list[object]:
    out: list[object] = []
    for lines in batches:
        if whole and (found := frames.whole(lines)) is not None:
            out.append(found)
            continue
        for line in lines:
            try:
                found = frames.feed(line)
            except ProbeParseError as exc:
                out.append(str(exc))
                continue
            if found is not None:
                out.append(found)
    return out


@given(
    st.lists(st.sampled_from(range(len(_PIECES))), min_size=1, max_size=12),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_a_batch_read_whole_is_the_same_as_its_lines_fed_one_by_one(
    picks: list[int], cuts: list[int], by_frame: bool
) -> None:
    text = "".join(_PIECES[i] for i in picks)
    lines = text.split("\n")[:-1]
    if by_frame:  # as a host's writes arrive: one batch a piece
        batches = [piece.split("\n")[:-1] for piece in (_PIECES[i] for i in picks)]
    else:  # cut anywhere between lines
        edges = sorted({0, len(lines), *(c % (len(lines) + 1) for c in cuts)})
        batches = [lines[a:b] for a, b in itertools.pairwise(edges) if b > a]
    assert _outcomes(WatchFrames(keep=KEEP), batches, whole=True) == _outcomes(
        WatchFrames(keep=KEEP), [lines], whole=False
    )


def test_a_real_frame_arriving_whole_is_read_whole() -> None:
    frames = WatchFrames(keep=KEEP)
    first, second = (frame.split("\n")[:-1] for frame in FRAMES[:2])
    assert frames.whole(first) is None, "no layout yet: the full parser reads the first frame"
    assert _outcomes(frames, [first], whole=False) == [(0, WatchFrames(keep=KEEP)._kept(full(FRAMES[0])))]
    assert frames.whole(second) == (1, WatchFrames(keep=KEEP)._kept(full(FRAMES[1])))
