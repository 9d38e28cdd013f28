"""The state one worker's application holds, under a typed ``web.AppKey``.

``Runtime`` is created with the application; the parts that need the running event loop
(the tick scheduler, the peers of a multi-worker server) are set by ``cleanup_ctx``
generators in ``mock_server.app`` and torn down with them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from mock_server.config import MockConfig
from mock_server.metrics import Metrics
from mock_server.prefill import PrefixCache
from mock_server.stream import TickScheduler
from mock_server.truth import TruthLog
from mock_server.vllm_metrics import Histograms, edges_for

if TYPE_CHECKING:
    from mock_server.cluster import Peers

__all__ = ["RUNTIME", "Runtime", "WorkerInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """Which worker this is, and where its siblings listen.

    Attributes:
        index: this worker's index, 0-based; request ids start with it.
        count: how many workers share the port.
        socket_dir: the directory of every worker's Unix socket (``worker-<i>.sock``), or
            None for a single worker.
    """

    index: int = 0
    count: int = 1
    socket_dir: str | None = None

    def socket_path(self, index: int) -> str:
        """The Unix socket of worker ``index``."""
        assert self.socket_dir is not None
        return os.path.join(self.socket_dir, f"worker-{index}.sock")


@dataclass(slots=True, kw_only=True)
class Runtime:
    """One worker's mutable state.

    Attributes:
        config: the configuration.
        worker: which worker this is.
        clock: monotonic nanoseconds (ground truth, schedule).
        wall_clock_s: Unix seconds (the ``created`` fields).
        metrics: the worker's counters.
        truth: the ground-truth ring buffer.
        scheduler: the tick scheduler (set while the app runs).
        peers: the other workers (set while a multi-worker app runs).
        waiters: request id -> event set when that request ends (requests in progress).
        prefix_cache: the worker's prefix cache (empty and unused when its size is 0).
    """

    config: MockConfig
    worker: WorkerInfo = field(default_factory=WorkerInfo)
    clock: Callable[[], int] = time.perf_counter_ns
    wall_clock_s: Callable[[], float] = time.time
    metrics: Metrics = field(default_factory=Metrics)
    truth: TruthLog = field(init=False)
    prefix_cache: PrefixCache = field(init=False)
    scheduler: TickScheduler | None = None
    peers: Peers | None = None
    waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    _sequence: itertools.count = field(init=False, default_factory=lambda: itertools.count(1))
    _boot: str = field(init=False, default_factory=lambda: os.urandom(8).hex())

    def __post_init__(self) -> None:
        self.truth = TruthLog(self.config.truth_capacity)
        self.metrics.histograms = Histograms(edges_for(self.config))
        self.prefix_cache = PrefixCache(
            self.config.prefix_cache_tokens, self.config.prefix_block_tokens
        )

    def next_request(self) -> tuple[str, int]:
        """A new request id (``<worker>-<sequence>``) and its sequence number."""
        sequence = next(self._sequence)
        return f"{self.worker.index}-{sequence:06d}", sequence

    def response_hex(self, request_id: str) -> str:
        """The hex digits of a response id (unique per server start and request)."""
        return hashlib.sha256(f"{self._boot}:{request_id}".encode()).hexdigest()[:24]

    def draw_seed(self, seed: int, sequence: int) -> int:
        """The seed of a request's drawn times and faults: (seed, worker, sequence)."""
        text = f"{seed}:{self.worker.index}:{sequence}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


#: The application's ``Runtime``.
RUNTIME = web.AppKey("runtime", Runtime)
