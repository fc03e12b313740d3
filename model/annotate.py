"""A sentence to what the model sees, and the model's tags back to the sentence: token tags and
entities with token positions, character offsets and scores.

Raw text (a sentence with its original line) is shown to the model as the tokenizer's
corpus-style words and its entities point into that line, so ``line[char_start:char_end]`` is
the entity as typed. Pre-tokenized input is seen as it is (tags exactly as before), its
character offsets taken in its tokens joined by single spaces.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from .spans import Span, bio_spans
from .tokenizer import ModelInput, model_input, token_starts, token_tags, word_range

if TYPE_CHECKING:  # a tagger is passed in: preparing input (bin/results, bin/submit) needs no torch
    from .tagger import Tagger


class Entity(NamedTuple):
    label: str
    start: int  # token positions, end exclusive
    end: int
    char_start: int  # offsets into Prepared.source
    char_end: int
    text: str  # source[char_start:char_end]
    score: float


class Annotated(NamedTuple):
    tags: list[str]  # one per token
    entities: list[Entity]


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


def on_tokens(p: Prepared, word_tags: Sequence[str]) -> TokenTags:
    tags = token_tags(p.inp, word_tags, len(p.tokens)) if p.inp is not None else list(word_tags)
    return TokenTags(tags, bio_spans(tags))


def scored_spans(p: Prepared, read: TokenTags) -> list[Span]:
    """Each entity of the sentence as the model's word positions: the spans to score."""
    if p.inp is None:
        return read.spans
    return [Span(s.label, *word_range(p.inp, s.start, s.end)) for s in read.spans]


def annotate(p: Prepared, read: TokenTags, scores: Sequence[float]) -> Annotated:
    """Token tags and entities; ``scores`` are those of :func:`scored_spans`, in its order."""
    entities = []
    for span, score in zip(read.spans, scores, strict=True):
        start = p.starts[span.start]
        end = p.starts[span.end - 1] + len(p.tokens[span.end - 1])
        entities.append(Entity(span.label, span.start, span.end, start, end, p.source[start:end], score))
    return Annotated(read.tags, entities)


def iter_annotated(
    tagger: Tagger, prepared: Sequence[Prepared], batch_size: int | None = None, max_tokens: int | None = None
) -> Iterator[tuple[list[int], list[Annotated]]]:
    """(positions into ``prepared``, their annotations) a group at a time, scores from the
    tagging pass itself. Sentences that give the model no words (only punctuation) come
    first, all ``O``; then the tagger's batches."""
    silent = [i for i, p in enumerate(prepared) if not p.words]
    if silent:
        yield silent, [annotate(prepared[i], on_tokens(prepared[i], []), []) for i in silent]
    seen = [i for i, p in enumerate(prepared) if p.words]
    encoded = tagger.encode([prepared[i].words for i in seen])
    read: dict[int, TokenTags] = {}  # by position in seen, from scoring until annotated

    def spans_of(k: int, word_tags: list[str]) -> list[Span]:  # (may run on several threads)
        tags = read[k] = on_tokens(prepared[seen[k]], word_tags)
        return scored_spans(prepared[seen[k]], tags)

    for batch, _, scores in tagger.iter_scored(encoded, spans_of, batch_size, max_tokens):
        yield [seen[k] for k in batch], [annotate(prepared[seen[k]], read.pop(k), s) for k, s in zip(batch, scores)]
