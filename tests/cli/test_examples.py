"""The cron and systemd examples use flags and settings that exist."""

from __future__ import annotations

import shlex
from pathlib import Path

from fleetrst import settings as config
from fleetrst.cli.main import build_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _parses(command: str) -> None:
    argv = shlex.split(command)
    assert Path(argv[0]).name == "fleetrst"
    args = build_parser()[0].parse_args(argv[1:])
    assert (
        args.command == "sweep" and args.quiet and args.textfile.endswith(".prom") and args.lock_wait == 120
    )


def test_the_crontab_line_parses() -> None:
    lines = [line for line in (EXAMPLES / "cron/crontab").read_text().splitlines() if line.startswith("*/5")]
    assert len(lines) == 1
    _parses(" ".join(lines[0].split()[5:]))


def test_the_systemd_service_command_parses_and_the_settings_file_is_valid(tmp_path: Path) -> None:
    text = (EXAMPLES / "systemd/fleetrst-audit.service").read_text().replace("\\\n", " ")
    [exec_start] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    _parses(exec_start.removeprefix("ExecStart="))
    settings = config.resolve(
        {"FLEETRST_CONFIG": str(EXAMPLES / "systemd/fleetrst.toml")}, tmp_path, tmp_path
    )
    assert settings.values["rules"].value == "netdata-history"
    assert settings.values["history_audits"].value == 12
