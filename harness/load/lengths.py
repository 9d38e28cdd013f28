"""Token lengths: how many tokens a prompt has, prompts built to a length, and lengths
drawn from a distribution with the run's seed.

Two rules count tokens:

* ``WordRule`` (the default, no files needed): one token per whitespace-separated word.
  It is the mock's own rule, so a synthetic prompt of N tokens reaches the mock as an
  N-token prompt; a real model's tokenizer gives about 1.3 tokens per English word.
* ``TokenizerRule``: a local ``tokenizer.json`` read with the ``tokenizers`` package
  (``--tokenizer PATH``); nothing is downloaded.

A run records which rule made its prompts (``prompt_tokens_source``: ``words`` or
``tokenizer``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ConfigError

__all__ = [
    "DISTRIBUTIONS",
    "LengthSpec",
    "TokenRule",
    "TokenizerRule",
    "WordRule",
    "parse_length",
]

DISTRIBUTIONS = ("uniform", "normal", "lognormal")
#: The longest length any spec may ask for or draw.
MAX_TOKENS = 1_000_000

#: The words synthetic prompts are made of: common, short, each one token in most
#: tokenizers, so that a word count and a token count stay close.
_PROSE = (
    "the of and to in is it you that he was for on are with as his they be at one have "
    "this from or had by word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come "
    "did number sound no most people my over know water than call first who may down side "
    "been now find any new work part take get place made live where after back little only "
    "round man year came show every good me give our under name very through just form "
    "sentence great think say help low line differ turn cause much mean before move right "
    "boy old too same tell does set three want air well also play small end put home read "
    "hand port large spell add even land here must big high such follow act why ask men "
    "change went light kind off need house picture try us again animal point mother world"
)
_VOCABULARY = tuple(_PROSE.split())


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthSpec:
    """A token length: ``fixed`` (``a``), ``uniform`` (whole numbers from ``a`` to ``b``),
    ``normal`` (mean ``a``, standard deviation ``b``) or ``lognormal`` (a log-normal whose
    own mean is ``a`` and standard deviation ``b``, in tokens). Draws are rounded and
    kept within 1 and ``MAX_TOKENS``."""

    kind: str
    a: float
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", *DISTRIBUTIONS):
            raise ConfigError("length", f"unknown distribution {self.kind!r}")

    def draw(self, rng: random.Random) -> int:
        """One length, drawn with ``rng``."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.randint(int(self.a), int(self.b))
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:  # the log-normal with this mean and standard deviation
            sigma2 = math.log1p((self.b / self.a) ** 2)
            value = rng.lognormvariate(math.log(self.a) - sigma2 / 2, math.sqrt(sigma2))
        return min(max(round(value), 1), MAX_TOKENS)

    def draws(self, count: int, seed: int) -> list[int]:
        """``count`` lengths drawn with ``seed`` (the same seed gives the same lengths)."""
        rng = random.Random(seed)
        return [self.draw(rng) for _ in range(count)]

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"{self.a:g}"
        return f"{self.kind}:{self.a:g},{self.b:g}"


def parse_length(text: str, field: str) -> LengthSpec:
    """``128``, ``uniform:64,256``, ``normal:200,50`` or ``lognormal:200,80`` to a spec.

    Raises:
        ConfigError: not of those forms, or values a length cannot have (named ``field``).
    """
    kind, sep, rest = text.strip().partition(":")
    try:
        if not sep:
            spec = LengthSpec(kind="fixed", a=int(kind))
        else:
            a_text, comma, b_text = rest.partition(",")
            if kind not in DISTRIBUTIONS or not comma:
                raise ValueError
            a, b = float(a_text), float(b_text)
            if kind == "uniform" and (a != int(a) or b != int(b)):
                raise ValueError
            spec = LengthSpec(kind=kind, a=a, b=b)
    except ValueError as exc:
        raise ConfigError(
            field,
            f"expected a number of tokens or uniform:MIN,MAX, normal:MEAN,SD, "
            f"lognormal:MEAN,SD, not {text!r}",
        ) from exc
    if not 1 <= spec.a <= MAX_TOKENS or (
        spec.kind == "uniform" and not spec.a <= spec.b <= MAX_TOKENS
    ):
        raise ConfigError(field, f"lengths run from 1 to {MAX_TOKENS} tokens: {text!r}")
    if spec.kind in ("normal", "lognormal") and spec.b < 0:
        raise ConfigError(field, f"the standard deviation cannot be negative: {text!r}")
    return spec


class TokenRule(Protocol):
    """Counts a text's tokens and builds texts of a given number of them."""

    @property
    def source(self) -> str:
        """``words`` or ``tokenizer``: what a run records as ``prompt_tokens_source``."""
        ...

    def count(self, text: str) -> int:
        """The tokens of ``text``."""
        ...

    def text(self, tokens: int, seed: int | str) -> str:
        """A text of ``tokens`` tokens (as near as the rule allows), chosen by ``seed``."""
        ...


def _words(count: int, seed: int | str) -> list[str]:
    rng = random.Random(seed)
    return rng.choices(_VOCABULARY, k=count)


@dataclass(frozen=True, slots=True)
class WordRule:
    """One token per whitespace-separated word (the mock counts the same way)."""

    source: str = "words"

    def count(self, text: str) -> int:
        return len(text.split())

    def text(self, tokens: int, seed: int | str) -> str:
        return " ".join(_words(max(tokens, 0), seed))


class TokenizerRule:
    """Counts with a local ``tokenizer.json`` (the ``tokenizers`` package), special
    tokens left out.

    Raises:
        ConfigError: ``tokenizers`` is not installed, or the file is not a tokenizer.
    """

    source = "tokenizer"

    def __init__(self, path: Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(
                "tokenizer", "needs the tokenizers package: pip install 'sse-harness[datasets]'"
            ) from exc
        try:
            self._tokenizer: Any = Tokenizer.from_file(str(path))
        except Exception as exc:  # the library raises its own untyped errors
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError("tokenizer", f"{path} is not a tokenizer.json ({first})") from exc
        self.path = path

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def text(self, tokens: int, seed: int | str) -> str:
        """As many whole words as fit in ``tokens`` (found by bisection); when they fall
        short, the next words' encoding cut to ``tokens`` ids and decoded, trying a few
        cuts around it and keeping the nearest (decoding and encoding again need not give
        back the same ids)."""
        if tokens <= 0:
            return ""
        words = _words(tokens + 8, seed)
        low, high = 0, len(words)  # the most words whose text has at most ``tokens``
        while low < high:
            middle = (low + high + 1) // 2
            if self.count(" ".join(words[:middle])) <= tokens:
                low = middle
            else:
                high = middle - 1
        best = " ".join(words[:low])
        best_error = abs(self.count(best) - tokens)
        if best_error == 0:
            return best
        ids = self._tokenizer.encode(" ".join(words[: low + 2]), add_special_tokens=False).ids
        for take in range(tokens, min(tokens + 4, len(ids)) + 1):
            # the cut may end inside a word; encoding it again can merge differently
            text = self._tokenizer.decode(ids[:take]).lstrip()
            error = abs(self.count(text) - tokens)
            if error < best_error:
                best, best_error = text, error
            if error == 0:
                break
        return best
