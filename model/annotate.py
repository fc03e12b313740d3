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
from .tokenizer import ModelInput, Token, align, model_input, token_tags, word_range

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
    offsets: list[Token]
    inp: ModelInput | None  # None: the model sees the tokens themselves

    @property
    def words(self) -> list[str]:
        return self.inp.words if self.inp is not None else self.tokens


def prepare(tokens: Sequence[str], text: str | None = None) -> Prepared:
    """``text``: the line the tokens were cut from (raw-text input), or None for given tokens."""
    source = text if text is not None else " ".join(tokens)
    offsets = align(tokens, source)
    return Prepared(list(tokens), source, offsets, model_input(offsets) if text is not None else None)


def _token_tags(p: Prepared, word_tags: Sequence[str]) -> list[str]:
    return token_tags(p.inp, word_tags, len(p.tokens)) if p.inp is not None else list(word_tags)


def scored_spans(p: Prepared, word_tags: Sequence[str]) -> list[Span]:
    """Each entity of the sentence as the model's word positions: the spans to score."""
    spans = bio_spans(_token_tags(p, word_tags))
    if p.inp is None:
        return spans
    return [Span(s.label, *word_range(p.inp, s.start, s.end)) for s in spans]


def annotate(p: Prepared, word_tags: Sequence[str], scores: Sequence[float]) -> Annotated:
    """Token tags and entities; ``scores`` are those of :func:`scored_spans`, in its order."""
    tags = _token_tags(p, word_tags)
    entities = []
    for span, score in zip(bio_spans(tags), scores, strict=True):
        start, end = p.offsets[span.start].start, p.offsets[span.end - 1].end
        entities.append(Entity(span.label, span.start, span.end, start, end, p.source[start:end], score))
    return Annotated(tags, entities)


def iter_annotated(
    tagger: Tagger, prepared: Sequence[Prepared], batch_size: int | None = None, max_tokens: int | None = None
) -> Iterator[tuple[list[int], list[Annotated]]]:
    """(positions into ``prepared``, their annotations) a group at a time, scores from the
    tagging pass itself. Sentences that give the model no words (only punctuation) come
    first, all ``O``; then the tagger's batches."""
    silent = [i for i, p in enumerate(prepared) if not p.words]
    if silent:
        yield silent, [annotate(prepared[i], [], []) for i in silent]
    seen = [i for i, p in enumerate(prepared) if p.words]
    encoded = tagger.encode([prepared[i].words for i in seen])
    spans_of = lambda k, tags: scored_spans(prepared[seen[k]], tags)  # noqa: E731
    for batch, tags, scores in tagger.iter_scored(encoded, spans_of, batch_size, max_tokens):
        positions = [seen[k] for k in batch]
        yield positions, [annotate(prepared[i], t, s) for i, t, s in zip(positions, tags, scores)]
