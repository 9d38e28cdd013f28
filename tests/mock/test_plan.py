"""The plan, pure: deterministic text, the output-length rule, prompt tokens, timing, faults."""

from __future__ import annotations

import itertools

import pytest

from harness.errors import ConfigError
from mock_server.config import FaultRates, MockConfig, TimingProfile
from mock_server.overrides import FaultSpec, Overrides, parse_fault, parse_overrides
from mock_server.plan import Ask, Endpoint, make_plan
from mock_server.vocabulary import WORDS

CONFIG = MockConfig(seed=11, timing=TimingProfile(ttft_ms=100, itl_ms=10, tokens=6))
BODY = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}


def ask(**changes) -> Ask:
    values = {
        "endpoint": Endpoint.CHAT,
        "body": BODY,
        "model": "m",
        "prompt_texts": ("one two three",),
    }
    return Ask(**{**values, **changes})


def plan(overrides: Overrides | None = None, config: MockConfig = CONFIG, **changes):
    return make_plan(config, ask(**changes), overrides or Overrides())


def test_text_is_a_pure_function_of_seed_and_body() -> None:
    assert plan().text == plan().text
    streamed = {**BODY, "stream": True, "stream_options": {"include_usage": True}, "mock": {}}
    assert plan(body=streamed).text == plan().text  # streaming keys do not change the text
    other = {**BODY, "messages": [{"role": "user", "content": "four"}]}
    assert plan(body=other).text != plan().text
    assert plan(config=CONFIG.with_changes(seed=12)).text != plan().text
    assert plan(Overrides(seed=12)).text == plan(config=CONFIG.with_changes(seed=12)).text


def test_tokens_are_vocabulary_words_joined_by_spaces() -> None:
    tokens = plan(Overrides(tokens=200)).content
    assert not tokens[0].startswith(" ")
    assert all(t.startswith(" ") for t in tokens[1:])
    lowered = {w.lower() for w in WORDS}
    assert all(t.strip().rstrip(".").lower() in lowered for t in tokens)


@pytest.mark.parametrize(
    ("limit", "tokens", "count", "finish"),
    [
        (None, None, 6, "stop"),  # neither: the profile, stop
        (4, None, 4, "length"),  # M only: M tokens, length
        (None, 9, 9, "stop"),  # T only: T tokens, stop
        (4, 9, 4, "length"),  # M < T: cut by the limit
        (9, 4, 4, "stop"),  # T < M: T tokens, stop
        (5, 5, 5, "stop"),  # M == T: not cut
    ],
)
def test_the_output_length_rule(limit, tokens, count, finish) -> None:
    result = plan(Overrides(tokens=tokens), limit=limit)
    assert (result.content_tokens, len(result.content), result.finish) == (count, count, finish)


def test_counts_are_capped_by_the_server_maximum() -> None:
    capped = plan(Overrides(tokens=50), config=CONFIG.with_changes(max_output_tokens=10))
    assert (capped.content_tokens, capped.finish) == (10, "length")


def test_prompt_tokens_count_whitespace_words_and_are_at_least_one() -> None:
    assert plan(prompt_texts=("a b  c", "d\ne")).prompt_tokens == 5
    assert plan(prompt_texts=()).prompt_tokens == 1
    assert plan(prompt_texts=("",)).prompt_tokens == 1


def test_reasoning_comes_first_and_never_changes_the_answer() -> None:
    with_reasoning = plan(Overrides(reasoning_tokens=3))
    assert with_reasoning.reasoning_tokens == 3
    assert with_reasoning.text == plan().text
    assert with_reasoning.completion_tokens == 9
    assert plan(Overrides(reasoning_tokens=3), endpoint=Endpoint.COMPLETIONS).reasoning == ()


def test_fixed_timing_schedules_ttft_plus_k_itl() -> None:
    result = plan(Overrides(reasoning_tokens=2))
    assert result.offsets_ns == tuple(100_000_000 + k * 10_000_000 for k in range(8))


def test_tokens_per_event_groups_tokens_and_the_event_is_due_with_its_last() -> None:
    config = CONFIG.with_changes(
        timing=TimingProfile(ttft_ms=100, itl_ms=10, tokens=5, tokens_per_event=2)
    )
    result = make_plan(config, ask(), Overrides())
    assert result.event_tokens() == (2, 2, 1)
    assert "".join(result.content) == make_plan(CONFIG, ask(), Overrides(tokens=5)).text
    assert result.offsets_ns == (110_000_000, 130_000_000, 140_000_000)


def test_the_load_model_stretches_ttft_and_itl() -> None:
    config = CONFIG.with_changes(
        timing=TimingProfile(ttft_ms=100, itl_ms=10, tokens=3, load_k=1, capacity=4)
    )
    idle = make_plan(config, ask(), Overrides(), active=0)
    busy = make_plan(config, ask(), Overrides(), active=4)  # 1 + 1 * 4 / 4 = 2x
    assert busy.offsets_ns == tuple(2 * offset for offset in idle.offsets_ns)


@pytest.mark.parametrize("distribution", ["uniform", "normal", "lognormal"])
def test_drawn_timing_is_seeded_and_varies(distribution) -> None:
    timing = TimingProfile(ttft_ms=100, itl_ms=10, tokens=50, distribution=distribution, spread=0.3)
    config = CONFIG.with_changes(timing=timing)
    first = make_plan(config, ask(), Overrides(), draw_seed=1)
    again = make_plan(config, ask(), Overrides(), draw_seed=1)
    other = make_plan(config, ask(), Overrides(), draw_seed=2)
    assert first.offsets_ns == again.offsets_ns
    assert first.offsets_ns != other.offsets_ns
    gaps = [b - a for a, b in itertools.pairwise(first.offsets_ns)]
    assert all(gap >= 0 for gap in gaps)
    assert len(set(gaps)) > 10
    assert first.text == other.text  # the draw never touches the text


def test_a_stall_shifts_its_token_and_everything_after() -> None:
    stalled = plan(Overrides(faults=(FaultSpec(kind="stall", at=3, value=2.0),)))
    normal = plan()
    shifts = [a - b for a, b in zip(stalled.offsets_ns, normal.offsets_ns, strict=True)]
    assert shifts == [0, 0] + [2_000_000_000] * 4


def test_slow_headers_shift_the_headers_and_every_token() -> None:
    slow = plan(Overrides(faults=(FaultSpec(kind="slow_headers", value=1.5),)))
    assert slow.headers_offset_ns == 1_500_000_000
    assert slow.offsets_ns[0] == 1_600_000_000


def test_n_choices_have_their_own_texts_in_step_and_count_in_the_usage() -> None:
    single = plan(Overrides(reasoning_tokens=2))
    three = plan(Overrides(reasoning_tokens=2), n=3, body={**BODY, "n": 3})
    assert (single.n, three.n) == (1, 3)
    assert three.choice(0) == (single.reasoning, single.content)  # n changes no text
    texts = {three.choice(c).text for c in range(3)}
    assert len(texts) == 3
    assert all(len(three.choice(c).content) == 6 for c in range(3))
    assert all(len(three.choice(c).reasoning) == 2 for c in range(3))
    assert three.completion_tokens == 3 * single.completion_tokens == 24
    # every step's three events are due together, at the single choice's times
    assert three.offsets_ns == tuple(o for o in single.offsets_ns for _ in range(3))
    assert three.event_tokens() == (1,) * 24


def test_a_fault_position_counts_the_events_of_every_choice() -> None:
    stall = Overrides(faults=(FaultSpec(kind="stall", at=5, value=2.0),))
    stalled = plan(stall, n=2)
    shifts = [a - b for a, b in zip(stalled.offsets_ns, plan(n=2).offsets_ns, strict=True)]
    assert shifts == [0] * 4 + [2_000_000_000] * 8  # from choice 0's third token on


def test_fault_rates_draw_per_request_and_overrides_replace_the_draw() -> None:
    config = CONFIG.with_changes(faults=FaultRates(http_503=0.5))
    statuses = {
        make_plan(config, ask(), Overrides(), draw_seed=s).faults.http_status for s in range(40)
    }
    assert statuses == {None, 503}
    forced_none = make_plan(config, ask(), Overrides(faults=()), draw_seed=0)
    assert forced_none.faults.names == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http_500", FaultSpec(kind="http_500")),
        ("disconnect_after=3", FaultSpec(kind="disconnect", at=3)),
        ("stall=2.5@10", FaultSpec(kind="stall", at=10, value=2.5)),
        ("stall", FaultSpec(kind="stall", at=1)),
        ("malformed_json@5", FaultSpec(kind="malformed_json", at=5)),
        ("keepalive=100", FaultSpec(kind="keepalive", value=100.0)),
        ("slow_headers=1.5", FaultSpec(kind="slow_headers", value=1.5)),
        ("error_event@5", FaultSpec(kind="error_event", at=5)),
        ("none", None),
    ],
)
def test_fault_specs_parse(text, expected) -> None:
    assert parse_fault(text) == expected
    if expected is not None:
        assert parse_fault(str(expected)) == expected  # specs print as they parse


@pytest.mark.parametrize(
    "text", ["boom", "http_500=1", "stall=x@2", "disconnect_after", "keepalive=0", "cr@3"]
)
def test_bad_fault_specs_raise_config_error(text) -> None:
    with pytest.raises(ConfigError):
        parse_fault(text, "X-Mock-Fault")


def test_overrides_come_from_headers_body_and_query_in_that_order() -> None:
    overrides = parse_overrides(
        {"X-Mock-Tokens": "3"},
        {"tokens": 5, "ttft_ms": 7, "fault": ["crlf", "stall=1@2"]},
        {"mock_tokens": "9", "mock_itl_ms": "4"},
    )
    assert overrides.tokens == 3
    assert overrides.ttft_ms == 7
    assert overrides.itl_ms == 4
    assert overrides.faults == (FaultSpec(kind="crlf"), FaultSpec(kind="stall", at=2, value=1.0))
    assert parse_overrides({}, None, {}).faults is None
