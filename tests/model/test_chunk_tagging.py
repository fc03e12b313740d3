"""The chunk engine (model.chunk_tagging) against the sentence-at-a-time reading it replaces:
spans by array operations equal bio_spans, and tags, entities, offsets and scores equal what
model.annotate's functions give each sentence, plain or not, at every batch size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import Tagger
from model.annotate import on_tokens, plain_words, prepare, scored_spans
from model.chunk_tagging import ChunkWords, char_offsets, iter_pieces, span_arrays, tag_chunk, tag_sentences
from model.corpus import read_corpus
from model.spans import bio_spans
from model.tokenizer import tokenize

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]
TYPED = [
    'Who played Jack in "Titanic" (1997)?',
    "Films directed by Steven Spielberg's son?",
    "?!",
    "  steven spielberg   shark movie  ",
    "Gérard Depardieu films",
    "Ge\u0301rard Depardieu films in the 1990s 🎬",
    "Spider-Man's villain in the U.S. version, don't you know?",
    "movies with tom hanks",
    "Movies With Tom Hanks",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TAGS), max_size=9), min_size=1, max_size=6), st.data())
def test_span_arrays_find_what_bio_spans_finds(rows, data):
    width = max(map(len, rows), default=0) + data.draw(st.integers(0, 2))  # padding after each row
    ids = np.zeros((len(rows), width), dtype=np.int64)
    labels = np.full((len(rows), width), -1)
    for r, tags in enumerate(rows):
        ids[r, : len(tags)] = [TAGS.index(t) for t in tags]
        labels[r, : len(tags)] = [-1 if t == "O" else "AB".index(t[2]) for t in tags]
    found = list(zip(*(a.tolist() for a in span_arrays(labels, (ids % 2 == 0) & (ids > 0)))))
    assert found == [(r, s.start, s.end) for r, tags in enumerate(rows) for s in bio_spans(tags)]


def test_plain_words_only_where_tokens_are_the_words_one_for_one():
    def plain(line: str) -> str | None:
        return plain_words([t.text for t in tokenize(line)], line)

    assert plain("Movies With Tom Hanks") == ""  # the line lower-cased: nothing more to store
    assert plain("Gérard Depardieu") == "gerard depardieu"  # accents dropped, lengths kept
    for other in ("Who directed Titanic?", "a  film", " a film", "Ge\u0301rard Depardieu", "1970s films", "don't go"):
        assert plain(other) is None, other
    assert plain_words(["Jaws", "?"]) == "Jaws ?"  # given tokens are seen as they are
    assert plain_words(["a b", "c"]) is None and plain_words(["", "c"]) is None  # they would not come back whole
    assert plain_words([]) is None and plain_words([], "") is None


def test_entity_offsets_point_into_the_line_for_plain_and_other_sentences():
    line = "Films directed by Steven Spielberg's son?"
    tokens = [t.text for t in tokenize(line)]
    chunk = ChunkWords.build([plain_words(tokens, line), "jaws by steven spielberg", ""],
                             [line, None, "Steven"], [tokens, None, None])
    assert list(chunk.prepared) == [0] and chunk.sources[1:] == ["jaws by steven spielberg", "Steven"]
    assert chunk.words[1:] == [["jaws", "by", "steven", "spielberg"], ["steven"]]
    position, start, end = np.array([0, 0, 1, 1, 2]), np.array([3, 6, 0, 2, 0]), np.array([5, 7, 1, 4, 1])
    got = char_offsets(chunk, position, start, end)
    assert list(zip(*(a.tolist() for a in got))) == [(18, 34), (37, 40), (0, 4), (8, 24), (0, 6)]


def _one_at_a_time(tagger: Tagger, tokens: list[list[str]], texts: list[str | None], batch_size: int) -> list:
    """Each sentence's (tags, entities) by model.annotate's functions and Tagger.iter_scored."""
    prepared = [prepare(t, x) for t, x in zip(tokens, texts)]
    seen = [i for i, p in enumerate(prepared) if p.words]
    out = {i: (on_tokens(p, []).tags, []) for i, p in enumerate(prepared) if not p.words}
    read = {}

    def spans_of(k: int, word_tags: list[str]) -> list:
        read[k] = on_tokens(prepared[seen[k]], word_tags)
        return scored_spans(prepared[seen[k]], read[k])

    encoded = tagger.encode([prepared[i].words for i in seen])
    for batch, _, scores in tagger.iter_scored(encoded, spans_of, batch_size=batch_size):
        for k, span_scores in zip(batch, scores):
            p, r = prepared[seen[k]], read[k]
            entities = []
            for span, score in zip(r.spans, span_scores, strict=True):
                a, b = p.starts[span.start], p.starts[span.end - 1] + len(p.tokens[span.end - 1])
                entities.append((span.label, span.start, span.end, a, b, p.source[a:b], score))
            out[seen[k]] = (r.tags, entities)
    return [out[i] for i in range(len(prepared))]


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_the_engine_gives_each_sentence_what_annotate_gives_it(tiny_model, test_file, batch_size):
    tagger = Tagger.load(tiny_model, "cpu")
    queries = [" ".join(s.tokens) for s in read_corpus(test_file)[:150]]
    lines = TYPED * 2 + queries + [q.title() for q in queries[:40]]
    tokens = [[t.text for t in tokenize(line)] for line in lines] + [s.tokens for s in read_corpus(test_file)[:30]]
    texts = [*lines, *[None] * 30]
    chunk = ChunkWords.build(list(map(plain_words, tokens, texts)), texts, tokens)
    assert 10 < len(chunk.prepared) < 40  # both kinds of sentence are here
    tagged = tag_chunk(tagger, chunk, list(iter_pieces(tagger, chunk, batch_size=batch_size)))
    want = _one_at_a_time(tagger, tokens, texts, batch_size)
    assert tagged.tag_lists() == [tags for tags, _ in want]
    assert [[tuple(e) for e in entities] for entities in tagged.entities()] == [e for _, e in want]
    assert tagged.entities()[2] == [] and tagged.tag_lists()[2] == ["O", "O"]  # "?!": nothing the model sees
    assert sum(map(len, tagged.entities())) > 50


def test_results_do_not_depend_on_the_batch_size(tiny_model, test_file):
    tagger = Tagger.load(tiny_model, "cpu")
    lines = [" ".join(s.tokens) for s in read_corpus(test_file)[:200]] + TYPED
    tokens = [[t.text for t in tokenize(line)] for line in lines]
    results = []
    for batch_size in (1, 7, 256):
        tagger.batch_size = batch_size
        results.append(tag_sentences(tagger, tokens, lines))
    for other in results[1:]:
        assert other.tag_ids == results[0].tag_ids and other.text == results[0].text
        for column in ("position", "start", "end", "char_start", "char_end"):
            assert getattr(other, column).tolist() == getattr(results[0], column).tolist()
        assert other.score.tolist() == pytest.approx(results[0].score.tolist(), rel=1e-4, abs=1e-12)
