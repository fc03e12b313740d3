"""Raw text end to end in the model package: the readers keep the line, the tagger sees corpus
words, entities come back with character offsets into the line and a score."""

from __future__ import annotations

import io
import json

import pytest

from model import Tagger
from model.annotate import on_tokens, prepare, scored_spans
from model.chunk_tagging import tag_sentences
from model.corpus import read_sentences
from model.spans import Span
from model.tokenizer import align, tokenize

TYPED = [
    'Who played Jack in "Titanic" (1997)?',
    "Films directed by Steven Spielberg?",
    "?!",
    'Is "Jaws, the Revenge" a 1980s movie, with Michael Caine?',
    "  steven spielberg   shark movie  ",
    "Spider-Man's villain in the U.S. version, don't you know?",
]


def test_text_and_jsonl_text_keep_the_line_and_split_punctuation_off():
    raw = "\n".join(TYPED).encode()
    sentences = list(read_sentences(io.BytesIO(raw), "text"))
    assert [s.text for s in sentences] == TYPED
    assert [s.tokens for s in sentences] == [[t.text for t in tokenize(line)] for line in TYPED]
    assert sentences[0].tokens[4:7] == ['"', "Titanic", '"']
    lines = "\n".join(json.dumps({"text": line}) for line in TYPED).encode()
    assert list(read_sentences(io.BytesIO(lines), "jsonl")) == [
        s.__class__(s.tokens, None, i + 1, s.text) for i, s in enumerate(sentences)]
    given = list(read_sentences(io.BytesIO(b'{"tokens": ["jaws", "?"]}'), "jsonl"))
    assert given[0].text is None and given[0].tokens == ["jaws", "?"]


def test_align_finds_stored_tokens_in_their_line_and_refuses_others():
    line = 'a "b" a'
    assert align([t.text for t in tokenize(line)], line) == tokenize(line)
    with pytest.raises(ValueError, match="not in the line"):
        align(["a", "c"], line)


def test_raw_text_entities_point_into_the_line_and_are_scored_on_model_words():
    line = "Films directed by Steven Spielberg's son?"
    p = prepare([t.text for t in tokenize(line)], line)
    assert p.words == ["films", "directed", "by", "steven", "spielberg", "s", "son"]
    word_tags = ["O", "O", "O", "B-Director", "I-Director", "O", "B-Relationship"]
    read = on_tokens(p, word_tags)
    assert read.spans == [Span("Director", 3, 5), Span("Relationship", 6, 7)]  # tokens: 's is the 6th
    assert scored_spans(p, read) == [Span("Director", 3, 5), Span("Relationship", 6, 7)]  # words: s is the 6th
    assert read.tags == ["O", "O", "O", "B-Director", "I-Director", "O", "B-Relationship", "O"]
    # A token of two words ("1970s": 1970, s) moves every later entity one word on.
    later = prepare(["1970s", "films", "by", "Steven", "Spielberg"], "1970s films by Steven Spielberg")
    read = on_tokens(later, ["B-Year", "I-Year", "O", "O", "B-Director", "I-Director"])
    assert read.spans == [Span("Year", 0, 1), Span("Director", 3, 5)]
    assert scored_spans(later, read) == [Span("Year", 0, 2), Span("Director", 4, 6)]


def test_given_tokens_are_seen_as_they_are_with_offsets_in_the_joined_tokens():
    p = prepare(["jaws", "by", "steven", "spielberg"])
    assert p.words == p.tokens and p.source == "jaws by steven spielberg" and p.starts == [0, 5, 8, 15]


def test_typed_queries_through_the_tagger(tiny_model):
    tagger = Tagger.load(tiny_model, "cpu")
    tagger.batch_size = 2
    prepared = [prepare([t.text for t in tokenize(line)], line) for line in TYPED]
    tagged = tag_sentences(tagger, [p.tokens for p in prepared], TYPED)
    out = list(zip(tagged.tag_lists(), tagged.entities()))
    assert out[2] == (["O", "O"], [])  # nothing the model could see
    word_tags = tagger.tag([p.words for p in prepared])
    for i, line in enumerate(TYPED):
        tags, entities = out[i]
        assert len(tags) == len(prepared[i].tokens)
        assert tags == on_tokens(prepared[i], word_tags[i]).tags
        assert [(e.label, e.start, e.end) for e in entities] == on_tokens(prepared[i], word_tags[i]).spans
        for e in entities:
            assert line[e.char_start : e.char_end] == e.text and e.text == e.text.strip()
            assert 0.0 <= e.score <= 1.0
