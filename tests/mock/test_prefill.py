"""The mock's prefill and prefix cache: the LRU over prompt blocks, the prefill in the
schedule, the cached tokens in each dialect's usage and in the ground truth."""

from __future__ import annotations

import json

import httpx
import pytest

from mock_server.config import TimingProfile
from mock_server.prefill import PrefixCache, prefill_ns, prompt_words
from mock_server.server import RunningMock
from tests.mock.streams import read

CHAT = "/v1/chat/completions"


def words(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def test_a_repeated_prompt_hits_its_full_blocks_before_its_last_token() -> None:
    cache = PrefixCache(1000, block_tokens=4)
    prompt = words("w", 10)
    assert cache.admit(prompt) == 0
    assert cache.admit(prompt) == 8  # blocks 0-3 and 4-7; 8-9 is no full block
    exact = words("e", 8)  # a prompt of whole blocks keeps its last one to compute
    cache.admit(exact)
    assert cache.admit(exact) == 4


def test_a_shared_prefix_hits_up_to_where_the_prompts_part() -> None:
    cache = PrefixCache(1000, block_tokens=4)
    shared = words("s", 10)
    cache.admit([*shared, "one", "two", "three"])
    assert cache.admit([*shared, "four", "five", "six"]) == 8
    assert cache.admit(["x", *shared]) == 0  # a block matches only with all before it


def test_the_least_recently_used_blocks_go_first() -> None:
    cache = PrefixCache(8, block_tokens=4)  # two blocks
    a, b = words("a", 5), words("b", 5)
    cache.admit(a)
    cache.admit(b)
    assert cache.admit(a) == 4  # a is used again: b is now the oldest
    cache.admit(words("c", 5))
    assert len(cache) == 2
    assert cache.evicted == 1  # b
    assert cache.admit(a) == 4
    assert cache.admit(b) == 0
    assert PrefixCache(0).admit(a) == 0
    with pytest.raises(ValueError, match="bad prefix cache"):
        PrefixCache(10, block_tokens=0)


def test_prefill_is_per_uncached_token_and_words_are_the_prompt_tokens() -> None:
    assert prefill_ns(0.5, 10) == 5_000_000
    assert prefill_ns(0.5, -1) == 0
    assert prompt_words(["a b", " c\n d "]) == ["a", "b", "c", "d"]


def ask(mock: RunningMock, text: str, **extra: object) -> dict[str, object]:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}], "max_tokens": 2, **extra}  # fmt: skip
    reading = read(mock.base_url, CHAT, body)
    assert reading.status == 200
    truth = httpx.get(f"{mock.base_url}/mock/requests/{reading.request_id}?wait_ms=5000").json()
    usage = [c["usage"] for c in _chunks(reading.body) if c.get("usage")]
    return {"usage": usage[-1], "truth": truth}


def _chunks(body: bytes) -> list[dict[str, object]]:
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: {"):
            out.append(json.loads(line[6:]))
    return out


def test_hits_report_cached_tokens_and_shorten_the_first_token(make_mock) -> None:
    mock = make_mock(prefix_cache_tokens=10_000, prefix_block_tokens=16)
    shared = " ".join(words("p", 160))
    first = ask(mock, shared + " first question")
    second = ask(mock, shared + " second question")
    assert first["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert second["usage"]["prompt_tokens_details"] == {"cached_tokens": 160}
    assert second["usage"]["prompt_tokens"] == 162
    truth = second["truth"]
    assert (truth["prompt_tokens"], truth["cached_tokens"], truth["max_tokens"]) == (162, 160, 2)


def test_the_prefill_of_uncached_tokens_is_added_to_the_first_token(make_mock) -> None:
    mock = make_mock(
        prefix_cache_tokens=10_000,
        timing=TimingProfile(ttft_ms=5, itl_ms=5, tokens=8, prefill_ms_per_token=0.1),
    )
    shared = " ".join(words("q", 320))
    miss = ask(mock, shared + " a")["truth"]
    hit = ask(mock, shared + " b")["truth"]
    assert miss["prefill_ns"] == 321 * 100_000
    assert hit["prefill_ns"] == 1 * 100_000  # 320 cached of 321
    for truth in (miss, hit):  # the first token is due after TTFT and the prefill
        due = truth["scheduled_ns"][0] - truth["received_ns"]
        assert due == 5_000_000 + truth["prefill_ns"]


def test_anthropic_reports_cache_reads_apart_from_its_input_tokens(make_mock) -> None:
    mock = make_mock(prefix_cache_tokens=10_000)
    shared = " ".join(words("r", 48))
    body = {"model": "m", "stream": True, "max_tokens": 2,
            "messages": [{"role": "user", "content": shared + " x"}]}  # fmt: skip
    read(mock.base_url, "/v1/messages", body, terminator=None)
    reading = read(mock.base_url, "/v1/messages", body, terminator=None)
    start = next(c for c in _chunks(reading.body) if c.get("type") == "message_start")
    assert start["message"]["usage"] == {
        "input_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 48,
        "output_tokens": 0,
    }


def test_without_a_cache_usage_is_as_before(mock: RunningMock) -> None:
    text = " ".join(words("z", 40))
    ask(mock, text)
    again = ask(mock, text)
    assert again["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert again["truth"]["cached_tokens"] == 0
    assert again["truth"]["prefill_ns"] == 0
