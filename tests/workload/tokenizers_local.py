"""Tiny ``tokenizer.json`` files made here with the ``tokenizers`` library (no download)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a stream of server sent events carries one token after another",
    "prefill time grows with the prompt while the cache keeps shared prefixes",
    "water people number sound world mother animal picture house light",
] * 20


def word_level(path: Path) -> Path:
    """One token per known word (the rest one ``[UNK]`` each), split on whitespace."""
    words = sorted({word for line in CORPUS for word in line.split()})
    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


def bpe(path: Path) -> Path:
    """A small byte-level BPE trained on ``CORPUS``: words split into several tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import decoders

    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer.save(str(path))
    return path
