"""A mock LLM server in a child process, shared by the client tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.servers.embedded import EmbeddedMock, embedded_mock, mock_arguments


@pytest.fixture(scope="module")
def mock() -> Iterator[EmbeddedMock]:
    with embedded_mock(mock_arguments(ttft_ms=40, itl_ms=10, tokens=12)) as running:
        yield running
