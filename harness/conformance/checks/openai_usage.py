"""OpenAI usage: the usage chunk of ``stream_options.include_usage``, the vendor habits
around it (usage on every chunk, usage riding on the finish chunk, usage beside a choice
that finishes nothing), and its counts."""

from __future__ import annotations

from collections.abc import Sequence

from harness.conformance.captured import Purpose
from harness.conformance.checks.evidence import Streams, at_event, grouped, of_request, over
from harness.conformance.checks.openai import OPENAI, check, errored, openai_streams
from harness.conformance.checks.openai_chunks import OpenAIDigest
from harness.conformance.model import Finding, Severity, Skip, brief
from harness.conformance.reading import Suite

__all__ = ["CHECKS"]


def _on_most(digest: OpenAIDigest) -> bool:
    """Usage on more than half of the chunks: the vLLM habit."""
    return digest.usage > digest.chunks // 2


def _usage_chunk(suite: Suite) -> Sequence[Finding] | Skip:
    asked = [r for r in suite.of(Purpose.USAGE) if r.exchange.ok and r.dialect in OPENAI]
    if not asked:
        return Skip("no stream asked for usage (stream_options.include_usage)")
    items = []
    for reading in (r for r in asked if not errored(r)):
        if not reading.digest(OpenAIDigest).usage:
            items.append(
                (
                    "stream_options.include_usage was asked, but no chunk carries usage",
                    of_request(reading),
                )
            )
    return grouped(USAGE_CHUNK, items)


@over(openai_streams)
def _usage_every(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        digest = reading.digest(OpenAIDigest)
        if digest.chunks >= 3 and _on_most(digest) and digest.first_usage is not None:
            detail = f"usage on {digest.usage} of {digest.chunks} chunks"
            items.append(
                (
                    "usage on every chunk, as vLLM sends it with continuous_usage_stats: "
                    "clients keep the last",
                    at_event(reading, digest.first_usage, detail),
                )
            )
    return grouped(USAGE_EVERY, items)


@over(openai_streams)
def _usage_on_finish(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        digest = reading.digest(OpenAIDigest)
        if _on_most(digest):
            continue  # usage everywhere: the habit above
        if digest.riding is not None:
            items.append(
                (
                    "usage rides on the finish chunk (choices not empty), as DeepSeek and "
                    "llama.cpp send it: the SDK reads it",
                    at_event(reading, digest.riding),
                )
            )
    return grouped(USAGE_ON_FINISH, items)


@over(openai_streams)
def _usage_beside_choices(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    for reading in streams:
        digest = reading.digest(OpenAIDigest)
        if not _on_most(digest) and digest.beside is not None:
            items.append(
                (
                    "usage comes on a chunk whose choices are not empty (LiteLLM sends "
                    '[{"index": 0, "delta": {}}]): code that follows OpenAI\'s docs reads '
                    "usage from the chunk with no choices (if not chunk.choices) and loses it",
                    at_event(reading, digest.beside),
                )
            )
    return grouped(USAGE_BESIDE_CHOICES, items)


@over(openai_streams)
def _usage_consistent(streams: Streams) -> Sequence[Finding] | Skip:
    items = []
    judged = 0
    for reading, result in ((r, r.result) for r in streams if r.complete and r.result is not None):
        usage = result.usage
        if not usage:
            continue
        judged += 1
        completion, prompt, total = (
            usage.get(k) for k in ("completion_tokens", "prompt_tokens", "total_tokens")
        )
        events = len(reading.token_times_ns)
        if not isinstance(completion, int):
            items.append(("usage has no integer completion_tokens", of_request(reading)))
            continue
        if completion < events:
            items.append(
                (
                    f"usage says {brief(completion)} completion tokens, but {events} chunks "
                    "carried text",
                    of_request(reading),
                )
            )
        if isinstance(prompt, int) and isinstance(total, int) and total != prompt + completion:
            items.append(
                (
                    f"total_tokens {brief(total)} is not prompt {brief(prompt)} + completion "
                    f"{brief(completion)}",
                    of_request(reading),
                )
            )
        if reading.digest(OpenAIDigest).usage_down:
            items.append(("cumulative usage goes down within the stream", of_request(reading)))
    if not judged:
        return Skip("no stream reported usage")
    return grouped(USAGE_CONSISTENT, items)


# A table, one entry per check: its fields line up as columns, which the
# formatter's layout (one argument per line) would scatter.
# fmt: off
USAGE_CHUNK = check("openai.usage-chunk", Severity.WARN, "usage when asked",
                    "stream_options.include_usage promises a usage chunk before [DONE]",
                    _usage_chunk)
USAGE_EVERY = check("openai.usage-every-chunk", Severity.INFO, "usage once",
                    "a vendor habit (vLLM continuous_usage_stats) that clients accept",
                    _usage_every)
USAGE_ON_FINISH = check("openai.usage-on-finish-chunk", Severity.INFO,
                        "usage on its own chunk",
                        "a vendor habit (DeepSeek, llama.cpp) that the SDK accepts",
                        _usage_on_finish)
USAGE_BESIDE_CHOICES = check("openai.usage-without-empty-choices", Severity.WARN,
                             "usage on a chunk with no choices",
                             "OpenAI sends usage with choices: []; documented client code "
                             "looks for it there",
                             _usage_beside_choices)
USAGE_CONSISTENT = check("openai.usage-consistent", Severity.WARN, "usage matches the stream",
                         "completion_tokens must cover the text received; totals must add up",
                         _usage_consistent)
# fmt: on

CHECKS = (USAGE_CHUNK, USAGE_EVERY, USAGE_ON_FINISH, USAGE_BESIDE_CHOICES, USAGE_CONSISTENT)
