"""Every deadline of one request holds from the request's start, before and after the
first token, whatever the server does: headers that never finish, comments alone, an
endless stream. Played on an in-memory transport and a virtual clock: no sockets, no
real waiting, and no bound on how long the machine takes beyond a generous guard."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.dialects import get as get_dialect
from harness.load.exchange import Abandon, StreamBounds, run_exchange
from harness.record import ErrorKind, Outcome, RequestRecord
from harness.transports.base import HttpRequest, Timeouts
from tests.client.scripted import HANG, ScriptedTransport
from tests.virtual_time import VirtualClock

GUARD_S = 30.0  # far past every deadline below: reaching it means a deadline did not hold
LONG = 3600.0


def chunk(text: str) -> bytes:
    delta = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(delta).encode() + b"\n\n"


def endless_tokens() -> list[object]:
    return [chunk("a"), 0.01] * 100_000


def exchange(
    transport: ScriptedTransport,
    *,
    ttft_s: float = LONG,
    total_s: float = LONG,
    bounds: StreamBounds | None = None,
    abandon: Abandon | None = None,
) -> RequestRecord:
    record = RequestRecord(request_id="r-0")
    request = HttpRequest(method="POST", url="http://127.0.0.1:9/v1", headers={})
    timeouts = Timeouts(ttft_s=ttft_s, total_s=total_s, idle_s=LONG)
    clock = VirtualClock()
    transport.clock = clock.ns

    async def main() -> None:
        async with transport:
            await asyncio.wait_for(
                run_exchange(
                    transport,
                    request,
                    record,
                    dialect=get_dialect("openai-chat"),
                    timeouts=timeouts,
                    bounds=bounds or StreamBounds(),
                    abandon=abandon,
                    clock=clock.ns,
                ),
                GUARD_S,
            )

    clock.run(main())
    assert transport.open_streams == 0, "the stream was left open"
    return record


def test_ttft_timeout_ends_a_request_whose_headers_never_finish() -> None:
    record = exchange(ScriptedTransport(head=[HANG]), ttft_s=0.05)
    assert record.error_kind is ErrorKind.TIMEOUT_TTFT
    assert record.t_headers_ns is None
    assert record.t_end_ns - record.t_sent_ns == pytest.approx(50_000_000, abs=1_000)  # exactly


def test_ttft_timeout_ends_a_stream_of_comments_alone() -> None:
    record = exchange(ScriptedTransport(body=[b": ping\n\n", 0.01] * 100_000), ttft_s=0.05)
    assert record.error_kind is ErrorKind.TIMEOUT_TTFT
    assert record.t_first_token_ns is None
    assert record.t_headers_ns is not None


def test_ttft_timeout_no_longer_applies_once_the_first_token_came() -> None:
    record = exchange(
        ScriptedTransport(body=[chunk("a"), 0.2, chunk("b"), b"data: [DONE]\n\n"]), ttft_s=0.1
    )
    assert record.outcome is Outcome.OK, record.error_message
    assert len(record.token_times_ns) == 2


def test_total_timeout_ends_a_request_whose_headers_never_finish() -> None:
    record = exchange(ScriptedTransport(head=[HANG]), total_s=0.05)
    assert record.error_kind is ErrorKind.TIMEOUT_TOTAL


def test_total_timeout_ends_an_endless_stream_after_its_first_token() -> None:
    record = exchange(ScriptedTransport(body=endless_tokens()), ttft_s=0.5, total_s=0.105)
    assert record.error_kind is ErrorKind.TIMEOUT_TOTAL
    assert record.t_first_token_ns is not None
    assert record.t_end_ns - record.t_sent_ns == pytest.approx(105_000_000, abs=1_000)
    assert len(record.token_times_ns) == 11  # a token every 10 ms from 0, until the deadline


def test_max_stream_seconds_cuts_before_the_first_token() -> None:
    record = exchange(ScriptedTransport(head=[HANG]), bounds=StreamBounds(max_stream_s=0.05))
    assert record.outcome is Outcome.CUT


def test_max_stream_seconds_cuts_an_endless_stream() -> None:
    record = exchange(
        ScriptedTransport(body=endless_tokens()), bounds=StreamBounds(max_stream_s=0.1)
    )
    assert record.outcome is Outcome.CUT
    assert record.token_times_ns


@pytest.mark.parametrize("head", [[HANG], []], ids=["before-headers", "after-headers"])
def test_abandoning_after_seconds_holds_before_the_first_token(head: list[object]) -> None:
    record = exchange(ScriptedTransport(head=head, body=[HANG]), abandon=Abandon(after_s=0.05))
    assert record.outcome is Outcome.ABANDONED
    assert record.abandoned_after_tokens == 0


def test_abandoning_after_seconds_holds_in_an_endless_stream() -> None:
    record = exchange(ScriptedTransport(body=endless_tokens()), abandon=Abandon(after_s=0.1))
    assert record.outcome is Outcome.ABANDONED
    assert record.abandoned_after_tokens == len(record.token_times_ns) > 0
