"""Every step of the runbook is bounded in size, shown by running it: the script runs under a real
``sh`` whose PATH holds a shim where ``ss``, ``lsof``, ``id`` (the context step), ``journalctl`` and
``tcpdump`` each print a MiB, far past any step's cap, and what comes out is measured."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from fleetrst.investigate.script import CAPS, KIB, Plan, build_script, parse_runbook_output
from fleetrst.transport.base import DEFAULT_MAX_OUTPUT
from tests.shim import SYSTEM_PATH, PathShim

NONCE = "0123456789abcdef"
FLOOD_BYTES = 1024 * KIB  # more than any step's cap (the biggest is 192 KiB)
_TEXT_FLOOD = f"/usr/bin/yes 'flood flood flood' | /usr/bin/head -c {FLOOD_BYTES}"
FLOODS = {
    "ss": _TEXT_FLOOD,
    "lsof": _TEXT_FLOOD,  # runs: the flood names no owner ("users:"), as when ss cannot see them
    "id": _TEXT_FLOOD,  # the last thing the context step prints
    "journalctl": _TEXT_FLOOD,
    "dmesg": _TEXT_FLOOD,
    # `tcpdump -w -` writes the pcap (binary); `tcpdump -r FILE` prints it as text
    "tcpdump": f"""case " $* " in
  *" -r "*) {_TEXT_FLOOD} ;;
  *) /usr/bin/head -c {FLOOD_BYTES} /dev/urandom ;;
esac""",
}
TEXT_STEPS = ("ss", "listeners", "lsof", "samples", "context", "journal", "capture-text")


def run_flooded(tmp_path: Path, plan: Plan) -> tuple[bytes, PathShim]:
    shim = PathShim(tmp_path, replace=FLOODS)
    script = build_script(plan, NONCE)
    proc = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        env={"PATH": f"{shim.path}:{SYSTEM_PATH}"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, shim


def test_every_step_keeps_at_most_its_cap_of_a_tool_that_floods(tmp_path: Path) -> None:
    plan = Plan(capture_s=1, save_pcap=True, logs=True, samples=3, step_timeout_s=10)
    stdout, shim = run_flooded(tmp_path, plan)
    out = parse_runbook_output(stdout.decode(errors="replace"), NONCE)
    assert out.complete and out.fatal is None
    assert {"ss", "lsof", "id", "journalctl", "tcpdump"} <= set(shim.names()), "every flood ran"
    for name in TEXT_STEPS:
        step = out.steps[name]
        assert step.cap == CAPS[name], name
        assert step.bytes == step.cap and step.truncated, f"{name}: kept {step.bytes} of a 1 MiB flood"
        assert len(step.stdout.encode()) <= step.cap, name
    assert out.pcap_base64 is not None
    assert len(base64.b64decode(out.pcap_base64)) == plan.pcap_max_bytes, "the saved pcap is capped"
    assert len(stdout) <= plan.max_output, "the exec's output cap covers every step and the framing"


def test_the_capture_is_bounded_in_packets_snap_length_and_time(tmp_path: Path) -> None:
    plan = Plan(capture_s=1, step_timeout_s=10)
    _, shim = run_flooded(tmp_path, plan)
    (capture,) = [run for run in shim.runs() if run[0] == "tcpdump" and "-w" in run]
    args = capture[1:]
    assert args[args.index("-c") + 1] == str(plan.max_packets)
    assert args[args.index("-s") + 1] == "128"
    timeouts = [run for run in shim.runs() if run[0] == "timeout" and "tcpdump" in run]
    assert [run[1:3] for run in timeouts if "-w" in run] == [["1", "tcpdump"]], "timeout(1) ends it"


def test_the_exec_caps_and_deadlines_cover_every_shape_of_plan() -> None:
    full = Plan(capture_s=3, save_pcap=True, logs=True, samples=50)
    assert full.max_output < DEFAULT_MAX_OUTPUT * 2
    assert Plan().max_output < 400 * KIB and Plan(capture_s=3, logs=True).max_output < 1024 * KIB
    assert full.deadline_s >= 3
