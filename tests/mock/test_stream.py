"""The writer: chunk frames, disconnect detection, the high-water mark, the tick scheduler."""

from __future__ import annotations

import asyncio
import random

from mock_server.metrics import Metrics
from mock_server.render import Frame, Rendered
from mock_server.stream import HOLD_NS, PROBE_NS, StreamJob, TickScheduler, chunk_frames
from mock_server.truth import RequestTruth


class FakeTransport:
    """Records writes; can be closed or made to report a full buffer."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        self.closing = True


class FakeClock:
    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def dechunk(data: bytes) -> list[bytes]:
    """The payloads of HTTP/1.1 chunk frames."""
    out = []
    while data:
        size_text, _, rest = data.partition(b"\r\n")
        size = int(size_text, 16)
        out.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        data = rest[size + 2 :]
    return out


FRAMES = (
    Frame(0, b"head;"),
    Frame(10_000_000, b"t1;", 1),
    Frame(20_000_000, b"t2;", 1),
    Frame(20_000_000, b"end;"),
)


def job_for(frames=FRAMES, *, cut: bool = False, split=None, start: int = 1_000_000_000):
    loop = asyncio.new_event_loop()
    transport, clock, metrics = FakeTransport(), FakeClock(start), Metrics()
    truth = RequestTruth(id="0-1", endpoint="chat", received_ns=start)
    job = StreamJob(
        rendered=Rendered(frames, "text/event-stream", cut),
        start_ns=start,
        transport=transport,  # type: ignore[arg-type]
        done=loop.create_future(),
        truth=truth,
        metrics=metrics,
        clock=clock,
        high_water_bytes=1024,
        split=split,
    )
    return job, transport, clock, truth, metrics, loop


def test_chunk_frames_frame_one_chunk_each_byte_or_random_pieces() -> None:
    assert chunk_frames(b"hello") == b"5\r\nhello\r\n"
    assert dechunk(chunk_frames(b"abc", "bytes")) == [b"a", b"b", b"c"]
    pieces = dechunk(chunk_frames(b"0123456789" * 5, "random", random.Random(3)))
    assert b"".join(pieces) == b"0123456789" * 5
    assert len(pieces) > 1


def test_a_job_writes_what_is_due_and_records_write_times_and_lateness() -> None:
    job, transport, clock, truth, metrics, loop = job_for()
    start = 1_000_000_000
    assert job.run(start, start) == start + 10_000_000  # the header frame now, then token 1's time
    clock.now = start + 10_400_000  # a late tick
    assert job.run(clock.now, clock.now) == start + 20_000_000  # still due at its absolute time
    clock.now = start + 20_000_000
    assert job.run(clock.now, clock.now) is None  # token 2 and the end in one write
    assert [dechunk(w) for w in transport.writes] == [[b"head;"], [b"t1;"], [b"t2;end;"]]
    assert truth.scheduled_ns.tolist() == [start + 10_000_000, start + 20_000_000]
    assert truth.token_write_ns.tolist() == [start + 10_400_000, start + 20_000_000]
    assert truth.tokens_sent == 2
    assert metrics.lateness_count == 2
    assert metrics.lateness_sum_ns == 400_000
    assert loop.run_until_complete(job.done) == "complete"
    loop.close()


def test_a_closing_transport_is_a_disconnect_and_nothing_more_is_written() -> None:
    job, transport, clock, truth, metrics, loop = job_for()
    job.run(clock.now, clock.now)
    transport.closing = True
    clock.now += 10_000_000
    assert job.run(clock.now, clock.now) is None
    assert truth.disconnect_detected_ns == clock.now
    assert truth.tokens_sent == 0
    assert truth.tokens_after_disconnect == 0
    assert len(transport.writes) == 1
    assert metrics.counters["client_disconnects"] == 1
    assert job.frames == ()  # the pre-rendered bytes are freed
    assert loop.run_until_complete(job.done) == "disconnected"
    loop.close()


def test_a_full_transport_buffer_holds_the_frame_for_a_tick() -> None:
    job, transport, clock, truth, metrics, loop = job_for()
    transport.buffered = 4096
    assert job.run(clock.now, clock.now) == clock.now + HOLD_NS
    assert transport.writes == []
    assert truth.held == 1
    assert metrics.counters["write_holds"] == 1
    transport.buffered = 0
    job.run(clock.now + HOLD_NS, clock.now + HOLD_NS)
    assert dechunk(transport.writes[0]) == [b"head;"]
    loop.close()


def test_a_long_wait_is_broken_by_disconnect_probes() -> None:
    frames = (Frame(0, b"head;"), Frame(10 * PROBE_NS, b"t1;", 1))
    job, transport, clock, _, _, loop = job_for(frames)
    assert job.run(clock.now, clock.now) == clock.now + PROBE_NS
    assert (
        job.run(clock.now + PROBE_NS, clock.now + PROBE_NS) == clock.now + 2 * PROBE_NS
    )  # a probe writes nothing
    assert len(transport.writes) == 1
    loop.close()


def test_the_disconnect_fault_closes_the_transport_after_the_last_frame() -> None:
    job, transport, clock, _, metrics, loop = job_for(FRAMES[:2], cut=True)
    job.run(clock.now, clock.now)
    clock.now += 10_000_000
    assert job.run(clock.now, clock.now) is None
    assert transport.closing
    assert loop.run_until_complete(job.done) == "cut"
    assert metrics.counters["client_disconnects"] == 0  # the server cut it, not the client
    loop.close()


def test_the_tick_scheduler_wakes_jobs_in_due_order() -> None:
    async def run() -> list[str]:
        scheduler = TickScheduler(asyncio.get_running_loop())
        now = scheduler._clock()
        order: list[str] = []
        futures = []
        for name, delay_ms in (("c", 30), ("a", 10), ("b", 20)):
            future = scheduler.wake_at(now + delay_ms * 1_000_000)
            future.add_done_callback(lambda _, name=name: order.append(name))
            futures.append(future)
        assert len(scheduler) == 3
        results = await asyncio.wait_for(asyncio.gather(*futures), 5)
        assert results == ["due"] * 3
        assert len(scheduler) == 0
        assert scheduler._clock() - now >= 30_000_000  # none ran before it was due
        scheduler.close()
        return order

    assert asyncio.run(run()) == ["a", "b", "c"]


def test_closing_the_scheduler_aborts_waiting_jobs() -> None:
    async def run() -> str:
        scheduler = TickScheduler(asyncio.get_running_loop())
        future = scheduler.wake_at(scheduler._clock() + 60_000_000_000)
        scheduler.close()
        return await asyncio.wait_for(future, 5)

    assert asyncio.run(run()) == "shutdown"


def test_a_new_request_lets_due_frames_go_out_first() -> None:
    async def run() -> None:
        clock = FakeClock(1_000)
        scheduler = TickScheduler(asyncio.get_running_loop(), clock=clock)
        due = scheduler.wake_at(500)  # already due: the timer is armed to fire at once
        await scheduler.yield_to_writes()
        assert due.done()  # the due job ran before the new request went on
        scheduler.wake_at(60_000_000_000)  # far off: no reason to wait
        turns = 0

        def count() -> None:
            nonlocal turns
            turns += 1

        asyncio.get_running_loop().call_soon(count)
        await scheduler.yield_to_writes()
        assert turns == 0  # returned without giving up its turn
        scheduler.close()

    asyncio.run(run())
