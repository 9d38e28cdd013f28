"""Process settings that many open streams need (the client's and the mock's alike).

The open-files limit, raised to its hard maximum, and a garbage collector that does not
stall the event loop in the middle of a load.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "FULL_COLLECTION_EVERY",
    "FULL_COLLECTION_INTERVAL_S",
    "QUIET_INTERVALS",
    "frozen_collector",
    "raise_open_files_limit",
    "steady_collector",
]

log = logging.getLogger(__name__)

#: While a load runs, a full garbage collection waits for this many young ones...
FULL_COLLECTION_EVERY = 1000
#: ...or for this many seconds, where the oldest generation grew (see ``steady_collector``).
FULL_COLLECTION_INTERVAL_S = 10.0
#: ...or for this many intervals where no young collection found cyclic garbage.
QUIET_INTERVALS = 6


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard maximum.

    Returns:
        The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit to %d: %s", target, exc)
    return soft


@contextmanager
def frozen_collector() -> Iterator[None]:
    """Keep the objects alive before the block (a run's records) out of the collector's
    reach inside it: what the block makes is collected as ever, and its full collections
    no longer walk every record (a tenth of the report's time at 10,000 records)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def steady_collector(
    interval_s: float = FULL_COLLECTION_INTERVAL_S, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """Keep full garbage collections from stalling a load, yet bound what they defer.

    A full collection walks every tracked object and stops the event loop meanwhile:
    with 1,000 streams on this kind of machine, 60 ms in which no socket is read or
    written, so every token in that time is stamped (client) or sent (mock) late.
    Inside the block, the objects alive before it (modules, pandas) are moved out of
    the collector's reach (``gc.freeze``), and a full collection waits for
    ``FULL_COLLECTION_EVERY`` young ones instead of ten; young collections go on as
    before.

    Some libraries leave cyclic garbage behind every request (httpx's connection pool
    does, some 35 objects a request), which only a full collection frees: held back
    for good, it grows the process for as long as the load runs. So once
    ``interval_s`` has passed since the last full collection, the next young one may
    become full, and does when the oldest generation grew by a quarter since (Python's
    own rule), provided a young collection found cyclic garbage since: a load that makes
    cycles gets one pause per interval at most. One whose young collections find none
    (the ``kernel`` and ``aiohttp`` transports leave none) is not paused for a full
    collection that would free nothing, but its oldest generation grows all the same as
    streams and records live on; it gets one pause per ``QUIET_INTERVALS`` intervals at
    most, should its cycles all die old. The previous settings come back on exit.
    """
    threshold = gc.get_threshold()
    deferred = max(threshold[2], FULL_COLLECTION_EVERY)
    last_full = clock()
    cycles = False  # a young collection found cyclic garbage since the last full one

    def pace(phase: str, info: dict[str, int]) -> None:
        nonlocal last_full, cycles
        if phase != "stop":
            return
        young, middle, _ = gc.get_threshold()
        if info["generation"] == 2:
            last_full = clock()
            cycles = False
            gc.set_threshold(young, middle, deferred)
            return
        cycles = cycles or info["collected"] > 0
        since = clock() - last_full
        if since >= interval_s and (cycles or since >= interval_s * QUIET_INTERVALS):
            gc.set_threshold(young, middle, 0)  # the next collection may be a full one

    with frozen_collector():
        gc.set_threshold(threshold[0], threshold[1], deferred)
        gc.callbacks.append(pace)
        try:
            yield
        finally:
            gc.callbacks.remove(pace)
            gc.set_threshold(*threshold)
