"""What several commands share on the command line: the parser class, argument types, and the flag
groups of the commands that sweep (``sweep``, ``investigate``): the host selection, timing, connection
and thresholds, and turning them into targets. A flag is defined here once, whoever uses it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import EXIT_USAGE, UsageError
from ..model import ConnectionSettings, Target
from ..units import parse_duration as _parse_duration

if TYPE_CHECKING:
    from ..scale import Scale

EXIT_CODES_TEXT = (
    "Exit codes: 0 all OK, 1 some WARNING, 2 some CRITICAL, 3 UNKNOWN (a host could not be "
    "measured and none warned), 64 usage or configuration error."
)


def duration_arg(maximum: float = 3600.0, *, allow_zero: bool = False) -> Callable[[str], float]:
    """An argparse type: ``10``, ``10s``, ``1m``, ``500ms``, ``7d`` → seconds, within bounds."""

    def parse(text: str) -> float:
        try:
            return _parse_duration(text, maximum=maximum, allow_zero=allow_zero)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


parse_duration = duration_arg()  # the sweep's durations: more than 0, at most an hour


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def metric_arg(text: str) -> str:
    """An argparse type: a named rate (``resets_sent``) or a kernel counter (``OutRsts``)."""
    from ..measure.rules import is_metric

    if not is_metric(text):
        raise argparse.ArgumentTypeError(f"unknown metric {text!r} (e.g. resets_sent, estab_resets, OutRsts)")
    return text


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """--db for the commands that read the history (sweep has its own, with its audit flags)."""
    parser.add_argument("--db", default=None, metavar="PATH", help="the history database (default: as sweep)")


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """PATTERN, -i and -l, as for Ansible."""
    parser.add_argument(
        "pattern",
        nargs="?",
        default="all",
        help="Ansible host pattern: all, a group, a host, web:&prod, web:!db, ~regex, g[0:2] (default: all)",
    )
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        default=[],
        metavar="INVENTORY",
        help="inventory file or directory, as for Ansible; may be given several times",
    )
    add_limit_argument(parser)
    add_inventory_cache_argument(parser)


def add_limit_argument(parser: argparse.ArgumentParser) -> None:
    """-l/--limit: as in Ansible, the last one given counts (and we say so when there are several)."""
    parser.add_argument(
        "-l",
        "--limit",
        action="append",
        default=[],
        metavar="SUBSET",
        help="further limit the selected hosts with a pattern (web:&prod), or @FILE with one pattern "
        "a line; as in Ansible, given twice only the last one counts",
    )


INVENTORY_CACHE_DEFAULT = 300.0  # seconds; the inventory layer's own default for library callers is the same


def add_inventory_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory-cache",
        type=duration_arg(7 * 86400, allow_zero=True),
        default=INVENTORY_CACHE_DEFAULT,
        metavar="DURATION",
        help="reuse what ansible-inventory made of a plugin config (aws_ec2.yml, ...) for this long, so "
        "that cron and repeated runs do not call a cloud API each time; 0: every run "
        f"(default: {INVENTORY_CACHE_DEFAULT:g}s)",
    )


def inventory_load_options(args: argparse.Namespace) -> Any:
    """How the inventory layer loads sources for this command: the cache and the ansible.cfg in force."""
    import os
    from pathlib import Path

    from ..inventory import LoadOptions
    from ..settings import ansible_cfg_path

    cfg = ansible_cfg_path(os.environ, Path.cwd(), Path(os.path.expanduser("~")))
    return LoadOptions(cache_ttl=args.inventory_cache, ansible_cfg=str(cfg) if cfg else None)


def selected_limit(args: argparse.Namespace) -> str | None:
    """The --limit that counts: the last one, as in Ansible; several are named on stderr, not dropped
    in silence."""
    limits: list[str] = args.limit or []
    if len(limits) > 1:
        sys.stderr.write(
            f"fleetrst: warning: --limit given {len(limits)} times: only the last one ({limits[-1]!r}) "
            "counts, as in Ansible; to combine them write one pattern, e.g. -l 'web:&prod'\n"
        )
    return limits[-1] if limits else None


def print_warnings(warnings: list[str]) -> None:
    """What the inventory warned about (values from the layer below), once each, on stderr."""
    for warning in dict.fromkeys(warnings):
        sys.stderr.write(f"fleetrst: warning: {warning}\n")


def add_timing_arguments(
    parser: argparse.ArgumentParser, *, window_default: float
) -> argparse._ArgumentGroup:
    """--window, --timeout and -f/--forks; returns the group so that a command can add to it."""
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--window",
        type=parse_duration,
        default=window_default,
        metavar="DURATION",
        help=f"time between the two readings, slept on the host (default: {window_default:g}s)",
    )
    timing.add_argument(
        "--timeout",
        type=parse_duration,
        default=10.0,
        metavar="DURATION",
        help="a host's allowance beyond the window, counted from its turn (when its handshake "
        "starts, never while it waits for one): connect, run and read within window + timeout or it "
        "is reported as timed out (default: 10s)",
    )
    timing.add_argument(
        "-f",
        "--forks",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N hosts in flight at once (default: every selected host, as many as the "
        "open-file limit and memory allow, said on stderr when they bind). Not Ansible's forks: an "
        "Ansible fork is a worker process, a fleetrst host in flight is one idle SSH channel "
        "sleeping its window, so ansible.cfg's forks is not read; -f caps when you give it",
    )
    return timing


def add_scale_arguments(timing: argparse._ArgumentGroup) -> None:
    """--procs, --dask and --handshakes: where the hosts in flight run, and how many handshake at once."""
    timing.add_argument(
        "--procs",
        type=positive_int,
        default=None,
        metavar="N",
        help="sweep on N worker processes, each its own event loop (one core) with its share of the "
        "hosts (default: every core from 500 hosts on, else 1)",  # fleetrst.scale.PROCS_MIN_HOSTS
    )
    timing.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="sweep on a Dask cluster: shards of hosts run on its workers, with their own SSH keys "
        "and known_hosts; a host's fleetrst_site variable pins it to workers with that resource "
        "(e.g. tcp://scheduler:8786; needs pip install 'fleetrst[dask]'; docs/SCALING.md)",
    )
    timing.add_argument(
        "--handshakes",
        type=positive_int,
        default=100,
        metavar="N",
        help="at most N SSH handshakes at once on each event loop; a host's timeout starts when its "
        "handshake does, never while it waits for one (default: 100)",
    )


def scale(args: argparse.Namespace) -> Scale:
    """Where the hosts are swept: --dask (also the ``dask`` setting; ``--dask none`` overrides it) or
    --procs (see :func:`add_scale_arguments`)."""
    from ..scale import Scale
    from ..settings import BY_NAME

    dask = args.dask
    if dask is not None and dask.strip().lower() == "none":
        dask = None
    if dask is not None:
        try:
            dask = BY_NAME["dask"].convert(dask)
        except ValueError as exc:
            raise UsageError(f"--dask {exc}") from None
        if args.procs is not None:
            raise UsageError(
                f"--procs and --dask {dask} exclude each other: a Dask sweep runs on the cluster's "
                "workers (use --dask none to sweep here)"
            )
    return Scale(procs=args.procs, dask=dask)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """-c, -u, --private-key, -b, --become-user, --known-hosts, --host-key-checking."""
    conn = parser.add_argument_group("connection (inventory variables win over these, as in Ansible)")
    conn.add_argument(
        "-c",
        "--connection",
        choices=("ssh", "paramiko", "local"),
        default=None,
        help="connection type: ssh (asyncssh, the default), paramiko, or local",
    )
    conn.add_argument("-u", "--user", default=None, help="connect as this user")
    conn.add_argument(
        "--private-key",
        "--key-file",
        dest="private_key",
        default=None,
        metavar="FILE",
        help="use this private key file",
    )
    conn.add_argument(
        "-b",
        "--become",
        action="store_true",
        default=None,
        help="run privileged steps through sudo -n (never prompts)",
    )
    conn.add_argument("--become-user", default=None, metavar="USER", help="sudo to this user (default: root)")
    conn.add_argument(
        "--known-hosts",
        action="append",
        default=[],
        metavar="FILE",
        help="also trust the host keys in FILE (besides ~/.ssh/known_hosts)",
    )
    conn.add_argument(
        "--host-key-checking",
        choices=("yes", "no", "accept-new"),
        default=None,
        help="yes (default): refuse unknown or changed host keys; accept-new: trust "
        "and record unknown ones, refuse changed ones; no: check nothing",
    )


def add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    """--warn and --crit, as METRIC=RATE, several times."""
    judge = parser.add_argument_group("thresholds")
    judge.add_argument(
        "--warn",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="warning level for a metric in events/s, e.g. resets_sent=20; beats the "
        "inventory's fleetrst_thresholds",
    )
    judge.add_argument(
        "--crit",
        action="append",
        default=[],
        metavar="METRIC=RATE",
        help="critical level for a metric in events/s, e.g. resets_sent=100",
    )


def thresholds(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    """The --warn and --crit limits, checked: (warn, crit). Raises UsageError."""
    from ..measure.rules import ThresholdError, parse_cli_threshold

    try:
        warn = dict(parse_cli_threshold(item) for item in args.warn)
        crit = dict(parse_cli_threshold(item) for item in args.crit)
    except ThresholdError as exc:
        raise UsageError(str(exc)) from exc
    return warn, crit


def _local_target() -> Target:
    return Target(
        name="localhost", groups=(), connection=ConnectionSettings(address="localhost", connection="local")
    )


def select_targets(args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    """The targets, and their names for --list-hosts. Raises InventoryError/UsageError."""
    if not args.inventory:
        from fnmatch import fnmatchcase

        if args.limit or not (args.pattern == "all" or fnmatchcase("localhost", args.pattern)):
            raise UsageError(
                f"no inventory given (-i), so only this machine (localhost) can be swept; "
                f"pattern {args.pattern!r} does not select it"
            )
        return [_local_target()], ["localhost"]
    from ..inventory import ConnectionDefaults, load_inventory  # not for this machine alone: ~40 ms

    limit = selected_limit(args)
    inventory = load_inventory(args.inventory, inventory_load_options(args))
    names = inventory.select(args.pattern, limit=limit)
    if not names:
        print_warnings(inventory.warnings)
        where = f"pattern {args.pattern!r}" + (f" with limit {limit!r}" if limit else "")
        raise UsageError(f"{where} matches no host in {', '.join(args.inventory)}")
    defaults = ConnectionDefaults(
        user=args.user,
        private_key=args.private_key,
        connection=args.connection,
        become=args.become,
        become_user=args.become_user,
        known_hosts=tuple(args.known_hosts),
        host_key_checking=args.host_key_checking,
        connect_timeout=None,
    )
    targets = inventory.targets(names, defaults)
    print_warnings(inventory.warnings)
    return targets, names


def report_labels(args: argparse.Namespace) -> dict[str, Any]:
    """What a fleet report records of the selection: the pattern, the limit and the inventories."""
    limit = args.limit[-1] if args.limit else None  # the one that counted (see selected_limit)
    return {"pattern": args.pattern, "limit": limit, "inventories": args.inventory}
