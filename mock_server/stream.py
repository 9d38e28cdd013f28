"""The only writer: one tick scheduler per event loop sends every stream's frames on time.

There is no task or sleep per stream. The scheduler keeps the jobs in buckets by due
tick (``TICK_NS``) and ONE timer (``loop.call_later``) for the earliest bucket.
When the timer fires it runs every job due before its horizon (now + ``slack_ns``),
synchronously, and re-arms itself, never sooner than ``min_delay_ns`` ahead: uvloop's
timers have millisecond resolution, so thousands of streams with scattered due times
are served in ticks of about a millisecond instead of a spinning loop. A frame may thus
go out up to ``slack_ns`` early (negative lateness) or about a tick late. A job's frames
are due at absolute times (receipt + offset), so a late tick never shifts the frames
after it: lateness does not accumulate.

A ``StreamJob`` writes HTTP/1.1 chunk frames (``b"%x\\r\\n" % len(data) + data +
b"\\r\\n"``) straight to the transport after the handler's ``prepare()``; the handler
awaits ``job.done`` and then ends the body with ``write_eof()``. Before every write the
job checks ``transport is None or transport.is_closing()``: that is how a client's
disconnect is found, at the next due frame or at the latest one probe interval later;
the job then records the time, stops, and resolves ``done``. A transport whose write
buffer is above the high-water mark makes the job hold its frames for one hold interval
(counted) instead of growing memory. Every token-bearing write records its write time and
its lateness (write time minus scheduled time) in the ground truth and the metrics; the
write time is read just before the bytes are handed to the transport, so a client's
arrival time is never earlier than it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from mock_server.metrics import Metrics
from mock_server.render import Frame, Rendered
from mock_server.truth import RequestTruth

__all__ = ["Job", "StreamJob", "TickScheduler", "Wakeup", "chunk_frames"]

logger = logging.getLogger(__name__)

#: How long a job whose transport buffer is full waits before trying again.
HOLD_NS = 1_000_000
#: The longest a stream goes without checking whether its client is still there.
PROBE_NS = 50_000_000
#: The width of the scheduler's buckets (narrower than its slack).
TICK_NS = 250_000
#: The most turns of the loop a new request waits for due frames to go out.
_MAX_YIELDS = 4


class Job(Protocol):
    """Something the scheduler runs at a due time."""

    finished: bool

    def run(self, now_ns: int, horizon_ns: int) -> int | None:
        """Do what is due by ``horizon_ns``; return when to run next, or None when done."""
        ...

    def abort(self, reason: str) -> None:
        """Stop at once (server shutdown)."""
        ...


def chunk_frames(data: bytes, split: str | None = None, rng: random.Random | None = None) -> bytes:
    """Frame ``data`` as HTTP/1.1 chunks: one chunk, one per byte, or random pieces.

    Args:
        data: the bytes to send (not empty).
        split: None, ``"bytes"`` (a chunk per byte) or ``"random"`` (random cut points).
        rng: the generator of the random cut points.

    Returns:
        The chunk-encoded bytes, to write in one go.
    """
    if split is None or len(data) < 2:
        return b"%x\r\n" % len(data) + data + b"\r\n"
    if split == "bytes":
        return b"".join(b"1\r\n" + data[i : i + 1] + b"\r\n" for i in range(len(data)))
    assert rng is not None
    count = rng.randint(1, min(len(data) - 1, 16))
    cuts = sorted(rng.sample(range(1, len(data)), count))
    edges = [0, *cuts, len(data)]
    return b"".join(
        b"%x\r\n" % (end - start) + data[start:end] + b"\r\n"
        for start, end in itertools.pairwise(edges)
    )


class TickScheduler:
    """One timer for every job of an event loop; jobs wait in buckets by due tick.

    A job due at ``due_ns`` waits in the bucket of ``due_ns // TICK_NS``; a heap holds
    the bucket keys (plain ints), so adding a job costs a list append and, for a new
    bucket, one push. A bucket runs once all of it is due within the slack (the tick
    is narrower than the slack, so no job waits for a later one), its jobs in the order
    they were added. Nothing is allocated per token but the job's own
    record, which keeps the young garbage collections, and their pauses, rare.

    Args:
        loop: the event loop.
        clock: monotonic nanoseconds; the same clock the jobs' due times use.
        slack_ns: a job due within this much of now runs in the current tick.
        min_delay_ns: the shortest delay the timer is re-armed with after a tick.
    """

    __slots__ = (
        "_buckets",
        "_clock",
        "_count",
        "_handle",
        "_keys",
        "_loop",
        "_timer_due",
        "min_delay_ns",
        "slack_ns",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        clock: Callable[[], int] = time.perf_counter_ns,
        slack_ns: int = 500_000,
        min_delay_ns: int = 1_000_000,
    ) -> None:
        if slack_ns < TICK_NS:
            raise ValueError(f"slack_ns must be at least one tick ({TICK_NS} ns)")
        self._loop = loop
        self._clock = clock
        self._buckets: dict[int, list[Job]] = {}
        self._keys: list[int] = []
        self._count = 0
        self._handle: asyncio.Handle | None = None
        self._timer_due: int | None = None
        self.slack_ns = slack_ns
        self.min_delay_ns = min_delay_ns

    def __len__(self) -> int:
        return self._count

    def add(self, job: Job, due_ns: int) -> None:
        """Run ``job`` at ``due_ns`` (then whenever it asks)."""
        self._put(job, due_ns)
        if self._timer_due is None or due_ns < self._timer_due:
            self._arm()

    def _put(self, job: Job, due_ns: int) -> None:
        key = due_ns // TICK_NS
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [job]
            heapq.heappush(self._keys, key)
        else:
            bucket.append(job)
        self._count += 1

    def wake_at(self, due_ns: int) -> asyncio.Future[str]:
        """A future the scheduler resolves (with ``"due"``) at ``due_ns``."""
        wakeup = Wakeup(self._loop.create_future())
        self.add(wakeup, due_ns)
        return wakeup.done

    async def yield_to_writes(self) -> None:
        """Let frames already due go out first (bounded: a few turns of the loop).

        Preparing a long response takes a millisecond or more. When many requests
        arrive together their handlers run back to back in one turn of the event loop,
        and without this every stream's due frames would wait for all of them.
        """
        for _ in range(_MAX_YIELDS):
            keys = self._keys
            if not keys or keys[0] * TICK_NS > self._clock():
                return
            await asyncio.sleep(0)

    def close(self) -> None:
        """Stop the timer and abort every job still waiting."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._timer_due = None
        buckets, self._buckets, self._keys, self._count = self._buckets, {}, [], 0
        for bucket in buckets.values():
            for job in bucket:
                if not job.finished:
                    job.abort("shutdown")

    def _arm(self, min_delay_ns: int = 0) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = self._timer_due = None
        if not self._keys:
            return
        due = (self._keys[0] + 1) * TICK_NS - self.slack_ns  # the whole bucket is due
        delay_ns = max(due - self._clock(), min_delay_ns)
        self._timer_due = due
        if delay_ns <= self.slack_ns:
            self._handle = self._loop.call_soon(self._fire)
        else:
            self._handle = self._loop.call_later(delay_ns / 1e9, self._fire)

    def _fire(self) -> None:
        self._handle = self._timer_due = None
        keys = self._keys
        buckets = self._buckets
        clock = self._clock
        slack = self.slack_ns
        now = clock()
        budget = self._count + 64  # every job runs at most about once per tick
        while keys and budget > 0:
            key = keys[0]
            if (key + 1) * TICK_NS > now + slack:  # not every job of the bucket is due yet
                break
            heapq.heappop(keys)
            bucket = buckets.pop(key)
            self._count -= len(bucket)
            budget -= len(bucket)
            for job in bucket:
                if job.finished:
                    continue
                try:
                    next_due = job.run(now, now + slack)
                except Exception:  # the boundary: one broken job must not stop the others
                    logger.exception("a stream job failed; aborting it")
                    job.abort("error")
                    next_due = None
                if next_due is not None:
                    self._put(job, next_due)
                now = clock()
        self._arm(self.min_delay_ns)


class Wakeup:
    """A job that resolves a future at its due time (slow headers, non-streamed bodies)."""

    __slots__ = ("done", "finished")

    def __init__(self, done: asyncio.Future[str]) -> None:
        self.done = done
        self.finished = False

    def run(self, now_ns: int, horizon_ns: int) -> int | None:
        self.abort("due")
        return None

    def abort(self, reason: str) -> None:
        self.finished = True
        if not self.done.done():
            self.done.set_result(reason)


class StreamJob:
    """Writes one prepared response's frames at their due times.

    Args:
        rendered: the frames to write.
        start_ns: the request's receipt; frame offsets count from it.
        transport: the connection's transport, after ``prepare()``.
        done: resolved with the outcome: ``complete``, ``cut`` (the disconnect fault
            closed the connection), ``disconnected`` or ``shutdown``.
        truth: the request's ground-truth record.
        metrics: the worker's metrics.
        clock: monotonic nanoseconds.
        high_water_bytes: hold frames while the transport buffers more than this.
        split: None, ``"bytes"`` or ``"random"``: how to cut every write into chunks.
        split_seed: seeds the random cut points.
    """

    __slots__ = (
        "_clock",
        "_high_water",
        "_index",
        "_metrics",
        "_rng",
        "_split",
        "_start_ns",
        "done",
        "finished",
        "frames",
        "rendered",
        "transport",
        "truth",
    )

    def __init__(
        self,
        *,
        rendered: Rendered,
        start_ns: int,
        transport: asyncio.Transport | None,
        done: asyncio.Future[str],
        truth: RequestTruth,
        metrics: Metrics,
        clock: Callable[[], int] = time.perf_counter_ns,
        high_water_bytes: int = 256 * 1024,
        split: str | None = None,
        split_seed: int = 0,
    ) -> None:
        self.rendered = rendered
        self.frames = rendered.frames
        self._index = 0
        self._start_ns = start_ns
        self.transport = transport
        self.done = done
        self.truth = truth
        self._metrics = metrics
        self._clock = clock
        self._high_water = high_water_bytes
        self._split = split
        self._rng = random.Random(split_seed) if split == "random" else None
        self.finished = False

    @property
    def first_due_ns(self) -> int:
        """When the first frame is due (or now-ish when there is none)."""
        return self._start_ns + (self.frames[0].offset_ns if self.frames else 0)

    def run(self, now_ns: int, horizon_ns: int) -> int | None:
        """Write every frame due by ``horizon_ns`` in one write; see the module docstring.

        The common case, one frame due and no split fault, takes a short path: this runs
        once per token of every stream, so it indexes the frame tuples instead of
        naming their fields and records the token inline.

        Returns:
            When to run next: the next frame's due time, a probe or a hold; None at the end.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            self._disconnected()
            return None
        frames = self.frames
        index = self._index
        count = len(frames)
        if index >= count:
            self._end()
            return None
        start = self._start_ns
        due = start + frames[index][0]
        if due > horizon_ns:  # a probe: nothing due yet, the client is still there
            return min(due, now_ns + PROBE_NS)
        if transport.get_write_buffer_size() > self._high_water:
            self.truth.held += 1
            self._metrics.counters["write_holds"] += 1
            return now_ns + HOLD_NS
        stop = index + 1
        while stop < count and start + frames[stop][0] <= horizon_ns:
            stop += 1
        if stop == index + 1 and self._split is None:
            _, data, tokens = frames[index]
            written = self._clock()  # just before the hand-over: no client sees it earlier
            if data:
                transport.write(b"%x\r\n%b\r\n" % (len(data), data))
            truth = self.truth
            truth.last_write_ns = written
            if tokens:
                truth.scheduled_ns.append(due)
                truth.token_write_ns.append(written)
                self._metrics.observe_lateness(written - due)
                self._count_tokens(tokens)
        else:
            batch = frames[index:stop]
            data = b"".join(frame[1] for frame in batch)
            payload = chunk_frames(data, self._split, self._rng) if data else b""
            written = self._clock()
            if payload:
                transport.write(payload)
            self._record(batch, written)
        self._index = stop
        if stop >= count:
            self._end()
            return None
        return min(start + frames[stop][0], written + PROBE_NS)

    def _record(self, batch: tuple[Frame, ...], written: int) -> None:
        truth = self.truth
        truth.last_write_ns = written
        tokens = 0
        observe = self._metrics.observe_lateness
        for frame in batch:
            if frame.tokens:
                scheduled = self._start_ns + frame.offset_ns
                truth.scheduled_ns.append(scheduled)
                truth.token_write_ns.append(written)
                observe(written - scheduled)
                tokens += frame.tokens
        if tokens:
            self._count_tokens(tokens)

    def _count_tokens(self, tokens: int) -> None:
        truth = self.truth
        if truth.tokens_sent == 0 and truth.token_write_ns:  # the first token is out
            self._metrics.histograms.observe("ttft", truth.token_write_ns[0] - truth.received_ns)
        truth.tokens_sent += tokens
        self._metrics.counters["tokens_sent"] += tokens
        if truth.disconnect_detected_ns is not None:  # never, by construction
            truth.tokens_after_disconnect += tokens
            self._metrics.counters["tokens_after_disconnect"] += tokens

    def _end(self) -> None:
        if self.rendered.cut and self.transport is not None:
            self.transport.close()  # the disconnect fault: no terminating chunk
            self._settle("cut")
        else:
            self._settle("complete")

    def _disconnected(self) -> None:
        self.truth.disconnect_detected_ns = self._clock()
        self._metrics.counters["client_disconnects"] += 1
        self._settle("disconnected")

    def abort(self, reason: str) -> None:
        """Stop at once, writing nothing more (``reason``: ``shutdown`` or ``error``)."""
        self._settle(reason)

    def _settle(self, reason: str) -> None:
        self.finished = True
        self.frames = ()  # free the pre-rendered bytes at once
        if not self.done.done():
            self.done.set_result(reason)
