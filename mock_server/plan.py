"""What a response will say and when: a pure function of configuration and request.

No I/O and no clock: ``make_plan`` takes the configuration, the parsed request, its
overrides, the number of streams already active and a draw seed, and returns a ``Plan``
that the renderer turns into bytes and the stream writer sends on time.

Text. The answer and the reasoning are words of ``mock_server.vocabulary.WORDS`` chosen by
``random.Random`` seeded from the SHA-256 of the seed and the canonical JSON of the request
body (sorted keys, no spaces) with ``stream``, ``stream_options``, ``mock`` and ``n``
removed. So the same request gives the same text in every process, streamed or not. Answer and
reasoning come from two separate generators, so the reasoning length never changes the
answer; a shorter response of the same body is a prefix of a longer one.

Output length (answer tokens), with M the request's limit (``max_tokens``,
``max_completion_tokens`` or ``max_output_tokens``) and T a ``tokens`` override:

* M given, no T: M tokens, finish ``length`` (Anthropic ``max_tokens``, Responses
  ``incomplete`` with reason ``max_output_tokens``);
* T given: min(T, M) tokens (T when there is no M), finish ``length`` only when M < T;
* neither: the profile's ``tokens``, finish ``stop`` (Anthropic ``end_turn``, Responses
  ``completed``).

Every count is then capped at ``max_output_tokens`` of the configuration (a capped
response finishes ``length``). Reasoning tokens (chat, Responses, Anthropic only) are the
``reasoning_tokens`` override, else the configured default; they come before the answer,
are not counted against M, and are part of the completion tokens.

Choices. OpenAI chat and completions requests may ask for ``n`` choices. Each choice has
the length above and its own text (choice 0's is the text the same body with ``n`` 1
gets; choice c's comes from generators tagged with c). They are generated in step: token
k of every choice is due at token k's time, and the token events go out interleaved,
choice 0 first, as OpenAI sends them; a fault's ``@N`` counts these events.

Prompt tokens: the number of whitespace-separated words in all the prompt's text (every
message's text parts, the system prompt or instructions, the completion prompt), at
least 1. Cached tokens are what the prefix cache found (``mock_server.prefill``; the
handler looks the prompt up and passes the count in); the prefill of the others,
``prefill_ms_per_token`` each, comes before the first token and shifts every token.
Completion tokens: reasoning tokens plus answer tokens of every choice, exactly the
tokens sent.

Timing. Token k (0-based, reasoning first) is due ``ttft + gap_1 + ... + gap_k`` after
the request was received; an event with several tokens is due with its last token. TTFT
and every gap are drawn from the profile's distribution with ``random.Random(draw_seed)``
and multiplied by the load factor ``1 + load_k * active / capacity``. A stall at token
event N shifts N and everything after it; slow headers shift everything.

Drawn faults. Without a ``fault`` override, each kind applies with its configured rate,
drawn from the same ``draw_seed`` generator (``mock_server.faults``). The handler derives
``draw_seed`` from the seed, the worker and the request's sequence number, so a run
repeats its draws while identical requests still get different ones.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from mock_server.config import MAX_TIME_MS, MockConfig, TimingProfile
from mock_server.faults import Faults, resolve_faults
from mock_server.overrides import Overrides
from mock_server.prefill import prefill_ns
from mock_server.vocabulary import WORDS

__all__ = [
    "Ask",
    "ChoiceText",
    "Endpoint",
    "Faults",
    "Plan",
    "canonical_body",
    "make_plan",
    "text_seed",
]

_NS_PER_MS = 1_000_000
_SENTENCE_END = 0.08  # the chance that a word ends a sentence
_IGNORED_KEYS = ("stream", "stream_options", "mock", "n")


class Endpoint(enum.StrEnum):
    """The kinds of response the mock streams."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    MESSAGES = "messages"
    TUTORIAL_CONTENT = "tutorial_content"
    TUTORIAL_EVENTS = "tutorial_events"
    TUTORIAL_TEXT = "tutorial_text"
    TUTORIAL_COUNTER = "tutorial_counter"


#: Endpoints that can send reasoning before the answer.
REASONING_ENDPOINTS = frozenset({Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.MESSAGES})


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """A validated request, as the plan needs it.

    Attributes:
        endpoint: what kind of response to send.
        body: the request body (a GET's query, as a dict), for the text seed.
        model: the model name to echo.
        stream: whether to stream.
        include_usage: OpenAI ``stream_options.include_usage``.
        limit: the request's output limit M, or None.
        prompt_texts: every text of the prompt, for the prompt token count.
        counter_max: for ``/tutorial/counter``, how far to count.
        n: how many choices to send (OpenAI chat and completions ``n``).
    """

    endpoint: Endpoint
    body: Mapping[str, Any]
    model: str
    stream: bool = True
    include_usage: bool = False
    limit: int | None = None
    prompt_texts: tuple[str, ...] = ()
    counter_max: int | None = None
    n: int = 1


class ChoiceText(NamedTuple):
    """The texts of one choice: each reasoning event's, then each answer event's."""

    reasoning: tuple[str, ...]
    content: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole answer."""
        return "".join(self.content)

    @property
    def reasoning_text(self) -> str:
        """The whole reasoning."""
        return "".join(self.reasoning)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One response, decided: its texts, counts, schedule and faults.

    Attributes:
        endpoint: the kind of response.
        model: the model name to echo.
        stream: whether it streams.
        include_usage: whether a streamed OpenAI response ends with a usage chunk.
        reasoning: the text of each reasoning event (of choice 0).
        content: the text of each answer event (of choice 0; for the counter: the counts).
        reasoning_tokens: reasoning tokens of one choice.
        content_tokens: answer tokens of one choice.
        prompt_tokens: the prompt's token count (see the module's rule).
        offsets_ns: when each token event is due, from the request's receipt, in the order
            sent: reasoning events first, the choices' events of one step side by side.
        headers_offset_ns: when the status line is due (slow headers), from receipt.
        finish: ``stop`` or ``length``, in OpenAI's words.
        tokens_per_event: tokens per event (the last event of a phase may carry fewer).
        faults: what goes wrong.
        split_seed: seeds the random split points of ``split_random``.
        more_choices: the texts of choices 1 to n - 1 (none unless the request asks
            for ``n`` above 1).
        cached_tokens: the prompt tokens the prefix cache held.
        prefill_ns: the prefill time of the uncached prompt tokens (in ``offsets_ns``).
        prefix_cache: whether the server has a prefix cache (Anthropic's usage then
            reports its reads).
    """

    endpoint: Endpoint
    model: str
    stream: bool
    include_usage: bool
    reasoning: tuple[str, ...]
    content: tuple[str, ...]
    reasoning_tokens: int
    content_tokens: int
    prompt_tokens: int
    offsets_ns: tuple[int, ...]
    headers_offset_ns: int
    finish: str
    tokens_per_event: int
    faults: Faults
    split_seed: int
    more_choices: tuple[ChoiceText, ...] = ()
    cached_tokens: int = 0
    prefill_ns: int = 0
    prefix_cache: bool = False

    @property
    def n(self) -> int:
        """How many choices the response carries."""
        return 1 + len(self.more_choices)

    def choice(self, index: int) -> ChoiceText:
        """The texts of choice ``index`` (0-based)."""
        if index == 0:
            return ChoiceText(self.reasoning, self.content)
        return self.more_choices[index - 1]

    @property
    def completion_tokens(self) -> int:
        """Reasoning plus answer tokens of every choice."""
        return (self.reasoning_tokens + self.content_tokens) * self.n

    @property
    def end_offset_ns(self) -> int:
        """When the last token event is due (the headers' time when there is none)."""
        return self.offsets_ns[-1] if self.offsets_ns else self.headers_offset_ns

    def event_tokens(self) -> tuple[int, ...]:
        """How many tokens each token event carries, in ``offsets_ns`` order."""
        per_event = self.tokens_per_event
        out: list[int] = []
        for total in (self.reasoning_tokens, self.content_tokens):
            out.extend(min(per_event, total - first) for first in range(0, total, per_event))
        n = self.n
        return tuple(out) if n == 1 else tuple(count for count in out for _ in range(n))

    @property
    def text(self) -> str:
        """The whole answer (of choice 0)."""
        return self.choice(0).text

    @property
    def reasoning_text(self) -> str:
        """The whole reasoning (of choice 0)."""
        return self.choice(0).reasoning_text


def canonical_body(body: Mapping[str, Any]) -> str:
    """The body as the text seed sees it: sorted keys, no spaces, streaming keys removed."""
    kept = {key: value for key, value in body.items() if key not in _IGNORED_KEYS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_seed(seed: int, body: Mapping[str, Any], tag: str) -> int:
    """The seed of one text generator (``tag``: ``content`` or ``reasoning``; ``.c`` added
    for choice c above 0)."""
    digest = hashlib.sha256(f"{seed}\0{tag}\0{canonical_body(body)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def make_plan(
    config: MockConfig,
    ask: Ask,
    overrides: Overrides,
    *,
    active: int = 0,
    draw_seed: int = 0,
    cached_tokens: int = 0,
) -> Plan:
    """Decide one response.

    Args:
        config: the server configuration.
        ask: the validated request.
        overrides: the request's overrides.
        active: streams already active when it was admitted (for the load model).
        draw_seed: seeds the drawn times and faults.
        cached_tokens: the prompt tokens the prefix cache held.

    Returns:
        The plan.
    """
    seed = config.seed if overrides.seed is None else overrides.seed
    cap = config.max_output_tokens
    if ask.endpoint is Endpoint.TUTORIAL_COUNTER:
        count = min(10 if ask.counter_max is None else ask.counter_max, config.max_counter)
        content_tokens, finish = count, "stop"
        content: tuple[str, ...] = tuple(str(n) for n in range(1, count + 1))
        reasoning_tokens = 0
        reasoning: tuple[str, ...] = ()
        per_event = 1
        more: tuple[ChoiceText, ...] = ()
    else:
        content_tokens, finish = _output_length(config.timing, ask.limit, overrides.tokens, cap)
        reasoning_tokens = 0
        if ask.endpoint in REASONING_ENDPOINTS:
            wanted = overrides.reasoning_tokens
            reasoning_tokens = min(config.reasoning_tokens if wanted is None else wanted, cap)
        per_event = config.timing.tokens_per_event
        first, *others = (
            _choice_text(seed, ask.body, choice, reasoning_tokens, content_tokens, per_event)
            for choice in range(ask.n)
        )
        reasoning, content = first
        more = tuple(others)

    choices = 1 + len(more)
    rng = random.Random(draw_seed)
    events = (len(reasoning) + len(content)) * choices
    faults = resolve_faults(config, overrides.faults, rng, events)
    token_offsets = _token_offsets(
        config.timing, overrides, rng, reasoning_tokens + content_tokens, active
    )
    offsets = _event_offsets(token_offsets, reasoning_tokens, content_tokens, per_event)
    if choices > 1:  # every choice's event of a step is due with the step
        offsets = [offset for offset in offsets for _ in range(choices)]
    slow_ns = round(faults.slow_headers_s * 1e9)
    stall_ns = round(faults.stall_s * 1e9)
    prompt_tokens = max(1, sum(len(text.split()) for text in ask.prompt_texts))
    cached = min(max(cached_tokens, 0), prompt_tokens)
    prefill = prefill_ns(config.timing.prefill_ms_per_token, prompt_tokens - cached)
    if slow_ns or stall_ns or prefill:
        stall_from = (faults.stall_at or 1) - 1
        offsets = [
            offset + slow_ns + prefill + (stall_ns if index >= stall_from else 0)
            for index, offset in enumerate(offsets)
        ]
    return Plan(
        endpoint=ask.endpoint,
        model=ask.model,
        stream=ask.stream,
        include_usage=ask.include_usage,
        reasoning=reasoning,
        content=content,
        reasoning_tokens=reasoning_tokens,
        content_tokens=content_tokens,
        prompt_tokens=prompt_tokens,
        offsets_ns=tuple(offsets),
        headers_offset_ns=slow_ns,
        finish=finish,
        tokens_per_event=per_event,
        faults=faults,
        split_seed=rng.getrandbits(64),
        more_choices=more,
        cached_tokens=cached,
        prefill_ns=prefill,
        prefix_cache=config.prefix_cache_tokens > 0,
    )


def _choice_text(
    seed: int,
    body: Mapping[str, Any],
    choice: int,
    reasoning_tokens: int,
    content_tokens: int,
    per_event: int,
) -> ChoiceText:
    """One choice's reasoning and answer events, from its own two generators."""
    suffix = f".{choice}" if choice else ""
    reasoning = _words(text_seed(seed, body, "reasoning" + suffix), reasoning_tokens)
    content = _words(text_seed(seed, body, "content" + suffix), content_tokens)
    return ChoiceText(_group(reasoning, per_event), _group(content, per_event))


def _output_length(
    timing: TimingProfile, limit: int | None, tokens: int | None, cap: int
) -> tuple[int, str]:
    if tokens is None:
        count, finish = (timing.tokens, "stop") if limit is None else (limit, "length")
    elif limit is None:
        count, finish = tokens, "stop"
    else:
        count, finish = min(tokens, limit), ("length" if limit < tokens else "stop")
    if count > cap:
        return cap, "length"
    return count, finish


_CAPITALISED = tuple(word[0].upper() + word[1:] for word in WORDS)
_ENDS = (True, False)


def _words(seed: int, count: int) -> list[str]:
    """``count`` vocabulary words in sentences: capitalised after a full stop."""
    rng = random.Random(seed)
    picks = rng.choices(range(len(WORDS)), k=count)
    ends = rng.choices(_ENDS, cum_weights=(_SENTENCE_END, 1.0), k=count)
    out: list[str] = []
    capital = True
    for pick, end in zip(picks, ends, strict=True):
        word = _CAPITALISED[pick] if capital else WORDS[pick]
        if end:
            word += "."
        out.append(" " + word if out else word)
        capital = end
    return out


def _group(tokens: list[str], per_event: int) -> tuple[str, ...]:
    if per_event == 1:
        return tuple(tokens)
    return tuple("".join(tokens[i : i + per_event]) for i in range(0, len(tokens), per_event))


def _draw(rng: random.Random, timing: TimingProfile, base_ms: float) -> float:
    spread = timing.spread
    if timing.distribution == "fixed" or spread == 0 or base_ms == 0:
        value = base_ms
    elif timing.distribution == "uniform":
        value = base_ms * rng.uniform(1 - spread, 1 + spread)
    elif timing.distribution == "normal":
        value = base_ms * rng.gauss(1, spread)
    else:
        value = base_ms * math.exp(rng.gauss(0, spread))
    return min(max(value, 0.0), MAX_TIME_MS)


def _token_offsets(
    timing: TimingProfile, overrides: Overrides, rng: random.Random, count: int, active: int
) -> list[int]:
    factor = 1 + timing.load_k * active / timing.capacity
    ttft_ms = timing.ttft_ms if overrides.ttft_ms is None else overrides.ttft_ms
    itl_ms = timing.itl_ms if overrides.itl_ms is None else overrides.itl_ms
    offsets: list[int] = []
    if count == 0:
        return offsets
    if timing.distribution == "fixed" or timing.spread == 0:
        ttft_ns, itl_ns = ttft_ms * factor * _NS_PER_MS, itl_ms * factor * _NS_PER_MS
        return [round(ttft_ns + k * itl_ns) for k in range(count)]
    at = _draw(rng, timing, ttft_ms) * factor * _NS_PER_MS
    offsets.append(round(at))
    for _ in range(count - 1):
        at += _draw(rng, timing, itl_ms) * factor * _NS_PER_MS
        offsets.append(round(at))
    return offsets


def _event_offsets(
    token_offsets: list[int], reasoning_tokens: int, content_tokens: int, per_event: int
) -> list[int]:
    """The due time of each event: that of its last token; phases never share an event."""
    out: list[int] = []
    for start, count in ((0, reasoning_tokens), (reasoning_tokens, content_tokens)):
        for first in range(0, count, per_event):
            last = min(first + per_event, count) - 1
            out.append(token_offsets[start + last])
    return out
