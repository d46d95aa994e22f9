"""Audits over time on the command line: history, monitoring outputs, settings, the cron lock.

cli.py calls these; this module owns everything audits add to the command line.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import FleetReport, Target

# Subcommands this module adds: name -> runner (called with the parsed arguments; returns the exit code).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# Output formats this module adds to -o (merged over cli's table/json/csv; may replace "table").
RENDERERS: dict[str, Callable[[FleetReport, argparse.Namespace], str]] = {}


def apply_config_defaults(parser: argparse.ArgumentParser, sweep: argparse.ArgumentParser) -> None:
    """Set defaults from the config file and the environment before the command line is parsed."""


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags audits add to ``fleetrst sweep``."""


def add_subcommands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Subcommands audits add (``history``, ``report``, ``config``)."""


@dataclass
class Audit:
    """One sweep's audit: settings for the sweep going in, and the record of it coming out."""

    option_overrides: dict[str, Any] = field(default_factory=dict)  # extra SweepOptions fields

    def record(self, report: FleetReport, exit_code: int) -> None:
        """Store the sweep (history) and feed monitoring (textfile)."""


@contextlib.contextmanager
def audit_sweep(args: argparse.Namespace, targets: Sequence[Target]) -> Iterator[Audit]:
    """Around one sweep: take the cron lock, yield the audit, release the lock."""
    yield Audit()
