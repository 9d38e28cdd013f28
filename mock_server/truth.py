"""Ground truth: when the mock received each request and wrote each token.

``TruthLog`` is a bounded ring buffer of ``RequestTruth`` records, keyed by request id;
the oldest record goes when it is full. All times are ``time.perf_counter_ns()``
monotonic nanoseconds, which on Linux every process shares, so a client can compare its
arrival times with the mock's write times. ``GET /mock/requests/{id}`` serves
``RequestTruth.as_dict()``.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestTruth", "TruthLog"]


@dataclass(slots=True, kw_only=True)
class RequestTruth:
    """What the mock did for one request (filled in as it happens).

    Attributes:
        id: the request id (``x-mock-request-id``).
        endpoint: the endpoint's name (``chat``, ``messages``, ...).
        received_ns: when the handler received the request.
        headers_ns: when the status line and headers were handed to the transport.
        scheduled_ns: when each token event was due, one entry per token event (a compact
            ``array('q')``: a record of a long stream stays small).
        token_write_ns: when each token event was handed to the transport (read just
            before the hand-over).
        tokens_sent: tokens written (several per event when tokens_per_event > 1).
        tokens_planned: tokens the plan had (reasoning and answer).
        disconnect_detected_ns: when the writer found the client gone, else None.
        last_write_ns: the last time anything was written for the request.
        tokens_after_disconnect: tokens written after the disconnect was detected; the
            writer never writes then, and counts honestly if it ever did.
        held: times a frame waited a tick because the transport's buffer was full.
        faults: the faults that applied, as specs.
        status: the HTTP status, None until decided.
        finish_reason: the dialect's finish word, when the response finished.
        stream: whether the response was streamed.
        done: True once the response ended (whatever the outcome).
        outcome: ``complete``, ``disconnected``, ``cut`` (disconnect fault), ``error``
            (error status or error event), or None while in progress.
        answer: the text of each answer event of choice 0, as planned.
        answer_first_event: the index, among the token events, of its first; the others
            follow every ``answer_stride`` events (the choices' events side by side).
        prompt_tokens: the prompt's tokens (the plan's rule), None until planned.
        cached_tokens: those the prefix cache held.
        prefill_ns: the prefill time of the others, part of the first token's due time.
        max_tokens: the output limit the request asked for, None when it gave none.
    """

    id: str
    endpoint: str
    received_ns: int
    headers_ns: int | None = None
    scheduled_ns: array[int] = field(default_factory=lambda: array("q"))
    token_write_ns: array[int] = field(default_factory=lambda: array("q"))
    tokens_sent: int = 0
    tokens_planned: int = 0
    disconnect_detected_ns: int | None = None
    last_write_ns: int | None = None
    tokens_after_disconnect: int = 0
    held: int = 0
    faults: tuple[str, ...] = ()
    status: int | None = None
    finish_reason: str | None = None
    stream: bool = True
    done: bool = False
    outcome: str | None = None
    answer: tuple[str, ...] = ()
    answer_first_event: int = 0
    answer_stride: int = 1
    prompt_tokens: int | None = None
    cached_tokens: int = 0
    prefill_ns: int = 0
    max_tokens: int | None = None

    def answer_sent(self) -> str:
        """Choice 0's answer text as far as it was written: the events whose writes are
        recorded (a non-streamed answer: all of it, once sent)."""
        if not self.stream:
            return "".join(self.answer) if self.outcome == "complete" else ""
        after = len(self.token_write_ns) - self.answer_first_event
        events = -(-after // self.answer_stride) if after > 0 else 0
        return "".join(self.answer[:events])

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-able data (lists copied)."""
        lateness = [w - s for w, s in zip(self.token_write_ns, self.scheduled_ns, strict=False)]
        sent = self.answer_sent()
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "received_ns": self.received_ns,
            "headers_ns": self.headers_ns,
            "scheduled_ns": self.scheduled_ns.tolist(),
            "token_write_ns": self.token_write_ns.tolist(),
            "lateness_ns": lateness,
            "tokens_sent": self.tokens_sent,
            "tokens_planned": self.tokens_planned,
            "disconnect_detected_ns": self.disconnect_detected_ns,
            "last_write_ns": self.last_write_ns,
            "tokens_after_disconnect": self.tokens_after_disconnect,
            "text_sha256": hashlib.sha256(sent.encode()).hexdigest(),
            "text_chars": len(sent),
            "held": self.held,
            "faults": list(self.faults),
            "status": self.status,
            "finish_reason": self.finish_reason,
            "stream": self.stream,
            "done": self.done,
            "outcome": self.outcome,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "prefill_ns": self.prefill_ns,
            "max_tokens": self.max_tokens,
        }


class TruthLog:
    """A bounded ring buffer of ``RequestTruth`` records.

    Args:
        capacity: how many records it keeps; adding one more drops the oldest.

    Raises:
        ValueError: ``capacity`` is below 1.
    """

    __slots__ = ("_records", "capacity", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._records: OrderedDict[str, RequestTruth] = OrderedDict()
        #: Records dropped to keep within capacity.
        self.dropped = 0

    def add(self, record: RequestTruth) -> RequestTruth:
        """Keep ``record``, dropping the oldest one if the buffer is full.

        Returns:
            The record, for chaining.
        """
        records = self._records
        records[record.id] = record
        while len(records) > self.capacity:
            records.popitem(last=False)
            self.dropped += 1
        return record

    def get(self, request_id: str) -> RequestTruth | None:
        """The record of ``request_id``, or None when unknown or already dropped."""
        return self._records.get(request_id)

    def __len__(self) -> int:
        return len(self._records)
