from __future__ import annotations

import io
from pathlib import Path

import pytest

from model.corpus import MAX_LINE_BYTES, CorpusFormatError, read_corpus, read_sentences
from tests.support.corpus_helpers import parse_text


def write(tmp_path: Path, content: bytes | str, name: str = "in.bio") -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return p


def test_mit_order_tabs_spaces_crlf_and_trailing_sentence(tmp_path):
    p = write(tmp_path, "B-Actor\tsteve\r\nI-Actor   mcqueen\r\nO\tfilms\r\n\r\nB-Year 1990s\r\nO\tmovies")
    sents = list(read_sentences(p))
    assert [s.tokens for s in sents] == [["steve", "mcqueen", "films"], ["1990s", "movies"]]
    assert [s.tags for s in sents] == [["B-Actor", "I-Actor", "O"], ["B-Year", "O"]]
    assert [s.line_no for s in sents] == [1, 5]


def test_conll_order_detected_from_tag_column(tmp_path):
    p = write(tmp_path, "steve\tB-Actor\nmcqueen I-Actor\n\nfilms\tO\n")
    sents = list(read_sentences(p, "conll"))
    assert [s.tokens for s in sents] == [["steve", "mcqueen"], ["films"]]
    assert sents[0].tags == ["B-Actor", "I-Actor"]


def test_ambiguous_leading_lines_resolved_by_later_line(tmp_path):
    # "O O" fits both orders; the third line shows the file is CoNLL order.
    p = write(tmp_path, "O\tO\n\nB-Plot\tB-Plot\nsharks\tI-Plot\n")
    sents = list(read_sentences(p))
    assert [s.tokens for s in sents] == [["O"], ["B-Plot", "sharks"]]
    assert [s.tags for s in sents] == [["O"], ["B-Plot", "I-Plot"]]


def test_one_column_line_names_file_and_line(tmp_path):
    p = write(tmp_path, "B-Actor\tsteve\nmcqueen\n")
    with pytest.raises(CorpusFormatError) as err:
        list(read_sentences(p))
    assert err.value.line_no == 2 and str(p) in str(err.value) and "one column" in str(err.value)
    assert "'mcqueen'" in str(err.value)


def test_unknown_tag_shape(tmp_path):
    p = write(tmp_path, "B-Actor\tsteve\nS-Actor\tmcqueen\n")
    with pytest.raises(CorpusFormatError, match=r":2: unknown tag shape 'S-Actor'"):
        list(read_sentences(p))


def test_neither_column_is_a_tag(tmp_path):
    p = write(tmp_path, "hello world\n")
    with pytest.raises(CorpusFormatError, match=r":1: neither column is a BIO tag"):
        list(read_sentences(p))


def test_dangling_i_tag_repaired_or_rejected_when_strict(tmp_path):
    p = write(tmp_path, "O\tthe\nI-Genre\thorror\nI-Plot\tshark\n")
    assert next(read_sentences(p)).tags == ["O", "B-Genre", "B-Plot"]
    with pytest.raises(CorpusFormatError, match=r":2: I-Genre does not continue an entity"):
        list(read_sentences(p, strict=True))


def test_invalid_utf8_names_line(tmp_path):
    p = write(tmp_path, b"B-Actor\tsteve\nO\tcaf\xe9\n")
    with pytest.raises(CorpusFormatError, match=r":2: invalid UTF-8"):
        list(read_sentences(p))


def test_binary_file_rejected(tmp_path):
    p = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CorpusFormatError, match="binary data"):
        list(read_sentences(p, "text"))


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_input_is_an_error(tmp_path, content):
    with pytest.raises(CorpusFormatError, match="no sentences"):
        list(read_sentences(write(tmp_path, content), "text"))


def test_missing_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="no such file"):
        list(read_sentences(tmp_path / "nope.txt", "text"))


def test_overlong_sentence_and_line(tmp_path):
    p = write(tmp_path, "ok query\n" + "w " * 100_000 + "\n")
    with pytest.raises(CorpusFormatError, match=r":2: sentence has 100000 tokens"):
        list(read_sentences(p, "text"))
    q = write(tmp_path, b"x" * (MAX_LINE_BYTES + 10), "long.txt")
    with pytest.raises(CorpusFormatError, match=r":1: line longer than"):
        list(read_sentences(q, "text"))


def test_text_and_jsonl():
    assert [s.tokens for s in parse_text("  who directed\tjaws \n\nfunny movies\n")] == [
        ["who", "directed", "jaws"],
        ["funny", "movies"],
    ]
    sents = parse_text('{"tokens": ["a", "b"]}\n{"text": "c d e"}\n', "jsonl")
    assert [s.tokens for s in sents] == [["a", "b"], ["c", "d", "e"]]
    with pytest.raises(CorpusFormatError, match=r":2: expected an object"):
        parse_text('{"tokens": ["a"]}\n{"words": 1}\n', "jsonl")
    with pytest.raises(CorpusFormatError, match=r":1: invalid JSON: expecting property name .* at column 2: "):
        parse_text("{nope\n", "jsonl")
    with pytest.raises(CorpusFormatError, match=r":2: invalid JSON: unterminated string starting at column 10: "):
        parse_text('{"text": "one"}\n{"text": "two\n', "jsonl")
    with pytest.raises(CorpusFormatError, match=r":1: invalid JSON: nested too deeply"):
        parse_text("[" * 100_000 + "\n", "jsonl")
    for bad in ('{"tokens": ["a\\ud800"]}', '{"tokens": ["a\\u0000b"]}', '{"text": "x \\u0007 y"}'):
        with pytest.raises(CorpusFormatError, match=r":1: a token contains a control character"):
            parse_text(bad + "\n", "jsonl")


def test_stream_input_is_read_lazily():
    class Exploding(io.BytesIO):
        def readline(self, *a):
            line = super().readline(*a)
            if not line:
                raise AssertionError("read past the first sentence")
            return line

    stream = Exploding(b"first query\nsecond query\n" + b"more\n" * 10)
    it = read_sentences(stream, "text")
    assert next(it).tokens == ["first", "query"]


def test_real_corpus_counts(corpus_dir):
    train = read_corpus(corpus_dir / "trivia10k13train.bio", strict=True)
    test = read_corpus(corpus_dir / "trivia10k13test.bio", strict=True)
    assert (len(train), sum(len(s.tokens) for s in train)) == (7816, 158823)
    assert (len(test), sum(len(s.tokens) for s in test)) == (1953, 39035)
    types = {t[2:] for s in train for t in s.tags if t != "O"}
    assert len(types) == 12
