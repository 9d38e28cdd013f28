"""One table from transport errors to error kinds, for every client path."""

from __future__ import annotations

import pytest

from harness.conformance.capture import _ENDINGS
from harness.conformance.captured import Ending
from harness.errors import ConnectFailed, ReadFailed, ReadTimedOut, TransportError, UndecodableBody
from harness.record import TRANSPORT_ERROR_KINDS, ErrorKind, kind_of


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectFailed("refused"), ErrorKind.CONNECT),
        (ReadTimedOut("quiet"), ErrorKind.TIMEOUT_IDLE),
        (ReadFailed("reset"), ErrorKind.TRUNCATED),
        (UndecodableBody("unknown coding"), ErrorKind.PROTOCOL),  # before its base class
        (TransportError("something else below the stream"), ErrorKind.TRUNCATED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_transport_error_has_one_kind(error: TransportError, kind: ErrorKind) -> None:
    assert kind_of(error) is kind


def test_a_subclass_comes_before_its_base_in_the_table() -> None:
    types = [error_type for error_type, _ in TRANSPORT_ERROR_KINDS]
    for i, error_type in enumerate(types):
        assert not any(issubclass(error_type, earlier) for earlier in types[:i]), error_type


def test_check_names_an_ending_for_every_kind_the_table_gives() -> None:
    kinds = {kind for _, kind in TRANSPORT_ERROR_KINDS} | {kind_of(TransportError("x"))}
    assert set(_ENDINGS) == kinds
    assert _ENDINGS[ErrorKind.CONNECT] is Ending.CONNECT
    assert _ENDINGS[ErrorKind.TIMEOUT_IDLE] is Ending.TIMEOUT
