"""Fixtures of the mock server's tests: fast servers in background threads on port 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mock_server.config import MockConfig, TimingProfile
from mock_server.server import RunningMock, start_in_thread

#: Small TTFT and ITL keep the suite fast; the seed is fixed so texts repeat.
FAST = MockConfig(seed=7, timing=TimingProfile(ttft_ms=5, itl_ms=5, tokens=8))


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    """One fast server shared by a test module (its counters are shared too)."""
    with start_in_thread(FAST) as running:
        yield running


@pytest.fixture
def make_mock() -> Iterator[Callable[..., RunningMock]]:
    """A factory of dedicated servers (``FAST`` with changes), all stopped afterwards."""
    started: list[RunningMock] = []

    def make(**changes: object) -> RunningMock:
        running = start_in_thread(FAST.with_changes(**changes))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()
