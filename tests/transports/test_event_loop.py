"""The event loop a load runs on holds full garbage collections back, and restores them."""

from __future__ import annotations

import gc

import pytest

from harness.limits import FULL_COLLECTION_EVERY, steady_collector
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
