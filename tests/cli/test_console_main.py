"""The ``fleetrst`` command's entry: main's exit code, with the collector's last pass skipped."""

from __future__ import annotations

import gc
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

cli_main = importlib.import_module("fleetrst.cli.main")  # fleetrst.cli.main is also the function


def test_the_command_exits_with_mains_code_its_objects_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "main", lambda: 3)
    try:
        with pytest.raises(SystemExit) as exited:
            cli_main.console_main()
        assert exited.value.code == 3
        assert gc.get_freeze_count() > 10_000, "the exit's collection has nothing left to traverse"
    finally:
        gc.unfreeze()


def test_what_the_command_writes_is_all_there_at_its_exit(tmp_path: Path) -> None:
    """Frozen objects are not collected at the exit; the output and the history are still written."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "--window", "0.2", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert [h["host"] for h in report["hosts"]] == ["localhost"]
    assert done.returncode == report["exit_code"]
    history = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "history", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert [(r["host"], r["audits"]) for r in rows if r["metric"] == "resets_sent"] == [("localhost", 1)]
