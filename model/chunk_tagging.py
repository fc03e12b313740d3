"""A chunk of sentences tagged as arrays: how the worker and bin/tag turn sentences into token
tags and scored entities with character offsets.

Plain sentences (model.annotate.plain_words: their tokens are the model's words one for one)
need no per-sentence work: spans are found over a whole batch at once (model.spans.span_arrays),
scored in one indexing operation, and their offsets follow from the words' lengths. The other
sentences (punctuation, clitics, stray spaces) are read through model.annotate, one at a time.
Results do not depend on batch size or padding, and equal model.annotate's for every sentence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from .annotate import Entity, Prepared, on_tokens, plain_words, prepare, scored_spans
from .marginals import SpanIndex, span_tag_ids

if TYPE_CHECKING:
    from .batching import Batch
    from .tagger import Tagger


@dataclass(frozen=True)
class ChunkWords:
    """What the model reads of a chunk: each sentence's words, the line its entities are cut
    from, and model.annotate's reading of the sentences that are not plain, by position."""

    words: list[list[str]]
    sources: list[str]
    prepared: dict[int, Prepared]

    @classmethod
    def build(cls, words: Sequence[str | None], texts: Sequence[str | None],
              tokens: Sequence[Sequence[str] | None]) -> ChunkWords:
        """From plain_words of each sentence (None where it is not plain: its tokens are then used)."""
        out = cls([], [], {})
        for i, (joined, text) in enumerate(zip(words, texts, strict=True)):
            if joined is None:
                p = out.prepared[i] = prepare(tokens[i] or [], text)
                out.words.append(p.words)
                out.sources.append(p.source)
            else:
                out.words.append((joined or text.lower()).split(" "))  # type: ignore[union-attr] - "" has a text
                out.sources.append(joined if text is None else text)
        return out


class TagTable(NamedTuple):
    """A model's tags as arrays indexed by tag id: the entity type of each (-1 for O), whether
    it is an I- tag, and each type's B- and I- tag ids."""

    types: tuple[str, ...]
    type_of: np.ndarray
    inside: np.ndarray
    b_tag: np.ndarray
    i_tag: np.ndarray
    ids: dict[str, int]


@lru_cache(maxsize=16)
def tag_table(tags: tuple[str, ...]) -> TagTable:
    pairs = span_tag_ids(tags)
    types = tuple(pairs)
    type_of = np.array([types.index(t[2:]) if t[2:] in pairs else -1 for t in tags], dtype=np.int64)
    return TagTable(types, type_of, np.array([t.startswith("I-") for t in tags]),
                    np.array([pairs[t][0] for t in types], dtype=np.int64),
                    np.array([pairs[t][1] for t in types], dtype=np.int64), {t: i for i, t in enumerate(tags)})


class Piece(NamedTuple):
    """One batch's results: its sentences' positions and token tag ids, and its spans as
    (position, token start, token end, type) rows with their scores."""

    positions: list[int]
    tag_ids: list[list[int]]
    spans: np.ndarray  # [n, 4] int64
    scores: np.ndarray  # [n] float32


def _no_spans() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), dtype=np.int64), np.zeros(0, dtype=np.float32)


def iter_pieces(tagger: Tagger, chunk: ChunkWords, batch_size: int | None = None,
                max_tokens: int | None = None) -> Iterator[Piece]:
    """The chunk's results a batch at a time (callers check on progress in between); sentences
    that give the model no words come first, all O."""
    table = tag_table(tuple(tagger.vocab.tags))
    silent = [i for i, w in enumerate(chunk.words) if not w]
    if silent:
        tags = [[table.ids[t] for t in on_tokens(chunk.prepared[i], []).tags] for i in silent]
        yield Piece(silent, tags, *_no_spans())
    seen = [i for i, w in enumerate(chunk.words) if w]
    encoded = tagger.encode([chunk.words[i] for i in seen])

    def finish(batch: Batch, emissions: torch.Tensor, ids: torch.Tensor) -> Piece:
        return _batch_piece(tagger, table, chunk, [seen[k] for k in batch.indices], batch, emissions, ids)

    yield from tagger.map_batches(encoded, batch_size, max_tokens, finish)


def _batch_piece(tagger: Tagger, table: TagTable, chunk: ChunkWords, positions: list[int], batch: Batch,
                 emissions: torch.Tensor, ids: torch.Tensor) -> Piece:
    """Spans of the batch's plain sentences by array operations, of the others by model.annotate;
    all scored at once (Tagger.span_scores_at: the tensor work)."""
    word_ids = ids.cpu().numpy()
    lengths = batch.lengths.tolist()
    types = table.type_of[word_ids]
    types[np.arange(word_ids.shape[1]) >= batch.lengths.numpy()[:, None]] = -1
    tag_ids = [row[:n] for row, n in zip(word_ids.tolist(), lengths)]
    others = [(r, chunk.prepared[p]) for r, p in enumerate(positions) if p in chunk.prepared]
    types[[r for r, _ in others]] = -1
    rows, starts, ends = span_arrays(types, table.inside[word_ids])
    word_spans = [np.stack([rows, starts, ends, types[rows, starts]], 1)]
    token_spans = [word_spans[0][:, 1:3]]
    for r, p in others:
        read = on_tokens(p, [tagger.vocab.tags[i] for i in tag_ids[r]])
        tag_ids[r] = [table.ids[t] for t in read.tags]
        word_spans.append(_as_rows(r, scored_spans(p, read), table))
        token_spans.append(_as_rows(r, read.spans, table)[:, 1:3])
    found = np.concatenate(word_spans)
    if not len(found):
        return Piece(positions, tag_ids, *_no_spans())
    scores = tagger.span_scores_at(emissions, batch.mask, _index(found, table, emissions.device))
    spans = np.concatenate([np.asarray(positions)[found[:, 0], None], np.concatenate(token_spans), found[:, 3:]], 1)
    return Piece(positions, tag_ids, spans, scores.cpu().numpy())


def _as_rows(row: int, spans: Sequence, table: TagTable) -> np.ndarray:
    """Spans (label, start, end) of one batch row as (row, start, end, type) rows."""
    return np.array([(row, s.start, s.end, table.types.index(s.label)) for s in spans], dtype=np.int64).reshape(-1, 4)


def _index(found: np.ndarray, table: TagTable, device: torch.device) -> SpanIndex:
    """(row, start, end, type) rows as index_spans would give them, on the emissions' device."""
    types = found[:, 3]
    columns = np.stack([found[:, 0], found[:, 1], found[:, 2], table.b_tag[types], table.i_tag[types]], 1)
    return SpanIndex(*torch.from_numpy(columns).to(device).unbind(1))


def span_arrays(labels: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """model.spans.bio_spans of every row at once: ``labels`` [B, T] holds each position's
    entity type (-1 for O and padding), ``inside`` whether its tag is I-. Returns (row, start,
    end exclusive) of each span, by row then start: a span opens where a labelled position
    does not continue the one before it (an I- of the same type)."""
    labelled = labels >= 0
    continues = np.zeros_like(labelled)
    continues[:, 1:] = inside[:, 1:] & labelled[:, 1:] & (labels[:, 1:] == labels[:, :-1])
    opens = labelled & ~continues
    closes = labelled.copy()  # the span's last position: the next one does not continue it
    closes[:, :-1] &= ~continues[:, 1:]
    rows, starts = np.nonzero(opens)
    return rows, starts, np.nonzero(closes)[1] + 1


@dataclass(frozen=True)
class TaggedChunk:
    """A chunk's results as columns: each sentence's token tag ids (by position), and its
    entities sorted by sentence and start, with character offsets into their sources."""

    tags: tuple[str, ...]
    tag_ids: list[list[int]]
    position: np.ndarray
    label: list[str]
    start: np.ndarray
    end: np.ndarray
    char_start: np.ndarray
    char_end: np.ndarray
    text: list[str]
    score: np.ndarray

    def tag_lists(self) -> list[list[str]]:
        return [[self.tags[i] for i in row] for row in self.tag_ids]

    def entities(self) -> list[list[Entity]]:
        """Each sentence's entities as objects (bin/tag's exports)."""
        out: list[list[Entity]] = [[] for _ in self.tag_ids]
        columns = (self.start, self.end, self.char_start, self.char_end)
        for p, label, s, e, cs, ce, text, score in zip(self.position.tolist(), self.label, *(c.tolist() for c in columns),
                                                        self.text, self.score.tolist()):
            out[p].append(Entity(label, s, e, cs, ce, text, score))
        return out


def tag_sentences(tagger: Tagger, tokens: Sequence[Sequence[str]], texts: Sequence[str | None]) -> TaggedChunk:
    """Sentences (tokens, and the line each was cut from or None) tagged in one go."""
    chunk = ChunkWords.build(list(map(plain_words, tokens, texts)), texts, tokens)
    return tag_chunk(tagger, chunk, list(iter_pieces(tagger, chunk)))


def tag_chunk(tagger: Tagger, chunk: ChunkWords, pieces: Sequence[Piece]) -> TaggedChunk:
    """The pieces of :func:`iter_pieces` put together in sentence order."""
    table = tag_table(tuple(tagger.vocab.tags))
    tag_ids: list[list[int]] = [[] for _ in chunk.words]
    for piece in pieces:
        for p, t in zip(piece.positions, piece.tag_ids):
            tag_ids[p] = t
    spans = np.concatenate([p.spans for p in pieces]) if pieces else _no_spans()[0]
    order = np.lexsort((spans[:, 1], spans[:, 0]))
    spans, scores = spans[order], (np.concatenate([p.scores for p in pieces]) if pieces else _no_spans()[1])[order]
    position, start, end, types = spans.T
    char_start, char_end = char_offsets(chunk, position, start, end)
    texts = [chunk.sources[p][a:b] for p, a, b in zip(position.tolist(), char_start.tolist(), char_end.tolist())]
    labels = [table.types[t] for t in types.tolist()]
    return TaggedChunk(tuple(tagger.vocab.tags), tag_ids, position, labels, start, end, char_start, char_end, texts,
                       scores)


def char_offsets(chunk: ChunkWords, position: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each entity starts and ends in its source: a plain sentence's words stand one
    space apart, at their lengths; the others' tokens where model.annotate found them."""
    char_start, char_end = np.zeros_like(start), np.zeros_like(end)
    other = np.isin(position, list(chunk.prepared))
    plain = np.flatnonzero(~other)
    if len(plain):
        lengths = np.fromiter(map(len, chain.from_iterable(chunk.words)), dtype=np.int64)
        at = np.concatenate([[0], np.cumsum(lengths + 1)])  # each word's start, the chunk's words one space apart
        first = np.concatenate([[0], np.cumsum([len(w) for w in chunk.words])])[position[plain]]
        last = first + end[plain] - 1
        char_start[plain] = at[first + start[plain]] - at[first]
        char_end[plain] = at[last] - at[first] + lengths[last]
    for k in np.flatnonzero(other).tolist():
        p, s, e = chunk.prepared[int(position[k])], int(start[k]), int(end[k])
        char_start[k], char_end[k] = p.starts[s], p.starts[e - 1] + len(p.tokens[e - 1])
    return char_start, char_end
