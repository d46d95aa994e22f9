"""Monitoring outputs: Prometheus (read back by prometheus_client's own parser), Nagios, JSON lines,
and the textfile written for node_exporter."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fleetrst.cli.files import write_textfile
from fleetrst.render.monitoring import render_nagios, render_prometheus
from fleetrst.render.schema import render_jsonl
from tests.helpers import host, report

NASTY = 'we"ird\\host\nname'


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_prometheus_output_parses_and_says_what_each_host_measured() -> None:
    text = render_prometheus(
        report([host("h001"), host("h002", "warning", sent=120.5), host("h003", "unreachable")])
    )
    got = samples(text)
    assert got[("fleetrst_host_up", (("host", "h001"),))] == 1
    assert got[("fleetrst_host_up", (("host", "h003"),))] == 0
    assert got[("fleetrst_host_status", (("host", "h002"), ("status", "warning")))] == 1
    assert got[("fleetrst_host_status", (("host", "h003"), ("status", "unreachable")))] == 3
    assert got[("fleetrst_host_resets_sent_per_second", (("host", "h002"),))] == 120.5
    assert ("fleetrst_host_resets_sent_per_second", (("host", "h003"),)) not in got, (
        "no rate when not measured"
    )
    assert got[("fleetrst_sweep_duration_seconds", ())] == 2.2
    assert got[("fleetrst_sweep_hosts", (("status", "warning"),))] == 1
    assert got[("fleetrst_sweep_exit_code", ())] == 1


def test_label_values_from_an_inventory_are_escaped() -> None:
    text = render_prometheus(report([host(NASTY, "warning", sent=60.0, groups=('g"1', "g\\2"))]))
    got = samples(text)
    assert got[("fleetrst_host_up", (("host", NASTY),))] == 1, "the parser gets the exact name back"
    info = [k for k in got if k[0] == "fleetrst_host_info"]
    assert dict(info[0][1])["groups"] == 'g"1,g\\2'
    assert all(line.startswith(("#", "fleetrst_")) for line in text.splitlines()), "no line broken apart"


def test_nagios_is_one_status_line_with_perfdata() -> None:
    text = render_nagios(
        report([host("h001"), host("h002", "critical", sent=300.0), host("web|x", "warning", sent=60.0)])
    )
    assert text.count("\n") == 1
    status, _, perf = text.rstrip("\n").partition(" | ")
    assert status.startswith("FLEETRST CRITICAL - 1 critical: h002; 1 warning: web/x; 1 of 3 hosts ok")
    assert "|" not in status, "a host name cannot start the perfdata"
    fields = perf.split(" ")
    assert "hosts=3" in fields and "critical=1" in fields
    assert perf.endswith(" 'h002 resets_sent'=300.000;;250;0 'web/x resets_sent'=60.000;50;;0"), perf
    assert render_nagios(report([host("h001")])).startswith("FLEETRST OK - 1 of 1 hosts ok |")
    assert render_nagios(report([host("h001", "unreachable")])).startswith(
        "FLEETRST UNKNOWN - 1 unreachable: h001"
    )


def test_jsonl_is_one_object_a_host() -> None:
    lines = render_jsonl(
        report([host("h001"), host("h002", "warning", sent=70.0)], pattern="web")
    ).splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["host"] for d in docs] == ["h002", "h001"], "worst first"
    assert docs[0]["schema"] == "fleetrst.host" and docs[0]["pattern"] == "web"
    assert docs[0]["started_at"] == "2026-11-20T10:00:00+00:00" and docs[0]["rates"]["resets_sent"] == 70.0


def test_the_textfile_is_replaced_atomically_and_readable_by_the_exporter(tmp_path: Path) -> None:
    path = tmp_path / "fleetrst.prom"
    big = render_prometheus(report([host(f"h{i:04d}", sent=float(i)) for i in range(2000)]))
    small = render_prometheus(report([host("h001")]))
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:  # node_exporter's side: every read is one whole file
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.add(path.read_text())

    t = threading.Thread(target=reader)
    t.start()
    for i in range(30):
        write_textfile(path, big if i % 2 else small)
    stop.set()
    t.join()
    assert seen <= {big, small}, "a reader never sees a half-written file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["fleetrst.prom"], "no temporary files left behind"
