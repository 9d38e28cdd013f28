"""Process settings that many open streams need (the client's and the mock's alike).

The open-files limit, raised to its hard maximum, and a garbage collector that does not
stall the event loop in the middle of a load.
"""

from __future__ import annotations

import gc
import logging
import resource
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FULL_COLLECTION_EVERY", "raise_open_files_limit", "steady_collector"]

log = logging.getLogger(__name__)

#: While a load runs, a full garbage collection waits for this many young ones.
FULL_COLLECTION_EVERY = 1000


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
def steady_collector() -> Iterator[None]:
    """Keep full garbage collections from stalling a load.

    A full collection walks every tracked object and stops the event loop meanwhile:
    with 1,000 streams on this kind of machine, 60 ms in which no socket is read or
    written, so every token in that time is stamped (client) or sent (mock) late.
    Inside the block, the objects alive before it (modules, pandas) are moved out of
    the collector's reach (``gc.freeze``), and a full collection waits for
    ``FULL_COLLECTION_EVERY`` young ones instead of ten; young collections go on as
    before. Streaming creates next to no cyclic garbage, so memory does not grow for
    it. The previous settings come back on exit.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], max(threshold[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
