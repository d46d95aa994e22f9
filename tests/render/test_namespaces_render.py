"""Containers in every output: rows ``host › name`` under their host, JSON ``namespaces``, Prometheus'
``container`` label, and the history's rows — from the namespaces of a real capture
(tests/fixtures/netns/root.out: runc ``storm`` storming, a pod, two ``ip netns``)."""

from __future__ import annotations

import json
from pathlib import Path

from fleetrst.history.store import HistoryStore
from fleetrst.measure.namespaces import namespace_judge
from fleetrst.measure.probe import parse_probe_output
from fleetrst.model import FleetReport, HostResult, Rates
from fleetrst.render.fleet import render_table
from fleetrst.render.monitoring import render_prometheus
from fleetrst.render.schema import render_json
from tests.helpers import host

NOT_ROOT = "namespaces not listed: the probe's user is not root (use -b to list them through sudo)"
ROOT_OUT = (Path(__file__).parents[1] / "fixtures" / "netns" / "root.out").read_text()


def report() -> FleetReport:
    snapshots = parse_probe_output(ROOT_OUT)
    namespaces, unseen = namespace_judge({}, "host h001", {}, {}).results(ROOT_OUT, snapshots[-1].boot_id)
    h001 = HostResult(
        "h001", "10.0.0.1", ("fleet",), "ok", rates=Rates(1.0, {"resets_sent": 0.0}), namespaces=namespaces,
        namespaces_unseen=unseen,
    )  # fmt: skip
    quiet = HostResult(
        "h002", "10.0.0.2", ("fleet",), "ok", rates=Rates(1.0, {}), namespaces=(),
        namespaces_unseen=(NOT_ROOT,),
    )  # fmt: skip
    return FleetReport(
        hosts=(quiet, h001, host("h003", "warning", sent=80.0)),
        started_at="2026-11-29T10:00:00+00:00",
        duration_s=1.2,
        window_s=1.0,
    )


def test_the_table_puts_each_container_under_its_host_worst_first_and_keeps_the_host_row() -> None:
    lines = render_table(report()).splitlines()
    names = [line.split("  ")[0].strip() for line in lines[2:7]]
    assert names[:2] == ["h001", "h001 › storm"] and sorted(names[2:]) == sorted(
        ["h001 › blue", "h001 › green", "h001 › shop/cart-7d9f"]
    )
    assert lines[2].split()[1] == "OK" and lines[3].split()[3] in ("WARNING", "CRITICAL")
    assert "1 container tripped" in render_table(report())
    assert "h002: namespaces not listed: the probe's user is not root" in render_table(report())


def test_a_host_whose_container_tripped_comes_first_and_quiet_hosts_are_left_out_with_q() -> None:
    text = render_table(report(), only_problems=True)
    rows = [line.split()[0] for line in text.splitlines()[2:] if line.startswith("h0")]
    assert rows[:2] == ["h001", "h001"] and "h002" not in rows


def test_json_has_every_namespace_with_its_name_runtime_and_identity() -> None:
    doc = json.loads(render_json(report()))
    h001 = next(h for h in doc["hosts"] if h["host"] == "h001")
    assert doc["hosts"][0]["host"] == "h001"  # worst first: its container is critical or warning
    assert (h001["namespaces"][0]["runtime"], h001["namespaces"][0]["name"]) == ("runc", "storm")
    storm = h001["namespaces"][0]
    assert storm["key"] == f"{storm['inode']}:{storm['pid']}:{storm['start_ticks']}"
    assert doc["summary"]["namespaces_tripped"] == 1
    h003 = next(h for h in doc["hosts"] if h["host"] == "h003")
    assert h003["namespaces"] is None and h003["namespaces_unseen"] == []


def test_prometheus_labels_each_container() -> None:
    text = render_prometheus(report())
    assert 'fleetrst_container_status{host="h001",container="storm",runtime="runc"}' in text
    pod = 'host="h001",container="shop/cart-7d9f",runtime="kubernetes"'
    assert f"fleetrst_container_resets_sent_per_second{{{pod}}} 0.0" in text


def test_the_history_keeps_a_row_per_namespace_per_sweep(tmp_path: Path) -> None:
    r = report()
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        sweep = store.record(r, r.exit_code)
        rows = store.namespace_history("h001")
    assert rows[0]["name"] == "storm" and len(rows) == 4
    assert all(row["sweep_id"] == sweep for row in rows)
    assert rows[0]["status"] in ("warning", "critical") and rows[0]["rates"]["resets_sent"] > 100
