"""The investigation's command-line surface: sweep flags, the ``investigate`` command.

cli.py calls these; this module owns everything the investigation adds to the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..sweep import Investigator

# Subcommands this module adds: name -> runner (called with the parsed arguments; returns the exit code).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags the investigation adds to ``fleetrst sweep``."""


def add_subcommands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Subcommands the investigation adds (``fleetrst investigate``)."""


def investigator_from_args(args: argparse.Namespace) -> Investigator | None:
    """The investigator the sweep runs with, or None."""
    return None
