"""The watch: every selected host watched continuously over one persistent connection, on one event loop.

Per host: connect (under caps on concurrent handshakes, as a sweep does), start ONE remote loop that
prints a framed sample every ``every_s`` seconds (:func:`~fleetrst.measure.probe.watch_command`: POSIX
sh, ``cat``, ``sleep``; nothing is installed), parse each frame as it arrives, and feed it to the host's
:class:`~fleetrst.measure.alarms.HostAlarms` (Netdata's rules, on the host's own uptime clock). After
the first connect a round costs one SSH packet of ~5 KiB per host, not a handshake.

What can go wrong with a host, and what the watch does:

- it cannot be reached, or its connection drops, or its loop stops sending (no sample for
  ``stale_s``: a host that went silent behind a firewall, a hung sshd): the host is ``lost`` (one
  event, with the reason), its connection is closed, and it is tried again after a backoff that
  doubles from ``backoff_min_s`` to ``backoff_max_s``, with jitter (hosts lost together do not come
  back in lockstep). Its first sample after that is ``back`` (with how long it was away).
- its samples cannot be read: the frame is skipped (counted, the error kept); if none can be read for
  ``stale_s`` the host is lost, with that error as the reason.
- keepalives (SSH ``keepalive@openssh.com``) go out when rounds are long (over 15 s), after
  ``keepalive_s`` of silence; shorter rounds keep the connection busy themselves, and staleness
  notices a silent host sooner.

The remote loop ends when the watch ends or the connection goes: on the way out each stream's command
is sent SIGTERM (its trap ends its sleep at once) and its channel and connection are closed; if the
connection drops instead, the loop dies of SIGPIPE at its next write (one round at most).

With an investigator, an alarm raised starts the investigation over the host's own connection (at
most ``investigations`` at once across the watch, and once per host per ``investigate_every_s``); when
it finishes it is an ``investigated`` event (:class:`~fleetrst.render.watch.InvestigatedEvent`: the top
cause, what triggered it, the whole investigation), and its cause shows on the host's row while the
alarms last. An investigation that fails with an error of ours is an ``investigated`` event with that
error; the watch goes on. One cut short by its connection's end (the host lost, the watch stopped)
reports nothing.

Events (:class:`~fleetrst.measure.alarms.WatchEvent`: ``raised``, ``cleared``, ``lost``, ``back``; and
``investigated``) go to the ``on_event`` callback, on the event loop, as they happen; the latest state
of every host is a :class:`~fleetrst.render.watch.HostView`, replaced whole at every change, so that
another thread (the ``/metrics`` server) can read :meth:`Watch.views` at any time without locks.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from .measure.alarms import AlarmState, HostAlarms, WatchEvent, watched_counters
from .measure.probe import MAX_WATCH_ROUNDS, ProbeParseError, WatchFrames, watch_command
from .measure.rules import ThresholdError, effective_thresholds, parse_threshold_overrides
from .model import Rates, Snapshot, Target, Threshold, Trip, Verdict
from .render.watch import AnyEvent, HostView, InvestigatedEvent
from .transport.base import (
    DEFAULT_MAX_LINE,
    CommandFailed,
    CommandTimeout,
    Session,
    TransportError,
    Transports,
    follow,
)
from .units import seconds

if TYPE_CHECKING:
    from .investigate.result import Investigation

EventCallback = Callable[[AnyEvent], None]


class Investigator(Protocol):
    """What the watch asks of an investigation (``fleetrst.investigate``'s runbook implements it)."""

    async def investigate(
        self, session: Session, target: Target, rates: Rates, verdict: Verdict
    ) -> Investigation:
        """Run the runbook over ``session`` within its own deadline; never raise for a host's fault."""
        ...


KEEPALIVE_FROM_S = 15.0  # rounds longer than this get SSH keepalives (see WatchOptions.keepalive_s)
FILES_PER_HOST = 3  # the connection's socket, and a paramiko channel's two pipe ends
FILES_SPARE = 256


@dataclass(frozen=True)
class WatchOptions:
    every_s: float = 10.0
    timeout_s: float = 10.0  # connect and log in within this
    handshakes: int = 100  # concurrent SSH handshakes (CPU-bound on our side)
    handshakes_per_address: int = 8  # below sshd's MaxStartups start (10)
    warn: Mapping[str, float] = field(default_factory=dict)
    crit: Mapping[str, float] = field(default_factory=dict)
    # No sample for this long (the first one included): the host is lost. None: see stale_s.
    stale_after_s: float | None = None
    backoff_min_s: float = 1.0
    backoff_max_s: float | None = None  # None: 6 rounds, within [5 s, 60 s]
    keepalive_after_s: float | None = None  # None: see keepalive_s; 0: none
    max_line: int = DEFAULT_MAX_LINE
    rounds: int = MAX_WATCH_ROUNDS  # a remote loop's rounds before it ends by itself (then restarted)
    investigate_every_s: float = 600.0  # a host is investigated at most this often (with an investigator)
    investigations: int = 10  # investigations running at once, across the watch

    @property
    def stale_s(self) -> float:
        """Three rounds, or a round and the timeout if that is longer (a slow login, a slow host)."""
        if self.stale_after_s is not None:
            return self.stale_after_s
        return max(3 * self.every_s, self.every_s + self.timeout_s)

    @property
    def backoff_cap_s(self) -> float:
        if self.backoff_max_s is not None:
            return self.backoff_max_s
        return min(60.0, max(5.0, 6 * self.every_s))

    @property
    def keepalive_s(self) -> float | None:
        """SSH keepalives after this long without traffic. By default only when rounds are longer than
        15 s: shorter ones keep the connection busy by themselves (through NAT and firewalls too), and
        a silent host is noticed after ``stale_s`` sooner than three keepalives would notice it; while
        keepalives are on, asyncssh moves a timer at every packet, which a large watch pays for."""
        if self.keepalive_after_s is not None:
            return self.keepalive_after_s or None
        if self.every_s <= KEEPALIVE_FROM_S:
            return None
        return min(30.0, self.every_s / 2)


def backoff_delay(failures: int, low: float, high: float, rng: random.Random | None = None) -> float:
    """The wait before the next try after ``failures`` failures in a row: ``low`` doubled each time up to
    ``high``, then a random point in its upper half ("equal jitter"), so hosts lost together spread out."""
    ceiling = min(high, low * 2 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def fit_open_files(hosts: int) -> int:
    """Raise the soft open-file limit for ``hosts`` connections held at once; return how many fit."""
    wanted = hosts * FILES_PER_HOST + FILES_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return hosts
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return max(0, min(hosts, (new - FILES_SPARE) // FILES_PER_HOST))


class _Host:
    """One host's live state (on the event loop only); ``view`` is what others read."""

    def __init__(self, target: Target, thresholds: Mapping[str, Threshold] | None, every_s: float) -> None:
        self.target = target
        self.alarms = HostAlarms(target.name, thresholds or {}, every_s)
        self.keep = watched_counters(thresholds or {})
        self.lost_at: float | None = None
        self.last_sample = 0.0  # event loop time of the latest sample (or of the stream's start)
        self.parse_error: str | None = None
        self.session: Session | None = None  # while connected: what an investigation runs over
        self.investigation: asyncio.Task[None] | None = None
        self.investigated_at: float | None = None  # event loop time
        self.view = HostView(target.name, target.groups, target.connection.address)

    def show(self, now: float, **changes: object) -> None:
        """Replace the view (one assignment: readers in other threads see the old or the new one);
        ``since`` moves when the status does."""
        view = replace(self.view, **changes)  # type: ignore[arg-type]
        if view.status != self.view.status:
            view = replace(view, since=now)
        self.view = view


class _Watchdog:
    """Cancels ``task`` once ``host`` has sent no sample for ``stale_s``. One timer that re-arms itself
    when it finds a later sample: a timer per host per ``stale_s``, not one per sample (moving a timer
    for every sample of every host costs a watch of thousands of hosts measurable CPU)."""

    def __init__(self, host: _Host, stale_s: float, task: asyncio.Task[None]) -> None:
        self.host = host
        self.stale_s = stale_s
        self.task = task
        self.fired = False
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_at(host.last_sample + stale_s, self._check)

    def _check(self) -> None:
        due = self.host.last_sample + self.stale_s
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._check)
            return
        self.fired = True
        self.task.cancel()

    def cancel(self) -> None:
        self._handle.cancel()


class Watch:
    """The watch of ``targets`` over ``transports`` (not closed here), until :meth:`stop`."""

    def __init__(
        self,
        targets: Sequence[Target],
        options: WatchOptions,
        transports: Transports,
        on_event: EventCallback | None = None,
        *,
        investigator: Investigator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.transports = transports
        self.on_event = on_event
        self.investigator = investigator
        self.investigated = 0  # investigations finished
        self.clock = clock
        self.started = clock()
        self.samples = 0  # frames received from all hosts
        self.unreadable = 0  # frames that could not be read
        self.stopped_by: str | None = None
        self._command = watch_command(options.every_s, options.rounds)
        self._hosts: list[_Host] = []
        self._errors: dict[str, str] = {}
        for target in targets:
            thresholds: dict[str, Threshold] | None = None
            try:
                raw = target.fleetrst_vars.get("fleetrst_thresholds")
                overrides = parse_threshold_overrides(raw, f"host {target.name}") if raw is not None else None
                thresholds = effective_thresholds(overrides, options.warn, options.crit)
            except ThresholdError as exc:
                self._errors[target.name] = str(exc)
            if target.error:
                self._errors[target.name] = target.error
            self._hosts.append(_Host(target, thresholds, options.every_s))
        self._handshakes = asyncio.Semaphore(max(1, options.handshakes))
        self._per_address: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(max(1, options.handshakes_per_address))
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._investigation_slots = asyncio.Semaphore(max(1, options.investigations))

    # --- the outside ---

    def views(self) -> list[HostView]:
        """Every host as it stands (safe from any thread: each view is replaced whole)."""
        return [host.view for host in self._hosts]

    @property
    def exit_code(self) -> int:
        """Nagios-style, as the fleet stands: 2 some critical, 1 some warning, 3 some host lost, in
        error or never measured (and none warning), else 0; 130/143 when stopped by SIGINT/SIGTERM."""
        from .errors import EXIT_INTERRUPTED

        if self.stopped_by in EXIT_INTERRUPTED:
            return EXIT_INTERRUPTED[self.stopped_by]
        statuses = {host.view.status for host in self._hosts}
        for status, code in (("critical", 2), ("warning", 1)):
            if status in statuses:
                return code
        return 3 if statuses & {"lost", "error", "connecting"} else 0

    async def run(self) -> None:
        """Watch until :meth:`stop`; return once every connection is closed and every loop ended."""
        if self._stopping:
            return
        self._tasks = [asyncio.create_task(self._watch(host), name=host.target.name) for host in self._hosts]
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self, reason: str | None = None) -> None:
        """End the watch (from the event loop: a signal handler, a key, a timer)."""
        if self.stopped_by is None:
            self.stopped_by = reason
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    # --- one host ---

    def _emit(self, event: AnyEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _watch(self, host: _Host) -> None:
        """One host, for as long as the watch runs: connect, stream, and again after a loss."""
        target = host.target
        error = self._errors.get(target.name)
        if error is not None:
            now = self.clock()
            host.show(now, state="error", error=error)
            self._emit(WatchEvent("lost", target.name, now, target.groups, error=error, error_kind="config"))
            return
        failures = 0
        while True:
            samples = host.view.samples
            try:
                failure = await self._connection(host)
            except Exception as exc:  # a bug of ours: this host only, and it is tried again
                failure = TransportError(f"internal error: {type(exc).__name__}: {exc}")
            if host.view.samples > samples:
                failures = 0  # it was up: the backoff starts again from the bottom
            failures += 1
            self._lost(host, failure)
            await asyncio.sleep(
                backoff_delay(failures, self.options.backoff_min_s, self.options.backoff_cap_s)
            )

    async def _connection(self, host: _Host) -> TransportError:
        """One connection to the host, for as long as it serves; what ended it."""
        try:
            session = await self._connect(host)
        except TransportError as exc:
            return exc
        host.session = session
        try:
            return await self._stream(host, session)
        finally:
            host.session = None
            investigation = host.investigation
            if investigation is not None and not investigation.done():
                investigation.cancel()  # it runs over this connection: it ends with it
                await asyncio.gather(investigation, return_exceptions=True)
            await session.close()

    async def _connect(self, host: _Host) -> Session:
        target = host.target
        transport = self.transports.get(target.connection.connection)
        timeout = target.connection.connect_timeout or self.options.timeout_s
        async with self._handshakes, self._per_address[target.connection.address]:
            return await transport.open(target, timeout=timeout)

    async def _stream(self, host: _Host, session: Session) -> TransportError:
        """Read the host's samples until something goes wrong; return what did. A remote loop that ends
        by itself (after its rounds) is started again on the same connection."""
        host.alarms.restart()  # a new connection follows a gap: rates start again from two samples
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        options = self.options
        while True:
            frames = WatchFrames(keep=host.keep)
            got = 0

            def on_lines(lines: list[str], frames: WatchFrames = frames) -> None:
                """The lines that came together (usually one whole frame, read at once; else line by line).
                Called as they arrive: from the transport's receive callback where it has one."""
                nonlocal got
                if (frame := frames.whole(lines)) is not None:
                    got += 1
                    host.last_sample = loop.time()
                    self._sample(host, frame[1])
                    return
                for line in lines:
                    try:
                        frame = frames.feed(line)
                    except ProbeParseError as exc:
                        self.unreadable += 1
                        host.parse_error = str(exc)
                        host.show(self.clock(), error=f"unreadable sample: {exc}")
                        continue
                    if frame is not None:
                        got += 1
                        host.last_sample = loop.time()
                        self._sample(host, frame[1])

            # The first sample comes at once, then one a round: silence past stale_s is a loss.
            host.last_sample = loop.time()
            watchdog = _Watchdog(host, options.stale_s, task)
            try:
                await follow(
                    session,
                    self._command,
                    on_lines,
                    max_line=options.max_line,
                    keepalive_s=options.keepalive_s,
                )
            except asyncio.CancelledError:
                if not watchdog.fired or self._stopping:
                    raise
                task.uncancel()
                why = (
                    f"no sample for {seconds(options.stale_s)} (one is due every {seconds(options.every_s)})"
                )
                if host.parse_error:
                    why += f"; the last one could not be read: {host.parse_error}"
                return CommandTimeout(why)
            except TransportError as exc:
                return exc
            finally:
                watchdog.cancel()
            if not got:
                return CommandFailed(
                    "the remote watch loop ended without a sample"
                    + (f": {host.parse_error}" if host.parse_error else "")
                )

    def _sample(self, host: _Host, snapshot: Snapshot) -> None:
        now = self.clock()
        self.samples += 1
        alarms = host.alarms
        changes = alarms.add(snapshot, now)
        level = alarms.level
        states = tuple(alarms.states.values())
        if level != "ok":
            states = tuple(sorted(states, key=_worst_first))
        host.parse_error = None
        old = host.view
        # Built whole, not through show(): this runs for every sample of every host (its status is its
        # level: it is up). An investigation's cause stays while the alarms do: back to ok, what was
        # found then explains nothing now. Its rates are taken when first read (the live table, a
        # scrape, an investigation), not here.
        host.view = HostView(
            old.host, old.groups, old.address, "up", level, states, None, snapshot,
            old.since if level == old.status else now, None, old.samples + 1, now,
            old.cause if level != "ok" else None, alarms.window,
        )  # fmt: skip
        if host.lost_at is None and not changes:
            return
        target = host.target
        events: list[WatchEvent] = []
        if host.lost_at is not None:
            events.append(WatchEvent("back", target.name, now, target.groups, down_s=now - host.lost_at))
            host.lost_at = None
        events += [WatchEvent.of_alarm(e, target.groups) for e in changes]
        for event in events:
            self._emit(event)
        if self.investigator is not None and changes and any(e.event == "raised" for e in changes):
            self._maybe_investigate(host)

    def _maybe_investigate(self, host: _Host) -> None:
        """Investigate over the host's own connection, unless it is already being investigated or was
        not long ago (at most once per ``investigate_every_s``)."""
        loop = asyncio.get_running_loop()
        if host.session is None or (host.investigation is not None and not host.investigation.done()):
            return
        last = host.investigated_at
        if last is not None and loop.time() - last < self.options.investigate_every_s:
            return
        host.investigated_at = loop.time()
        host.investigation = asyncio.create_task(self._investigate(host, host.session))

    async def _investigate(self, host: _Host, session: Session) -> None:
        """Investigate ``host`` over ``session``; say what was found (or the error of ours that stopped
        it) as an ``investigated`` event, and on the host's row while its alarms are raised."""
        assert self.investigator is not None
        view = host.view
        rates = view.rates
        if rates is None:
            return
        triggers = view.raised
        tripped = tuple(
            Trip(
                a.metric,
                "critical" if a.level == "critical" else "warning",
                a.value,
                a.limit if a.limit is not None else 0.0,
                "spike" if a.rule == "spike" else "threshold",
                a.baseline,
            )
            for a in triggers
        )
        target = host.target
        try:
            async with self._investigation_slots:
                found = await self.investigator.investigate(
                    session, target, rates, Verdict(view.level, tripped)
                )
        except Exception as exc:  # a bug of ours: said in its event and on this host's row; the watch goes on
            event = InvestigatedEvent(
                target.name,
                self.clock(),
                target.groups,
                triggers,
                error=f"internal error: {type(exc).__name__}: {exc}",
            )
        else:
            event = InvestigatedEvent(target.name, self.clock(), target.groups, triggers, found)
        self.investigated += 1
        if host.view.level != "ok":
            host.show(event.at, cause=event.text)
        self._emit(event)

    def _lost(self, host: _Host, failure: TransportError) -> None:
        now = self.clock()
        message = failure.message
        if host.lost_at is None:
            host.lost_at = now
            host.show(now, state="lost", error=message)
            target = host.target
            self._emit(
                WatchEvent("lost", target.name, now, target.groups, error=message, error_kind=failure.kind)
            )
        else:
            host.show(now, error=message)


_SEVERITY = {"ok": 0, "warning": 1, "critical": 2}


def _worst_first(state: AlarmState) -> tuple[int, str]:
    return (-_SEVERITY[state.level], state.metric)
