"""Serving the mock: one worker, N workers sharing the port, or a background thread.

* ``serve(config)`` runs until SIGINT or SIGTERM. One worker runs in this process; with
  ``workers > 1`` the parent starts N processes that each bind the same port with
  SO_REUSEPORT (the parent holds the port meanwhile, so ``--port 0`` works too), and each
  worker also listens on ``worker-<i>.sock`` in a temporary directory so that the
  workers can answer for each other (``mock_server.cluster``). A worker stops as on
  SIGTERM when the parent ends, even by SIGKILL (Linux: ``harness.lifeline``).
* ``start_in_thread(config)`` runs one worker on its own event loop in a background
  thread and returns a ``RunningMock`` (``base_url``, ``truth(id)``, ``stop()``), for tests
  and the harness's embedded target.

Every worker uses uvloop when it can be imported, a listen backlog of 4096, and raises
its open-files limit to the hard maximum. A connection without a whole request head for
``keepalive_timeout_s`` (idle, or a head left unfinished) is closed by aiohttp's
keep-alive timer; a stalled body is the handler's to end (``body_timeout_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from harness.lifeline import die_with_parent
from harness.limits import raise_open_files_limit, steady_collector
from mock_server.app import create_app
from mock_server.config import MockConfig
from mock_server.state import RUNTIME, WorkerInfo

__all__ = ["BACKLOG", "RunningMock", "serve", "start_in_thread"]

logger = logging.getLogger(__name__)

#: The listen backlog of every worker.
BACKLOG = 4096
_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop can be imported, else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _start(config: MockConfig, worker: WorkerInfo, port: int) -> tuple[web.AppRunner, int]:
    """Start one worker's app; SO_REUSEPORT only when workers share the port."""
    runner = web.AppRunner(
        create_app(config, worker=worker),
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=config.keepalive_timeout_s,
    )
    await runner.setup()
    shared = worker.count > 1
    site = web.TCPSite(runner, config.host, port, backlog=BACKLOG, reuse_port=shared)
    await site.start()
    if worker.socket_dir is not None:
        await web.UnixSite(runner, worker.socket_path(worker.index)).start()
    bound = next(address[1] for address in runner.addresses if isinstance(address, tuple))
    return runner, bound


async def _serve_worker(
    config: MockConfig, worker: WorkerInfo, port: int, on_ready: Callable[[int], None]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner, bound = await _start(config, worker, port)
    try:
        on_ready(bound)
        await stop.wait()
    finally:
        await runner.cleanup()


def _worker_main(
    config: MockConfig, index: int, port: int, socket_dir: str, ready: Any, parent_pid: int
) -> None:
    """The body of one worker process of a multi-worker server."""
    die_with_parent(parent_pid, signal.SIGTERM)  # no worker outlives a server killed by SIGKILL
    raise_open_files_limit()
    worker = WorkerInfo(index=index, count=config.workers, socket_dir=socket_dir)
    loop = new_event_loop()
    try:
        with steady_collector():
            loop.run_until_complete(
                _serve_worker(
                    config, worker, port, lambda bound: ready.put(("ready", index, bound))
                )
            )
    except Exception as exc:  # the process boundary: tell the parent, then exit non-zero
        ready.put(("error", index, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        loop.close()


def serve(config: MockConfig, *, on_ready: Callable[[int], None] | None = None) -> int:
    """Serve until SIGINT or SIGTERM.

    Args:
        config: the configuration (``workers`` processes share ``host:port``).
        on_ready: called with the bound port once every worker listens.

    Returns:
        0 after a clean stop; 1 when a worker failed.

    Raises:
        OSError: the port cannot be bound.
    """
    raise_open_files_limit()
    if config.workers == 1:
        loop = new_event_loop()
        try:
            with steady_collector():
                loop.run_until_complete(
                    _serve_worker(config, WorkerInfo(), config.port, on_ready or (lambda _: None))
                )
        finally:
            loop.close()
        return 0
    return _serve_workers(config, on_ready or (lambda _: None))


def _reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket that holds the port for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    return holder


def _serve_workers(config: MockConfig, on_ready: Callable[[int], None]) -> int:
    holder = _reserve_port(config.host, config.port)  # raises OSError before anything starts
    port = holder.getsockname()[1]
    socket_dir = tempfile.mkdtemp(prefix="mock-llm-")
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    processes = [
        context.Process(
            target=_worker_main,
            args=(config, index, port, socket_dir, ready, os.getpid()),
            name=f"mock-worker-{index}",
            daemon=True,
        )
        for index in range(config.workers)
    ]
    try:
        for process in processes:
            process.start()
        failed = _await_ready(ready, config.workers)
        holder.close()
        if failed:
            logger.error("a worker failed to start: %s", failed)
            return 1
        on_ready(port)
        while not stop.wait(0.5):  # serve until a signal, or until a worker dies
            if any(not process.is_alive() for process in processes):
                logger.error("a worker exited; stopping the others")
                return 1
        return 0
    finally:
        holder.close()
        _stop_processes(processes)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(socket_dir, ignore_errors=True)


def _await_ready(ready: Any, count: int) -> str | None:
    """Wait for every worker's report; return the first error, or None."""
    waiting = set(range(count))
    while waiting:
        try:
            kind, index, detail = ready.get(timeout=_READY_TIMEOUT_S)
        except queue.Empty:
            return f"workers {sorted(waiting)} did not start within {_READY_TIMEOUT_S:g} s"
        if kind == "error":
            return f"worker {index}: {detail}"
        waiting.discard(index)
    return None


def _stop_processes(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM to that one pid
    for process in processes:
        process.join(_STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join(_STOP_TIMEOUT_S)


class RunningMock:
    """A mock server running on its own event loop in a background thread.

    Use it as a context manager, or call ``stop()``. Made by ``start_in_thread``.

    Attributes:
        host: the address it listens on.
        port: the bound port.
        base_url: ``http://host:port``.
        config: its configuration.
    """

    def __init__(self, config: MockConfig, port: int) -> None:
        self.config = config
        self.host = config.host
        self.port = port
        self.base_url = f"http://{config.host}:{port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunningMock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout_s: float) -> Any:
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise RuntimeError("the mock server is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def truth(self, request_id: str, *, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The ground-truth record of a request, or None when unknown.

        Args:
            request_id: the ``x-mock-request-id`` of its response.
            wait_s: wait up to this long for the request to end first.

        Returns:
            ``RequestTruth.as_dict()``, or None.
        """

        async def read() -> dict[str, Any] | None:
            assert self._runner is not None
            runtime = self._runner.app[RUNTIME]
            waiter = runtime.waiters.get(request_id)
            if waiter is not None and wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), wait_s)
            record = runtime.truth.get(request_id)
            return None if record is None else record.as_dict()

        return self._call(read(), wait_s + _STOP_TIMEOUT_S)

    def metrics_snapshot(self) -> dict[str, Any]:
        """The server's counters (``Metrics.snapshot()``)."""

        async def read() -> dict[str, Any]:
            assert self._runner is not None
            return self._runner.app[RUNTIME].metrics.snapshot()

        return self._call(read(), _STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
            self._thread = None


def start_in_thread(config: MockConfig | None = None, *, port: int = 0) -> RunningMock:
    """Run one mock worker in a background thread.

    Args:
        config: the configuration (``workers`` and ``port`` are ignored); default values
            when None.
        port: the port to bind; 0 picks a free one.

    Returns:
        The running server; stop it with ``stop()`` or a ``with`` block.

    Raises:
        OSError: the port cannot be bound.
        RuntimeError: the server did not start within 30 s.
    """
    config = config or MockConfig()
    started = threading.Event()
    result: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        try:
            runner, bound = await _start(config, WorkerInfo(), port)
        except BaseException as exc:
            result["error"] = exc
            started.set()
            raise
        result.update(runner=runner, port=bound, stop=stop, loop=asyncio.get_running_loop())
        started.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        loop = new_event_loop()
        try:
            loop.run_until_complete(main())
        except BaseException:  # reported through ``result``; the thread just ends
            logger.debug("the mock server thread ended with an error", exc_info=True)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="mock-llm-server", daemon=True)
    thread.start()
    if not started.wait(_READY_TIMEOUT_S):
        raise RuntimeError("the mock server did not start within 30 s")
    if "error" in result:
        thread.join(_STOP_TIMEOUT_S)
        raise result["error"]
    mock = RunningMock(config, result["port"])
    mock._loop, mock._stop, mock._runner = result["loop"], result["stop"], result["runner"]
    mock._thread = thread
    return mock
