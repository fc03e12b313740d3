"""A sentence to what the model sees, and the model's tags back to the sentence: token tags and
entities with token positions, character offsets and scores.

Raw text (a sentence with its original line) is shown to the model as the tokenizer's
corpus-style words and its entities point into that line, so ``line[char_start:char_end]`` is
the entity as typed. Pre-tokenized input is seen as it is (tags exactly as before), its
character offsets taken in its tokens joined by single spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .spans import Span, bio_spans
from .tokenizer import ModelInput, model_input, token_starts, token_tags, word_range


class Entity(NamedTuple):
    label: str
    start: int  # token positions, end exclusive
    end: int
    char_start: int  # offsets into Prepared.source
    char_end: int
    text: str  # source[char_start:char_end]
    score: float


class Prepared(NamedTuple):
    tokens: list[str]
    source: str  # the original line, or the tokens joined by spaces
    starts: list[int]  # where each token starts in source
    inp: ModelInput | None  # None: the model sees the tokens themselves

    @property
    def words(self) -> list[str]:
        return self.inp.words if self.inp is not None else self.tokens


class TokenTags(NamedTuple):
    """The model's word tags read on the sentence's tokens: a tag per token, and its entities."""

    tags: list[str]
    spans: list[Span]  # token positions


def prepare(tokens: Sequence[str], text: str | None = None) -> Prepared:
    """``text``: the line the tokens were cut from (raw-text input), or None for given tokens."""
    source = text if text is not None else " ".join(tokens)
    inp = model_input(tokens) if text is not None else None
    return Prepared(list(tokens), source, token_starts(tokens, source), inp)


def plain_words(tokens: Sequence[str], text: str | None = None) -> str | None:
    """The model's words joined by spaces if the sentence is plain, else None; "" when they are
    the line lower-cased, as for most typed queries (nothing more to store). Plain: the model
    sees the tokens themselves (given tokens), or one word per token at its length with the
    tokens one space apart in the line. Its tags are then its words', and every offset follows
    from the words' lengths (model.chunk_tagging needs nothing else)."""
    if not tokens:
        return None
    if text is None:  # the words are the tokens themselves, joined: each must come back whole
        return " ".join(tokens) if all(t and " " not in t for t in tokens) else None
    words, owners = model_input(tokens)
    if owners != list(range(len(tokens))) or text != " ".join(tokens) or any(map(_other_length, words, tokens)):
        return None
    joined = " ".join(words)
    return "" if joined == text.lower() else joined


def _other_length(word: str, token: str) -> bool:
    return len(word) != len(token)


def on_tokens(p: Prepared, word_tags: Sequence[str]) -> TokenTags:
    tags = token_tags(p.inp, word_tags, len(p.tokens)) if p.inp is not None else list(word_tags)
    return TokenTags(tags, bio_spans(tags))


def scored_spans(p: Prepared, read: TokenTags) -> list[Span]:
    """Each entity of the sentence as the model's word positions: the spans to score."""
    if p.inp is None:
        return read.spans
    return [Span(s.label, *word_range(p.inp, s.start, s.end)) for s in read.spans]
