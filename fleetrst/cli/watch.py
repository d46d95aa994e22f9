"""``fleetrst watch``: Netdata's reset alarms for a whole fleet, live, over one connection per host.

On a terminal: a live full-screen table (``rich``) with keys to sort, filter and quit. Otherwise: one
JSON line per event on stdout (``investigated`` ones too: a raised alarm's investigation, finished).
Either way events go to the history database, and ``--listen`` serves ``/metrics`` for Prometheus from
a thread of its own. The engine is :mod:`fleetrst.watch`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import UsageError
from . import audit, investigate, options
from .context import Context

if TYPE_CHECKING:
    import asyncio

    from ..history.store import HistoryStore
    from ..render.watch import AnyEvent
    from ..watch import Watch

DESCRIPTION = (
    "Watch every selected host continuously: one SSH connection per host stays open and each host "
    "prints its TCP counters every EVERY seconds (a shell loop; nothing is installed), judged with "
    "Netdata's reset alarms as they arrive; a raised alarm starts the investigation over the same "
    "connection. On a terminal: a live table, worst first (keys: s sort, / filter, p problems only, "
    "q quit). Otherwise: one JSON line per event (raised, cleared, lost, back, and investigated: the "
    "likely cause and the whole investigation). Events are recorded in the history database; "
    "--listen serves Prometheus metrics."
)
EPILOG = (
    "Exit codes: a watch runs until Ctrl-C (exit 130), SIGTERM (143), q in the live view or the end of "
    "--duration; then, as for sweep, from the fleet as it stands at the end: 0 all OK, 1 some WARNING, "
    "2 some CRITICAL, 3 UNKNOWN (some host lost, in error or never measured, and none warned); 64 usage "
    "or configuration error."
)

DEFAULT_EVERY_S = 10.0
HISTORY_FLUSH_S = 1.0
DRAW_MIN_S = 0.25  # the live view is drawn at most this often, and at least once a second
DRAW_MAX_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_selection_arguments(parser)
    parser.add_argument(
        "--list-hosts", action="store_true", help="print the hosts that would be watched, and connect to none"
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--every",
        type=options.parse_duration,
        default=DEFAULT_EVERY_S,
        metavar="DURATION",
        help=f"how often each host sends its counters (default: {DEFAULT_EVERY_S:g}s, as Netdata "
        "evaluates its alarms; with 10s the rules reproduce Netdata's figures exactly)",
    )
    timing.add_argument(
        "--timeout",
        type=options.parse_duration,
        default=10.0,
        metavar="DURATION",
        help="connect and log in within this; a host silent for max(3 rounds, a round + this) is lost "
        "(default: 10s)",
    )
    timing.add_argument(
        "--duration",
        type=options.duration_arg(7 * 86400),
        default=None,
        metavar="DURATION",
        help="stop after this long (default: run until Ctrl-C, SIGTERM or q)",
    )
    options.add_connection_arguments(parser)
    options.add_threshold_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        choices=("auto", "live", "jsonl"),
        default="auto",
        help="auto (default): the live table on a terminal, JSON lines otherwise; live; jsonl: one "
        "JSON object a line per event",
    )
    out.add_argument(
        "--listen",
        default=None,
        metavar="ADDR:PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9477; :9477 for "
        "every interface): node_exporter's netstat names per host, fleetrst's rates and alarm levels",
    )
    out.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="the history database the events are recorded in (default: as sweep)",
    )
    out.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        default=True,
        help="do not record the events in the history database",
    )
    group = parser.add_argument_group("investigation")
    group.add_argument(
        "--investigate",
        choices=("auto", "never"),
        default="auto",
        help="auto (default): when one of a host's alarms is raised, run the runbook (socket states, "
        "listeners, the processes behind the ports, context) over the host's own connection, show the "
        "likely cause and report it as an investigated event; never",
    )
    group.add_argument(
        "--investigate-every",
        type=options.duration_arg(7 * 86400),
        default=600.0,
        metavar="DURATION",
        help="investigate a host at most this often (default: 10m)",
    )
    investigate._add_runbook_arguments(group, capture_default=None)


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT`` or ``:PORT`` (every interface) -> (address, port)."""
    address, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:9477")
    address = address.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return address, int(port)


# --- where events go ------------------------------------------------------------------------------------


class _History:
    """Events recorded in batches, by a thread of their own: SQLite never holds the event loop."""

    def __init__(self, store: HistoryStore, started: float) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.store = store
        self.started = started
        self.pending: list[AnyEvent] = []
        self.failed: str | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetrst-history")

    def add(self, event: AnyEvent) -> None:
        self.pending.append(event)

    def _write(self, batch: list[AnyEvent]) -> None:
        import sqlite3

        try:
            self.store.record_events(batch, self.started)
        except (sqlite3.Error, OSError) as exc:
            self.failed = f"events were not recorded in {self.store.path}: {exc}"

    async def flush_every(self, seconds: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            if self.pending:
                batch, self.pending = self.pending, []
                await loop.run_in_executor(self._pool, self._write, batch)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self.pending:
            batch, self.pending = self.pending, []
            self._write(batch)
        self.store.close()


def _json_lines(out: TextIO, on_closed: Callable[[], None]) -> Callable[[AnyEvent], None]:
    from ..render.watch import event_json

    closed = False

    def write(event: AnyEvent) -> None:
        nonlocal closed
        if closed:
            return
        try:
            out.write(event_json(event) + "\n")
            out.flush()
        except BrokenPipeError:  # the reader went away (| head): the watch ends
            closed = True
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            on_closed()

    return write


# --- /metrics -------------------------------------------------------------------------------------------


def _serve_metrics(watch: Watch, address: str, port: int) -> Any:
    """Start the /metrics server in a thread of prometheus_client's; return it (to shut it down).

    A scrape builds its families from :meth:`Watch.views` in the server's thread: the event loop is
    never waited on (each host's view is replaced whole, so a scrape sees a consistent host).
    """
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily
    from prometheus_client.registry import Collector

    from ..render.watch import metric_families

    kinds: dict[str, Any] = {
        "untyped": UnknownMetricFamily,
        "gauge": GaugeMetricFamily,
        "counter": CounterMetricFamily,
    }

    class WatchCollector(Collector):
        def describe(self) -> list[Any]:
            return []

        def collect(self) -> Iterator[Any]:
            families = metric_families(
                watch.views(), every_s=watch.options.every_s, now=time.time(), samples_total=watch.samples
            )
            for family in families:
                metric = kinds[family.kind](family.name, family.help, labels=list(family.labels))
                for values, value in family.samples:
                    metric.add_metric(list(values), value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector())
    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UsageError(f"--listen {address}:{port}: cannot listen: {exc.strerror or exc}") from None
    return server


# --- the live view --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _cbreak(stream: TextIO) -> Iterator[int | None]:
    """The terminal in cbreak mode (keys one at a time, no echo; Ctrl-C still a signal), restored after."""
    import termios
    import tty

    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        yield None  # not a terminal: no keys
        return
    tty.setcbreak(fd)
    try:
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Keys:
    """What the keys do to the view: s sort, / filter (Enter keeps, Esc clears), p problems, q quit."""

    def __init__(self, quit: Callable[[], None]) -> None:
        from ..render.watch import ViewState

        self.state: ViewState = ViewState()
        self.quit = quit

    def press(self, text: str) -> None:
        from ..render.watch import SORTS

        state = self.state
        i = 0
        while i < len(text):
            key = text[i]
            i += 1
            if state.editing:
                if key in "\r\n":
                    state = replace(state, editing=False)
                elif key == "\x1b":
                    state = replace(state, editing=False, filter="")
                    i = len(text)  # an escape sequence (an arrow key) ends here too
                elif key in "\x7f\x08":
                    state = replace(state, filter=state.filter[:-1])
                elif key.isprintable() and len(state.filter) < 40:
                    state = replace(state, filter=state.filter + key)
                continue
            if key == "\x1b":
                break  # an arrow or function key: ignored
            if key in "qQ":
                self.quit()
            elif key in "sS":
                state = replace(state, sort=SORTS[(SORTS.index(state.sort) + 1) % len(SORTS)])
            elif key == "/":
                state = replace(state, editing=True)
            elif key in "pP":
                state = replace(state, problems_only=not state.problems_only)
        self.state = state


async def _live(watch: Watch, recent: deque[AnyEvent], changed: asyncio.Event) -> None:
    """Draw the live view until the watch ends; the keys come from stdin, in cbreak mode."""
    import asyncio

    from rich.console import Console
    from rich.live import Live

    from ..render.watch import LiveFrame, live_view

    console = Console()
    keys = _Keys(lambda: watch.stop(None))
    loop = asyncio.get_running_loop()

    def frame() -> Any:
        return live_view(
            LiveFrame(
                views=watch.views(),
                now=time.time(),
                every_s=watch.options.every_s,
                started=watch.started,
                state=keys.state,
                events=tuple(recent),
                height=console.size.height,
            )
        )

    screen = Live(frame(), console=console, screen=True, auto_refresh=False, redirect_stderr=False)
    with _cbreak(sys.stdin) as fd, screen as live:
        if fd is not None:

            def on_key() -> None:
                with contextlib.suppress(OSError):
                    keys.press(os.read(fd, 64).decode("utf-8", "replace"))
                changed.set()

            loop.add_reader(fd, on_key)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAW_MAX_S):
                        await changed.wait()
                changed.clear()
                live.update(frame(), refresh=True)
                await asyncio.sleep(DRAW_MIN_S)
        finally:
            if fd is not None:
                loop.remove_reader(fd)


# --- the command ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace, context: Context) -> int:
    warn, crit = options.thresholds(args)
    targets, names = options.select_targets(args)
    if args.list_hosts:
        from ..inventory import format_list_hosts

        sys.stdout.write(format_list_hosts(names))
        return 0
    listen = parse_listen(args.listen) if args.listen else None
    live = args.output == "live" or (args.output == "auto" and sys.stdout.isatty() and sys.stdin.isatty())

    import asyncio  # here, not with the parser: the other commands' parsers are built from this module

    from ..history.store import HistoryStore
    from ..transport import TransportSet
    from ..watch import Watch, WatchOptions, fit_open_files

    store = HistoryStore.open(audit.history_path(args)) if args.history else None
    fits = fit_open_files(len(targets))
    if fits < len(targets):
        sys.stderr.write(
            f"fleetrst: the open-file limit (ulimit -n) allows {fits} connections, not {len(targets)}: "
            "the other hosts will be reported lost (too many open files)\n"
        )
    investigator = investigate.investigator_from_args(args)
    watch_options = WatchOptions(
        every_s=args.every,
        timeout_s=args.timeout,
        warn=warn,
        crit=crit,
        investigate_every_s=args.investigate_every,
    )
    recent: deque[AnyEvent] = deque(maxlen=5)
    history = _History(store, time.time()) if store is not None else None
    watch: Watch | None = None
    changed = asyncio.Event()  # something to draw
    emit = _json_lines(sys.stdout, lambda: watch.stop(None) if watch is not None else None)

    def on_event(event: AnyEvent) -> None:
        recent.append(event)
        if history is not None:
            history.add(event)
        if not live:
            emit(event)
        changed.set()

    async def main() -> None:
        nonlocal watch
        transports = TransportSet(forks=max(1, len(targets)))
        watch = Watch(targets, watch_options, transports, on_event, investigator=investigator)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, watch.stop, sig.name)
        server = _serve_metrics(watch, *listen) if listen else None
        helpers = []
        if history is not None:
            helpers.append(asyncio.create_task(history.flush_every(HISTORY_FLUSH_S)))
        if args.duration:
            loop.call_later(args.duration, watch.stop, None)
        if live:
            helpers.append(asyncio.create_task(_live(watch, recent, changed)))
        try:
            await watch.run()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await transports.aclose()
            if server is not None:
                server.shutdown()
                server.server_close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    finally:
        if history is not None:
            history.close()
    assert watch is not None
    if history is not None and history.failed:
        sys.stderr.write(f"fleetrst: warning: {history.failed}\n")
    if live:
        sys.stderr.write(_farewell(watch) + "\n")
    return watch.exit_code


def _farewell(watch: Watch) -> str:
    """One line left on the terminal when the live view closes: how the fleet stood."""
    from ..render.watch import STATES
    from ..units import seconds

    views = watch.views()
    counts = [f"{sum(1 for v in views if v.status == s)} {s}" for s in STATES]
    counts = [c for c in counts if not c.startswith("0 ")]
    why = f", stopped by {watch.stopped_by}" if watch.stopped_by else ""
    return (
        f"fleetrst watch: {len(views)} hosts watched for {seconds(time.time() - watch.started)}"
        f"{why}: {', '.join(counts) or 'none'}; {watch.samples} samples (exit {watch.exit_code})"
    )
