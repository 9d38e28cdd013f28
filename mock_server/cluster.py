"""Workers asking each other: ground truth and metrics across ``--workers N``.

With SO_REUSEPORT the kernel hands each connection to any worker, so a
``GET /mock/requests/{id}`` can land on a worker that never saw that request, and one
worker's ``/metrics`` knows only its own counters. Every worker therefore also listens on
its own Unix socket (``worker-<i>.sock`` in a directory the parent made); ``Peers`` reaches
the others through it: a request record is fetched from the worker its id names, and
``/metrics`` sums every worker's snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from mock_server.state import WorkerInfo

__all__ = ["INTERNAL_METRICS_PATH", "Peers"]

logger = logging.getLogger(__name__)

#: The path where a worker serves its own metrics snapshot as JSON.
INTERNAL_METRICS_PATH = "/mock/internal/metrics"


class Peers:
    """HTTP clients to the other workers' Unix sockets.

    Args:
        worker: this worker, and where the sockets are.
        timeout_s: the total timeout of one request to a peer.
    """

    def __init__(self, worker: WorkerInfo, *, timeout_s: float = 5.0) -> None:
        self._worker = worker
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        """Open one session per other worker."""
        for index in range(self._worker.count):
            if index != self._worker.index:
                connector = aiohttp.UnixConnector(path=self._worker.socket_path(index))
                self._sessions[index] = aiohttp.ClientSession(
                    connector=connector, timeout=self._timeout
                )

    async def close(self) -> None:
        """Close every session."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    def owns(self, index: int) -> bool:
        """True when ``index`` is another worker this one can reach."""
        return index in self._sessions

    async def get(self, index: int, path: str) -> tuple[int, bytes, str]:
        """GET ``path`` from worker ``index``.

        Args:
            index: the worker.
            path: the path and query.

        Returns:
            The status, the body and the content type.

        Raises:
            aiohttp.ClientError: the worker could not be reached.
            asyncio.TimeoutError: it did not answer in time.
        """
        session = self._sessions[index]
        async with session.get(f"http://worker{index}{path}") as response:
            return response.status, await response.read(), response.content_type

    async def metrics_snapshots(self) -> list[dict[str, Any]]:
        """Every other worker's metrics snapshot (an unreachable worker is left out)."""

        async def one(index: int) -> dict[str, Any] | None:
            try:
                session = self._sessions[index]
                async with session.get(f"http://worker{index}{INTERNAL_METRICS_PATH}") as reply:
                    reply.raise_for_status()
                    return await reply.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                logger.warning("worker %d did not give its metrics: %s", index, exc)
                return None

        results = await asyncio.gather(*(one(index) for index in sorted(self._sessions)))
        return [result for result in results if result is not None]
