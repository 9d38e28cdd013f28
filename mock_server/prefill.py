"""Prefill and the prefix cache: what makes TTFT grow with a prompt's uncached tokens.

The prompt's tokens are its words (the plan's rule), in order: every message's text, the
system prompt or instructions, the completion prompt. They are cut into blocks of
``block_tokens``; a block's key is the hash of its words and of the key of the block
before it, so a block matches only when the whole prompt up to its end does (as vLLM's
automatic prefix caching keys its blocks).

A request's cached tokens are those of its leading blocks found in the cache, at most
the full blocks before its last token (at least one token is always computed, as vLLM
does). Then every full block of the prompt is put in the cache (or moved to its young
end), and the least recently used blocks go while the cache holds more than
``capacity_tokens``. The prefill takes ``prefill_ms_per_token`` for every uncached token,
and is added to the request's TTFT (so to every token's due time).

One cache per worker process: with several workers, a request meets only the cache of
the worker that accepts it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

__all__ = ["PrefixCache", "prefill_ns", "prompt_words"]


def prompt_words(texts: Sequence[str]) -> list[str]:
    """The prompt's tokens by the mock's rule: the words of all its texts, in order."""
    return [word for text in texts for word in text.split()]


def prefill_ns(ms_per_token: float, uncached_tokens: int) -> int:
    """The prefill time of ``uncached_tokens``, in nanoseconds."""
    return round(ms_per_token * max(uncached_tokens, 0) * 1_000_000)


class PrefixCache:
    """An LRU cache of prompt blocks.

    Args:
        capacity_tokens: the most tokens it holds (whole blocks); 0 caches nothing.
        block_tokens: the tokens per block.

    Raises:
        ValueError: a negative capacity, or a block size below 1.
    """

    __slots__ = ("_blocks", "block_tokens", "capacity_tokens", "evicted")

    def __init__(self, capacity_tokens: int, block_tokens: int = 16) -> None:
        if capacity_tokens < 0 or block_tokens < 1:
            raise ValueError(
                f"bad prefix cache: {capacity_tokens} tokens in blocks of {block_tokens}"
            )
        self.capacity_tokens = capacity_tokens
        self.block_tokens = block_tokens
        self._blocks: OrderedDict[bytes, None] = OrderedDict()
        #: Blocks dropped to keep within capacity.
        self.evicted = 0

    def __len__(self) -> int:
        """The blocks held."""
        return len(self._blocks)

    def _keys(self, words: Sequence[str]) -> list[bytes]:
        keys = []
        previous = b""
        size = self.block_tokens
        for start in range(0, len(words) - size + 1, size):
            block = "\0".join(words[start : start + size]).encode()
            previous = hashlib.blake2b(previous + b"\1" + block, digest_size=16).digest()
            keys.append(previous)
        return keys

    def admit(self, words: Sequence[str]) -> int:
        """Look the prompt up, then cache its blocks.

        Args:
            words: the prompt's tokens.

        Returns:
            The cached tokens: the leading blocks found, at most those before its last
            token.
        """
        if self.capacity_tokens < self.block_tokens or not words:
            return 0
        keys = self._keys(words)
        usable = (len(words) - 1) // self.block_tokens
        hits = 0
        for key in keys[:usable]:
            if key not in self._blocks:
                break
            hits += 1
        blocks = self._blocks
        for key in keys:
            blocks[key] = None
            blocks.move_to_end(key)
        room = self.capacity_tokens // self.block_tokens
        while len(blocks) > room:
            blocks.popitem(last=False)
            self.evicted += 1
        return hits * self.block_tokens
