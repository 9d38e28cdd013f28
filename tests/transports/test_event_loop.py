"""The event loop a load runs on holds full garbage collections back, and restores them."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from harness.limits import (
    FULL_COLLECTION_EVERY,
    QUIET_INTERVALS,
    frozen_collector,
    steady_collector,
)
from harness.transports import run_event_loop


def test_full_collections_wait_while_a_load_runs_and_come_back_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()

    async def inside() -> tuple[tuple[int, int, int], int]:
        return gc.get_threshold(), gc.get_freeze_count()

    threshold, frozen = run_event_loop(inside())
    assert threshold[:2] == before[:2]
    assert threshold[2] == max(before[2], FULL_COLLECTION_EVERY)
    assert frozen > frozen_before  # what lived before the load is out of the collector's way
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


def test_the_settings_come_back_when_the_load_fails() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with pytest.raises(RuntimeError), steady_collector():
        raise RuntimeError("the load broke")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


class Cycle:
    def __init__(self) -> None:
        self.me = self


def full_collections_while(work: Callable[[], None]) -> int:
    counted = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            counted.append(1)

    gc.callbacks.append(count)
    try:
        work()
    finally:
        gc.callbacks.remove(count)
    return len(counted)


def leave_cyclic_garbage(survivors: int = 20_000) -> None:
    """Cycles that live long enough to reach the oldest generation, then die there."""
    kept = [Cycle() for _ in range(survivors)]
    for _ in range(30):  # allocations that drive young collections, promoting ``kept``
        _ = [Cycle() for _ in range(2_000)]
    del kept


def test_cyclic_garbage_is_collected_once_the_interval_has_passed() -> None:
    now = [0.0]
    with steady_collector(interval_s=10.0, clock=lambda: now[0]):
        # enough garbage to grow the oldest generation by a quarter however large the
        # process already is (the frozen objects still count in Python's rule)
        heap = len(gc.get_objects(generation=2)) + gc.get_freeze_count()
        survivors = max(20_000, heap // 2)
        before_interval = full_collections_while(lambda: leave_cyclic_garbage(survivors))
        now[0] = 11.0
        after_interval = full_collections_while(lambda: leave_cyclic_garbage(survivors))
        threshold = gc.get_threshold()
    assert before_interval == 0
    assert after_interval >= 1
    assert threshold[2] == FULL_COLLECTION_EVERY  # deferred again after the full one


def keep_without_cycles(survivors: int = 20_000) -> list[list[int]]:
    """Objects that live long enough to reach the oldest generation, and no cycle."""
    kept = [[n] for n in range(survivors)]
    for _ in range(30):  # allocations that drive young collections, promoting ``kept``
        _ = [[n] for n in range(2_000)]
    return kept


def test_a_load_that_makes_no_cycles_waits_much_longer_for_a_full_collection() -> None:
    """The oldest generation grows past Python's rule, but no young collection found a
    cycle: a full collection would free nothing, and waits for ``QUIET_INTERVALS``
    intervals instead of one."""
    now = [0.0]
    kept: list[object] = []
    with steady_collector(interval_s=10.0, clock=lambda: now[0]):
        heap = len(gc.get_objects(generation=2)) + gc.get_freeze_count()
        survivors = max(20_000, heap // 2)
        now[0] = 11.0
        after_one = full_collections_while(lambda: kept.append(keep_without_cycles(survivors)))
        now[0] = 10.0 * QUIET_INTERVALS + 1
        after_many = full_collections_while(lambda: kept.append(keep_without_cycles(survivors)))
    assert after_one == 0
    assert after_many >= 1


def test_objects_alive_before_a_frozen_block_stay_out_of_reach_inside_it_only() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    before = gc.get_freeze_count()
    kept = [Cycle() for _ in range(100)]
    inside: list[int] = []

    def fail_inside() -> None:
        with frozen_collector():
            inside.append(gc.get_freeze_count())
            made = Cycle()  # made inside: collected as ever
            del made
            inside.append(gc.collect())
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError):
        fail_inside()
    assert inside[0] >= before + 100
    assert inside[1] >= 1
    assert gc.get_freeze_count() == before
    del kept
    assert gc.collect() >= 100  # unfrozen: the old cycles are collected again
