"""Drives one segment of load: starts requests when the profile says, bounded in count
and time, and hands every finished record to a sink as it completes.

Stopping: ``stop()`` (a first Ctrl-C, or the duration running out) starts no new
requests and lets in-flight ones finish within the grace period; ``cancel()`` (a second
Ctrl-C, or the grace period running out) cancels them, and they are recorded as
``cancelled``. Either way every record reaches the sink.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field

from harness.dialects import get as get_dialect
from harness.load.config import RunConfig
from harness.load.exchange import run_exchange
from harness.load.health import ClientSamples
from harness.load.ledger import ScheduleLedger
from harness.load.payloads import Message, build_request
from harness.load.schedule import ClosedLoop, OpenLoop, Trace
from harness.load.selfwatch import ClientWatch
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.transports import Clock, Transport, make_transport

__all__ = ["Progress", "Runner", "SegmentRunner"]

Sink = Callable[[RequestRecord], None]

#: Connect failures, with no answer before them, after which a segment stops early.
CONNECT_GIVE_UP = 3
#: Seconds to wait before a retry when a 429 or 503 did not say (``--retry-429``).
DEFAULT_RETRY_WAIT_S = 1.0


@dataclass(slots=True)
class Progress:
    """Live counters of a run, for a progress display."""

    started: int = 0
    completed: int = 0
    errors: int = 0
    tokens: int = 0
    recent_ttft_s: deque[float] = field(default_factory=lambda: deque(maxlen=500))

    @property
    def in_flight(self) -> int:
        return self.started - self.completed

    def add(self, record: RequestRecord) -> None:
        """Count a finished request."""
        self.completed += 1
        self.tokens += len(record.token_times_ns)
        if record.outcome is Outcome.ERROR:
            self.errors += 1
        if record.ttft_s is not None:
            self.recent_ttft_s.append(record.ttft_s)


class SegmentRunner(abc.ABC):
    """What a run drives: one segment of load, stoppable by its user.

    Attributes:
        progress: live counters, for a progress display.
        segment: the label of the segment (a sweep's level).
        interrupted: True once ``interrupt`` was called: the run was stopped by its user.
        gave_up: why the segment stopped early by itself (the target cannot be reached).
        ledger: what became of every request the schedule offered.
        client: what the client process(es) saw of themselves, once the segment ran
            (None when the self-watch is off).
    """

    progress: Progress
    ledger: ScheduleLedger
    client: ClientSamples | None = None
    segment: str
    interrupted: bool = False
    #: why the segment stopped before its bounds, when the runner gave up by itself
    gave_up: str | None = None

    def interrupt(self) -> None:
        """A user's stop (Ctrl-C): the first stops starting requests, the second cancels."""
        if self.interrupted:
            self.cancel()
        else:
            self.interrupted = True
            self.stop()

    @abc.abstractmethod
    def stop(self) -> None:
        """Start no new requests; in-flight ones may finish within the grace period."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Cancel in-flight requests now (they are recorded as cancelled)."""

    @abc.abstractmethod
    async def run(self) -> None:
        """Run the segment until its bounds are reached and every request has ended."""


class Runner(SegmentRunner):
    """Runs one segment of a ``RunConfig`` against its target, in this event loop.

    Args:
        config: what to send, how, and how much.
        sink: receives every record as its request completes (write it out there).
        segment: a label stored in every record (a sweep's level).
        clock: the scheduling clock, ``time.perf_counter_ns`` by default.
        shard: ``(index, count)``: run only this share of the schedule (users, or
            scheduled requests, whose number modulo ``count`` is ``index``), for a run
            spread over ``count`` processes. ``config.bounds.requests`` is this shard's own.
        start_ns: the segment's start on ``clock`` (default: when the transport is set
            up), so that the shards of one run keep one schedule.
        transport: the transport to send with, instead of the one ``config`` names (an
            in-memory transport in tests); it is entered and left by ``run``.
    """

    def __init__(
        self,
        config: RunConfig,
        sink: Sink,
        *,
        segment: str = "",
        clock: Clock = time.perf_counter_ns,
        shard: tuple[int, int] = (0, 1),
        start_ns: int | None = None,
        transport: Transport | None = None,
    ) -> None:
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count} does not exist")
        self.config = config
        self.progress = Progress()
        self.ledger = ScheduleLedger()
        self._sink = sink
        self.segment = segment
        self._clock = clock
        self._dialect = get_dialect(config.dialect, pointer=config.pointer)
        self._shard = shard
        self._start_ns = start_ns
        self._transport = transport
        self._rng = random.Random(config.seed * count + index)
        self._ids = itertools.count()
        #: the closed loop's requests, numbered in order: which prompt of the pool each sends
        self._prompt_numbers = itertools.count()
        self._id_prefix = f"{segment or 'r'}-" if count == 1 else f"{segment or 'r'}-p{index}-"
        self._stopping = asyncio.Event()
        #: set once no request is left to start (stopping, or ``--requests`` all started):
        #: users still waiting for their place in the ramp-up end at once
        self._spent = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._failure: BaseException | None = None  # the first task that raised
        self._t0_ns = 0
        self._end_ns: int | None = None
        self._answered = False  # some request got an answer (or at least connected)
        self._connect_failures = 0
        #: why the segment stopped before its bounds (the target cannot be reached)
        self.gave_up: str | None = None
        # the API key and every credential given are kept out of error messages
        self._secrets = config.spec.secrets

    def stop(self) -> None:
        self._stopping.set()
        self._spent.set()

    def cancel(self) -> None:
        self._stopping.set()
        self._spent.set()
        for task in list(self._tasks):
            task.cancel()

    async def run(self) -> None:
        config = self.config
        transport = self._transport or make_transport(
            config.transport,
            timeouts=config.timeouts,
            connections=config.connections,
            http2=config.http2,
            follow_redirects=config.follow_redirects,
        )
        watch = ClientWatch(clock=self._clock, process=self._shard[0])
        async with transport, _watching(watch, config.self_watch):
            # the transport is set up first: a TLS context can take 100 ms to build
            # a shared start keeps one schedule even for a shard that got ready late: its
            # overdue requests start at once and are measured from when they were due
            self._t0_ns = self._clock() if self._start_ns is None else self._start_ns
            if config.bounds.duration_s is not None:
                self._end_ns = self._t0_ns + int(config.bounds.duration_s * 1e9)
            watchers = [
                asyncio.create_task(self._stop_at_end()),
                asyncio.create_task(self._grace()),
            ]
            try:
                if isinstance(config.profile, ClosedLoop):
                    await self._closed_loop(transport, config.profile)
                else:
                    await self._open_loop(transport, config.profile)
                while self._tasks:  # in-flight requests; _grace bounds the wait
                    await asyncio.wait(set(self._tasks))
            finally:
                for watcher in watchers:
                    watcher.cancel()
                self.cancel()
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
        if config.self_watch:
            self.client = watch.samples
        if self._failure is not None:
            raise self._failure

    # -- scheduling ------------------------------------------------------------------

    def _may_start(self) -> bool:
        if self._stopping.is_set():
            return False
        requests = self.config.bounds.requests
        if requests is not None and self.progress.started >= requests:
            return False
        return self._end_ns is None or self._clock() < self._end_ns

    async def _sleep_until(self, due_ns: int) -> None:
        delay = (due_ns - self._clock()) / 1e9
        if delay > 0:
            await _wait(self._stopping, delay)

    async def _stop_at_end(self) -> None:
        if self._end_ns is not None:
            await self._sleep_until(self._end_ns)
            self.stop()

    async def _closed_loop(self, transport: Transport, profile: ClosedLoop) -> None:
        index, count = self._shard
        offsets = profile.user_start_offsets_ns()
        for user, offset in enumerate(offsets):
            if user % count == index:
                self._spawn(self._user(transport, user, self._t0_ns + offset))

    async def _user(self, transport: Transport, user: int, start_ns: int) -> None:
        delay = (start_ns - self._clock()) / 1e9
        if delay > 0:
            await _wait(self._spent, delay)
        if self.config.turn_max_tokens:
            await self._conversations(transport, user)
            return
        conversation: list[Message] = []
        turn = 0
        while self._may_start():
            if self.config.turns == 1:  # the users share the pool: each prompt in turn
                index = next(self._prompt_numbers) * self._shard[1] + self._shard[0]
            else:
                index = user + turn
            prompt = self.config.prompts[index % len(self.config.prompts)]
            if turn == 0 or self.config.turns == 1:
                conversation = list(prompt)
            else:
                conversation.append(prompt[-1])
            self._launch()
            text = await self._one(
                transport,
                conversation,
                user=user,
                turn=turn,
                max_tokens=self.config.max_tokens_for(index),
            )
            turn += 1
            if self.config.turns > 1:
                if turn >= self.config.turns or text is None:
                    turn = 0  # the conversation is over: the user starts a new one
                else:
                    conversation.append({"role": "assistant", "content": text})

    async def _conversations(self, transport: Transport, user: int) -> None:
        """``--turns dataset``: the user takes the pool's next conversation and sends its
        turns one by one, each with the answers so far, until it ends or fails."""
        config = self.config
        while self._may_start():
            index = next(self._prompt_numbers) * self._shard[1] + self._shard[0]
            turns = config.prompts[index % len(config.prompts)]
            limits = config.turn_max_tokens[index % len(config.turn_max_tokens)]
            conversation: list[Message] = []
            for turn, message in enumerate(turns):
                if turn and not self._may_start():
                    return
                conversation.append(message)
                self._launch()
                text = await self._one(
                    transport, list(conversation), user=user, turn=turn, max_tokens=limits[turn]
                )
                if text is None:
                    break
                conversation.append({"role": "assistant", "content": text})

    async def _open_loop(self, transport: Transport, profile: OpenLoop | Trace) -> None:
        entries = profile.entries if isinstance(profile, Trace) else None
        schedule = self._own_schedule(profile)
        for number, due_ns in schedule:
            await self._sleep_until(due_ns)
            if not self._may_start():
                self._account_unsent(itertools.chain([(number, due_ns)], schedule))
                return
            if not await self._slot_free():
                self._account_unsent(itertools.chain([(number, due_ns)], schedule), capped=True)
                return
            entry = entries[number] if entries is not None else None
            prompt = self.config.prompts[number % len(self.config.prompts)]
            if entry is not None and entry.prompt is not None:
                prompt = ({"role": "user", "content": entry.prompt},)
            output = self.config.max_tokens_for(number)
            if entry is not None and entry.output_tokens is not None:
                output = entry.output_tokens
            self._launch()
            self._spawn(self._one(transport, list(prompt), scheduled_ns=due_ns, max_tokens=output))

    def _own_schedule(self, profile: OpenLoop | Trace) -> Iterator[tuple[int, int]]:
        """This shard's requests of the schedule, ``(number, due_ns)``, up to the end."""
        index, count = self._shard
        last = len(profile.entries) - 1 if isinstance(profile, Trace) else None
        for number, offset_ns in enumerate(profile.offsets_ns()):
            due_ns = self._t0_ns + offset_ns
            if self._end_ns is not None and due_ns >= self._end_ns:
                return
            if number % count == index:
                yield number, due_ns
            if number == last:
                return

    async def _slot_free(self) -> bool:
        """Wait while ``max_in_flight`` requests run; False if the segment stops first."""
        while len(self._tasks) >= self.config.max_in_flight:
            if self._stopping.is_set():
                return False
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({*self._tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
        return not self._stopping.is_set()

    def _account_unsent(self, pending: Iterator[tuple[int, int]], *, capped: bool = False) -> None:
        """Book the requests the schedule offered inside the bounds but this segment did
        not send: those already due (``in_flight_cap`` when it was waiting for a slot,
        else ``late``: the client reached them only after the end), and, when stopped
        before the end, those still to come before it (``stopping``)."""
        now = self._clock()
        until = self._end_ns if self._end_ns is not None else now
        requests = self.config.bounds.requests
        room = None if requests is None else requests - self.progress.started
        for number, due_ns in pending:
            if due_ns >= until or room == 0:
                return
            already_due = "in_flight_cap" if capped else "late"
            why = already_due if due_ns <= now else "stopping"
            self.ledger.not_sent(number, due_ns - self._t0_ns, why)
            if room is not None:
                room -= 1

    def _launch(self) -> None:
        """Count a request as started the moment it is launched, before it first runs."""
        self.progress.started += 1
        self.ledger.sent()
        requests = self.config.bounds.requests
        if requests is not None and self.progress.started >= requests:
            self._spent.set()

    async def _grace(self) -> None:
        """Once stopping, give in-flight requests the grace period, then cancel them."""
        await self._stopping.wait()
        await asyncio.sleep(self.config.bounds.grace_s)
        self.cancel()

    def _spawn(self, coroutine: Coroutine[object, object, object]) -> asyncio.Task[object]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[object]) -> None:
        """A user or request task ended; one that raised (a request that cannot be built,
        a bug) stops the segment, and ``run`` raises its error once the rest have ended."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failure = self._failure or error
            self.stop()

    # -- one request -----------------------------------------------------------------

    async def _one(
        self,
        transport: Transport,
        messages: list[Message],
        *,
        user: int = 0,
        turn: int = 0,
        scheduled_ns: int | None = None,
        max_tokens: int | None = None,
    ) -> str | None:
        config = self.config
        request_id = f"{self._id_prefix}{next(self._ids)}"
        attempts: list[dict[str, object]] = []

        def new_record(due_ns: int | None) -> RequestRecord:
            return RequestRecord(
                request_id=request_id,
                user=user,
                turn=turn,
                segment=self.segment,
                t_scheduled_ns=due_ns,
                attempts=attempts or None,
            )

        request = build_request(config.spec, messages, max_tokens=max_tokens)
        record = new_record(scheduled_ns)
        abandon = None
        if config.disconnect_rate and self._rng.random() < config.disconnect_rate:
            abandon = config.disconnect_after
        try:
            while True:
                result = await run_exchange(
                    transport,
                    request,
                    record,
                    dialect=self._dialect,
                    timeouts=config.timeouts,
                    bounds=config.stream_bounds,
                    abandon=abandon,
                    secrets=self._secrets,
                    clock=self._clock,
                )
                if not await self._retry(record, attempts):
                    break
                # the next attempt is measured from when the first was due, too
                record = new_record(record.t_due_ns)
            return result.text if result is not None and record.ok else None
        finally:
            self._watch_connects(record)
            self.progress.add(record)
            self._sink(record)

    async def _retry(self, record: RequestRecord, attempts: list[dict[str, object]]) -> bool:
        """After a rate-limited answer, wait what it asked (capped) and say whether to send
        the request again (``--retry-429``); the attempt is kept in ``attempts``."""
        if (
            record.error_kind is not ErrorKind.RATE_LIMITED
            or len(attempts) >= self.config.retry_429
            or self._stopping.is_set()
        ):
            return False
        attempts.append(
            {
                "t_sent_ns": record.t_sent_ns,
                "status": record.status,
                "retry_after_s": record.retry_after_s,
                "error_message": record.error_message,
            }
        )
        wait_s = min(
            record.retry_after_s if record.retry_after_s is not None else DEFAULT_RETRY_WAIT_S,
            self.config.max_retry_wait_s,
        )
        await self._sleep_until(self._clock() + int(wait_s * 1e9))
        return not self._stopping.is_set()

    def _watch_connects(self, record: RequestRecord) -> None:
        """Stop early when the target cannot be reached at all: the first
        ``CONNECT_GIVE_UP`` requests failed to connect and none got an answer."""
        if self._answered:
            return
        if record.error_kind is not ErrorKind.CONNECT:
            self._answered = record.outcome is not Outcome.ERROR or record.status is not None
            return
        self._connect_failures += 1
        if self._connect_failures >= CONNECT_GIVE_UP:
            self.gave_up = f"cannot connect: {record.error_message}"
            self.stop()


@contextlib.asynccontextmanager
async def _watching(watch: ClientWatch, on: bool) -> AsyncIterator[None]:
    """Run the client's self-watch around a segment, when it is on."""
    if not on:
        yield
        return
    async with watch:
        yield


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``event`` is set, whichever comes first (one timer and
    the event's waiter: no task, as ``asyncio.wait_for`` makes, for each user's start)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
