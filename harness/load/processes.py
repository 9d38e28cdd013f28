"""One segment of load spread over N client processes (``--processes N``).

A Python event loop uses one core. To use every core, the segment's schedule is dealt out
round-robin: process ``k`` of ``N`` runs the users, or the scheduled requests, whose
number modulo ``N`` is ``k``, all from one start time, so the merged schedule is exactly
the one a single process would have followed (the same open-loop arrival times, the same
user ramp-up). ``--requests`` is dealt out the same way. Each process is pinned to a CPU
of its own where the run may use enough of them (``harness.load.placement``), away from
the embedded mock's.

Each process runs an ordinary :class:`~harness.load.runner.Runner` and sends its finished
records back in small batches over a pipe; the parent hands them to the run's sink as
they arrive, so ``results.jsonl`` grows during the run as it does with one process.
Arrival times are comparable across processes because ``time.perf_counter_ns`` is the
system-wide monotonic clock on Linux.

The children ignore SIGINT and SIGTERM: the parent relays a user's stop and cancel to
them, so the first Ctrl-C (or SIGTERM from ``timeout``, which reaches the whole process
group) still lets in-flight requests finish and the second cancels them.

No child outlives the parent (``harness.lifeline``): end of file on its control pipe, which
comes however the parent ends, cancels its requests and ends it; on Linux the kernel also
kills it when the parent's thread that started it ends (PR_SET_PDEATHSIG with SIGKILL, as
SIGTERM is ignored), and that thread is the one awaiting ``ProcessRunner.run``, which
outlives every child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from harness.errors import HarnessError
from harness.lifeline import die_with_parent
from harness.load.config import RunConfig
from harness.load.health import ClientSamples
from harness.load.ledger import ScheduleLedger
from harness.load.runner import Progress, Runner, SegmentRunner
from harness.record import RequestRecord
from harness.transports import run_event_loop

__all__ = ["ProcessRunner", "shard_requests"]

log = logging.getLogger(__name__)

Sink = Callable[[RequestRecord], None]

#: A child sends its records at least this often, and its count of started requests.
FLUSH_INTERVAL_S = 0.1
#: ... or as soon as this many records are waiting.
FLUSH_RECORDS = 256
#: How long the children may take to import and get ready.
READY_TIMEOUT_S = 60.0
#: The common start is this far after the last child is ready, time for each to set up its
#: transport (a child that is later still starts its overdue requests at once).
START_MARGIN_NS = 250_000_000


def shard_requests(requests: int | None, index: int, count: int) -> int | None:
    """How many of ``requests`` process ``index`` of ``count`` starts (round-robin)."""
    if requests is None:
        return None
    return requests // count + (1 if index < requests % count else 0)


class ProcessRunner(SegmentRunner):
    """Runs one segment of ``config`` in ``config.processes`` child processes."""

    def __init__(self, config: RunConfig, sink: Sink, *, segment: str = "") -> None:
        self.config = config
        self.segment = segment
        self.progress = Progress()
        self.ledger = ScheduleLedger()
        self.client = ClientSamples() if config.self_watch else None
        #: children that ended without reporting back (their in-flight records are lost)
        self.failed: list[str] = []
        #: per child, the CPUs it found itself allowed once placed (empty: not known)
        self.placed: dict[int, tuple[int, ...]] = {}
        self._sink = sink
        self._started = [0] * config.processes
        self._controls: list[Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._tell("stop")

    def cancel(self) -> None:
        self._tell("cancel")

    def _tell(self, what: str) -> None:
        for control in self._controls:
            with contextlib.suppress(OSError, ValueError):  # that child has already ended
                control.send((what,))

    async def run(self) -> None:
        # start the children, wait until every one has ended, and collect their records
        count = self.config.processes
        placement = self.config.placement()  # its warning is in the summary's config
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self._loop = asyncio.get_running_loop()
        ready = [self._loop.create_future() for _ in range(count)]
        done = [self._loop.create_future() for _ in range(count)]
        children = []
        for index in range(count):
            data_out, data_in = context.Pipe(duplex=False)
            control_out, control_in = context.Pipe(duplex=False)
            shard = replace(
                self.config,
                processes=1,
                bounds=replace(
                    self.config.bounds,
                    requests=shard_requests(self.config.bounds.requests, index, count),
                ),
            )
            if shard.bounds.requests == 0:  # fewer requests than processes
                ready[index].set_result(None)
                done[index].set_result(None)
                continue
            child = context.Process(
                target=_child,
                args=(
                    shard,
                    self.segment,
                    (index, count),
                    placement.cpus[index],
                    data_in,
                    control_out,
                    os.getpid(),
                ),
                name=f"sse-harness-client-{index}",
                daemon=True,
            )
            child.start()
            data_in.close()
            control_out.close()
            self._controls.append(control_in)
            children.append(child)
            threading.Thread(
                target=self._receive,
                args=(index, data_out, ready[index], done[index]),
                name=f"sse-harness-records-{index}",
                daemon=True,
            ).start()
        try:
            await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT_S)
            start_ns = time.perf_counter_ns() + START_MARGIN_NS
            self._tell_start(start_ns)
            await asyncio.gather(*done)
        except TimeoutError as exc:
            self.cancel()
            raise HarnessError(
                f"the client processes were not ready within {READY_TIMEOUT_S:g} s"
            ) from exc
        finally:
            for child in children:
                await asyncio.to_thread(child.join, 10.0)
                if child.is_alive():
                    child.kill()
            for control in self._controls:
                control.close()
            self._controls.clear()

    def _tell_start(self, start_ns: int) -> None:
        for control in self._controls:
            control.send(("start", start_ns))

    # -- the parent's side of the pipes (a thread per child) -----------------------------

    def _receive(
        self,
        index: int,
        data: Connection,
        ready: asyncio.Future[None],
        done: asyncio.Future[None],
    ) -> None:
        loop = self._loop
        assert loop is not None
        try:
            while True:
                message = data.recv()
                loop.call_soon_threadsafe(self._on_message, index, message, ready, done)
                if message[0] == "done":
                    return
        except (EOFError, OSError):
            name = f"client process {index}"
            log.warning("%s ended without reporting back; its in-flight requests are lost", name)
            loop.call_soon_threadsafe(self._on_lost, name, ready, done)
        finally:
            data.close()

    def _on_message(
        self,
        index: int,
        message: tuple[Any, ...],
        ready: asyncio.Future[None],
        done: asyncio.Future[None],
    ) -> None:
        kind = message[0]
        if kind == "ready":
            self.placed[index] = tuple(message[1]) if len(message) > 1 else ()
            _settle(ready)
        elif kind == "records":
            self._started[index] = message[1]
            self.progress.started = sum(self._started)
            for record in message[2]:
                self.progress.add(record)
                self._sink(record)
        elif kind == "done":
            if len(message) > 1:  # the child's books and what it saw of itself
                self.ledger.add(ScheduleLedger.from_dict(message[1]))
                if message[2] is not None and self.client is not None:
                    self.client.extend(ClientSamples.from_dict(message[2]))
            _settle(ready)
            _settle(done)

    def _on_lost(self, name: str, ready: asyncio.Future[None], done: asyncio.Future[None]) -> None:
        self.failed.append(name)
        _settle(ready)
        _settle(done)


def _own_cpus() -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- the child's side --------------------------------------------------------------------


def _child(
    config: RunConfig,
    segment: str,
    shard: tuple[int, int],
    cpus: tuple[int, ...],
    data: Connection,
    control: Connection,
    parent_pid: int,
) -> None:
    """A client process: on its CPUs, wait for the common start, run the shard, send
    records back."""
    die_with_parent(parent_pid, signal.SIGKILL)  # its records could go nowhere
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # a CPU taken away since: run where allowed
            os.sched_setaffinity(0, cpus)
    for signum in (signal.SIGINT, signal.SIGTERM):  # the parent relays a stop
        signal.signal(signum, signal.SIG_IGN)
    pending: list[RequestRecord] = []
    runners: list[Runner] = []

    def flush() -> None:
        started = runners[0].progress.started if runners else 0
        data.send(("records", started, pending[:]))
        pending.clear()

    def sink(record: RequestRecord) -> None:
        pending.append(record)
        if len(pending) >= FLUSH_RECORDS:
            flush()

    async def main(start_ns: int) -> None:
        runner = Runner(config, sink, segment=segment, shard=shard, start_ns=start_ns)
        runners.append(runner)
        loop = asyncio.get_running_loop()

        def listen() -> None:
            try:
                while True:
                    what = control.recv()[0]
                    loop.call_soon_threadsafe(runner.cancel if what == "cancel" else runner.stop)
            except (EOFError, OSError):  # the parent has ended: nobody takes the records
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(runner.cancel)
            except RuntimeError:  # the loop has ended
                return

        threading.Thread(target=listen, name="sse-harness-control", daemon=True).start()

        async def flusher() -> None:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL_S)
                flush()

        task = asyncio.create_task(flusher())
        try:
            await runner.run()
        finally:
            task.cancel()

    try:
        data.send(("ready", _own_cpus()))
        message = control.recv()
        if message[0] != "start":  # stopped before it began
            data.send(("done",))
            return
        try:
            run_event_loop(main(message[1]))
        finally:
            flush()
            if runners:
                runner = runners[0]
                client = runner.client.as_dict() if runner.client is not None else None
                data.send(("done", runner.ledger.as_dict(), client))
            else:
                data.send(("done",))
            data.close()
    except (EOFError, BrokenPipeError):  # the parent has ended: there is no one to tell
        return
