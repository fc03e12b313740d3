"""Property tests of the input readers (model.corpus): whatever the bytes, the only exception is
CorpusFormatError naming the file and a real line, every sentence keeps the reader's promises,
reading is deterministic, and valid input comes back exactly as it was written."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from model.corpus import MAX_SENTENCE_TOKENS, FORMATS, CorpusFormatError, Sentence, is_tag, read_sentences
from model.tokenizer import tokenize
from tests.support.corpus_helpers import parse_text

NAME = "fuzz/input.dat"  # the name every error message must show
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BOM = b"\xef\xbb\xbf"
# Byte sequences that break a text file: NUL, stray/truncated UTF-8, an encoded surrogate, a BOM
# in the middle, a lone CR.
BAD_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80", BOM, b"\r", b"\xc0\xaf"]

# --- outcome of one read ------------------------------------------------------------------------


def read(raw: bytes, fmt: str, strict: bool, max_tokens: int | None, peekable: bool = False
         ) -> tuple[list[Sentence], CorpusFormatError | None]:
    """The sentences yielded before the end or the error, and the error. Any other exception
    propagates and fails the test."""
    stream = io.BufferedReader(io.BytesIO(raw)) if peekable else io.BytesIO(raw)
    kwargs = {} if max_tokens is None else {"max_tokens": max_tokens}
    sentences: list[Sentence] = []
    try:
        for sentence in read_sentences(stream, fmt, strict=strict, name=NAME, **kwargs):
            sentences.append(sentence)
    except CorpusFormatError as err:
        return sentences, err
    return sentences, None


def key(result: tuple[list[Sentence], CorpusFormatError | None]) -> tuple:
    sentences, err = result
    return ([(s.tokens, s.tags, s.line_no) for s in sentences],
            None if err is None else (err.path, err.line_no, err.reason, err.line, str(err)))


def valid_iob2(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            return False
        prev = tag
    return True


def check_properties(raw: bytes, fmt: str, strict: bool, max_tokens: int | None = None) -> list[Sentence]:
    """Every property that holds for any input; returns the sentences of a clean read."""
    n_lines = raw.count(b"\n") + 1
    limit = 1000 if max_tokens is None else max_tokens
    first = read(raw, fmt, strict, max_tokens)
    sentences, err = first
    prev_line = 0
    for s in sentences:
        assert isinstance(s.tokens, list) and 0 < len(s.tokens) <= limit, s
        for t in s.tokens:
            assert isinstance(t, str) and t, s
            assert not any(c.isspace() for c in t), f"whitespace inside token {t!r}"
            assert "\x00" not in t
        assert prev_line < s.line_no <= n_lines, (s.line_no, n_lines)  # in file order, a real line
        prev_line = s.line_no
        if fmt in ("bio", "conll"):
            assert isinstance(s.tags, list) and len(s.tags) == len(s.tokens), s
            assert all(isinstance(t, str) and is_tag(t) for t in s.tags), s.tags
            # strict mode rejects a dangling I-; the default mode repairs it (IOB1 -> IOB2)
            assert valid_iob2(s.tags), s.tags
        else:
            assert s.tags is None
        if fmt == "jsonl":
            assert not any(unicodedata.category(c) in ("Cc", "Cs") for t in s.tokens for c in t)
    if err is not None:
        assert err.path == NAME and NAME in str(err), str(err)
        assert 0 <= err.line_no <= n_lines + 1, (err.line_no, n_lines, str(err))
        assert err.reason and isinstance(err.reason, str)
    # deterministic: the same bytes read again give the same sentences and the same error
    assert key(read(raw, fmt, strict, max_tokens)) == key(first)
    # a peekable stream (as files are) may reject binary data earlier, but agrees on the rest
    other_sentences, other_err = read(raw, fmt, strict, max_tokens, peekable=True)
    assert (other_err is None) == (err is None), (err, other_err)
    if err is None:
        assert key((other_sentences, None)) == key(first)
    elif other_err is not None:
        assert 0 <= other_err.line_no <= n_lines + 1 and NAME in str(other_err)
    return sentences


# --- strategies ---------------------------------------------------------------------------------

ENTITY_TYPES = st.sampled_from(["Actor", "Plot", "Year", "Character_Name", "X-Actor", "Ünï", "T" * 70])
ODD_TAGS = st.sampled_from([
    "I-", "B-", "X-Actor", "B-X-Actor", "I--", "B--Actor", "S-Actor", "E-Plot", "O-", "o", "b-Actor",
    "BI-Plot", "B_Actor", "OO", "B-\u00a0", "I-Plot\u2028", "B-\x01",
])
VALID_TAGS = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BI"), ENTITY_TYPES))
ANY_TAG = st.one_of(VALID_TAGS, ODD_TAGS)

# Characters a token may hold: no whitespace (the readers split on it), no surrogates (not
# encodable), no BOM (stripped at the start of a file), and for JSON lines no control characters.
_TOKEN_CHARS = st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp"),
                             exclude_characters="\x00\ufeff").filter(lambda c: not c.isspace())
_JSON_TOKEN_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
                                  exclude_characters="\ufeff").filter(lambda c: not c.isspace())


def tokens_from(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    short = st.text(chars, min_size=1, max_size=8)
    return st.one_of(
        st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789'.-"), min_size=1, max_size=10),
        short,
        st.builds(lambda t, k: (t * k)[:4000], short, st.integers(100, 1000)),  # very long tokens
        st.sampled_from(["O", "B-Actor", "I-Plot"]),  # tokens that look like tags
    )


TOKEN = tokens_from(_TOKEN_CHARS)
JSON_TOKEN = tokens_from(_JSON_TOKEN_CHARS)
WHITESPACE = st.sampled_from([" ", "\t", "\r", "\n", "\x0b", "\x1f", "\x85", "\u00a0", "\u2028", "\u3000"])
# A token with whitespace at one end or in the middle: what a reader must never hand on.
SPACED_TOKEN = st.builds(lambda t, w, where: (w + t, t + w, t[:1] + w + t[1:])[where], JSON_TOKEN, WHITESPACE,
                         st.integers(0, 2))
# Anything at all in a column: whitespace and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
ANY_TOKEN = st.one_of(TOKEN, ANY_TEXT, SPACED_TOKEN)
SEPARATOR = st.sampled_from(["\t", " ", "  ", " \t ", "\t\t", "\x0b", "\x0c", "\x1f", "\u00a0", "\u3000", "\u2028"])
EOL = st.sampled_from(["\n", "\r\n", "\r", "\n\r", "\r\r\n", "\x85"])
BLANK = st.sampled_from(["", " ", "\t", " \t ", "\u00a0", "\x0c"])
MAX_TOKENS = st.one_of(st.none(), st.integers(1, 6))


@st.composite
def corrupted(draw: st.DrawFn, text: str) -> bytes:
    """The text's bytes, maybe with a BOM in front and a few bad byte sequences put in."""
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        raw = BOM + raw
    for pos, bad in draw(st.lists(st.tuples(st.integers(0, 1 << 20), st.sampled_from(BAD_BYTES)), max_size=2)):
        pos %= len(raw) + 1
        raw = raw[:pos] + bad + raw[pos:]
    return raw


def join_lines(draw: st.DrawFn, lines: list[str]) -> str:
    return "".join(line + draw(EOL) for line in lines)


@st.composite
def near_valid_columns(draw: st.DrawFn) -> bytes:
    """Lines of tag/token pairs in either order, with odd separators, tags, tokens and line ends,
    blank lines, and lines of one or three columns."""
    pair = st.builds(lambda lead, a, sep, b, trail: lead + a + sep + b + trail,
                     st.sampled_from(["", " ", "\t"]), st.one_of(ANY_TAG, ANY_TOKEN), SEPARATOR,
                     st.one_of(ANY_TAG, ANY_TOKEN), st.sampled_from(["", " ", "\t", "\r"]))
    line = st.one_of(
        pair, pair, pair, BLANK,
        st.one_of(ANY_TAG, ANY_TOKEN),  # one column
        st.builds(lambda a, b, c: f"{a}\t{b} {c}", ANY_TAG, TOKEN, ANY_TAG),  # three columns
    )
    return draw(corrupted(join_lines(draw, draw(st.lists(line, max_size=12)))))


JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
JSON_ANY = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.sampled_from(["tokens", "text"]), st.text(max_size=4)),
                                            inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def near_valid_jsonl(draw: st.DrawFn) -> bytes:
    """JSON lines: right and wrong types, nesting, odd strings, truncation, huge numbers."""
    token_list = st.lists(st.one_of(JSON_TOKEN, SPACED_TOKEN, ANY_TEXT, st.integers(), st.none(),
                                    st.lists(JSON_TOKEN, max_size=2)), max_size=5)
    obj = st.one_of(
        st.fixed_dictionaries({"tokens": st.lists(JSON_TOKEN, max_size=5)}),
        st.fixed_dictionaries({"tokens": st.lists(st.one_of(JSON_TOKEN, SPACED_TOKEN), min_size=1, max_size=4)}),
        st.fixed_dictionaries({"tokens": token_list}),
        st.fixed_dictionaries({"tokens": JSON_ANY}),
        st.fixed_dictionaries({"text": st.one_of(ANY_TEXT, JSON_ANY)}),
        st.fixed_dictionaries({"tokens": st.none(), "text": ANY_TEXT}),
        st.fixed_dictionaries({"text": ANY_TEXT, "tokens": st.lists(JSON_TOKEN, max_size=3)}),
        JSON_ANY,
    )
    dumped = st.builds(lambda o, ascii_only: json.dumps(o, ensure_ascii=ascii_only), obj, st.booleans())
    line = st.one_of(
        dumped, dumped, dumped,
        st.builds(lambda s, k: s[:k], dumped, st.integers(0, 30)),  # truncated
        # numbers of any length, around the interpreter's limit on digits of an int (4300)
        st.builds(lambda k: '{"tokens": ' + "9" * k + "}",
                  st.one_of(st.integers(1, 6000), st.sampled_from([4300, 4301, 5000]))),
        st.builds(lambda k: '{"tokens": ' + "[" * k + "]" * k + "}", st.integers(1, 3000)),  # deep nesting
        st.builds(lambda k: '{"text": "' + "\\ud800" * k + '"}', st.integers(1, 2)),  # lone surrogates
        BLANK,
        ANY_TEXT,
    )
    return draw(corrupted(join_lines(draw, draw(st.lists(line, max_size=8)))))


@st.composite
def near_valid_text(draw: st.DrawFn) -> bytes:
    line = st.builds(lambda toks, sep: sep.join(toks), st.lists(ANY_TOKEN, max_size=6), SEPARATOR)
    return draw(corrupted(join_lines(draw, draw(st.lists(st.one_of(line, BLANK), max_size=10)))))


def bio_sentence(token: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[list[str], list[str]]]:
    """A sentence with valid IOB2 tags: every I- continues an entity of its type."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[list[str], list[str]]:
        tokens, tags = [], []
        for _ in range(draw(st.integers(1, 7))):
            tokens.append(draw(token))
            kinds = ["O", "B"] + (["I"] if tags and tags[-1] != "O" else [])
            kind = draw(st.sampled_from(kinds))
            tags.append("O" if kind == "O" else f"B-{draw(ENTITY_TYPES)}" if kind == "B" else "I-" + tags[-1][2:])
        return tokens, tags

    return build()


@st.composite
def layout(draw: st.DrawFn, blocks: list[list[str]], separate: bool) -> tuple[bytes, list[int]]:
    """Lines of blocks (sentences), blank lines between them (always, if `separate`), maybe at the
    start and end, a BOM, CRLF or LF line ends; and the 1-based line each block starts on."""
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = [draw(BLANK) for _ in range(draw(st.integers(0, 2)))]
    starts = []
    for i, block in enumerate(blocks):
        if i:
            lines += [draw(BLANK) for _ in range(draw(st.integers(1 if separate else 0, 2)))]
        starts.append(len(lines) + 1)
        lines += block
    lines += [draw(BLANK) for _ in range(draw(st.integers(0, 2)))]
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return (BOM if draw(st.booleans()) else b"") + text.encode("utf-8"), starts


def raw_tokens(line: str) -> list[str]:
    """What a raw-text line reads as: the tokenizer's tokens (punctuation split off)."""
    return [t.text for t in tokenize(line)]


def expect_limited(raw: bytes, fmt: str, strict: bool, max_tokens: int | None,
                   expected: list[tuple[list[str], list[str] | None, int]]) -> None:
    """Reading gives `expected` exactly, or with max_tokens, the sentences before the first one
    over the limit and then an error on that sentence's first line."""
    sentences, err = read(raw, fmt, strict, max_tokens)
    got = [(s.tokens, s.tags, s.line_no) for s in sentences]
    limit = MAX_SENTENCE_TOKENS if max_tokens is None else max_tokens  # raw text can split past the default
    too_long = [i for i, (tokens, _, _) in enumerate(expected) if len(tokens) > limit]
    if not too_long:
        assert err is None, str(err)
        assert got == expected
    else:
        first = too_long[0]
        assert got == expected[:first]
        assert err is not None and err.line_no == expected[first][2] and "more than the limit" in err.reason, err


# --- arbitrary and near-valid input -------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(raw=st.binary(max_size=4096), max_tokens=MAX_TOKENS)
def test_arbitrary_bytes_only_raise_the_readers_error(fmt, strict, raw, max_tokens):
    check_properties(raw, fmt, strict, max_tokens)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(raw=near_valid_columns(), max_tokens=MAX_TOKENS)
def test_near_valid_columns(fmt, strict, raw, max_tokens):
    check_properties(raw, fmt, strict, max_tokens)


@pytest.mark.parametrize("strict", [False, True])
@FUZZ
@given(raw=near_valid_jsonl(), max_tokens=MAX_TOKENS)
def test_near_valid_jsonl(strict, raw, max_tokens):
    check_properties(raw, "jsonl", strict, max_tokens)


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
@FUZZ
@given(raw=near_valid_text(), max_tokens=MAX_TOKENS)
def test_near_valid_text(fmt, raw, max_tokens):
    check_properties(raw, fmt, False, max_tokens)


@FUZZ
@given(tokens=st.lists(st.one_of(JSON_TOKEN, SPACED_TOKEN, ANY_TEXT), min_size=1, max_size=4),
       ascii_only=st.booleans(), strict=st.booleans())
def test_jsonl_accepts_exactly_the_tokens_it_promises(tokens, ascii_only, strict):
    """An oracle for one {"tokens": [...]} line: accepted iff every token is non-empty, holds no
    whitespace (anywhere, ends included) and no control character; then it comes back as is."""
    raw = (json.dumps({"tokens": tokens}, ensure_ascii=ascii_only) + "\n").encode("utf-8")
    ok = all(t and not any(c.isspace() or unicodedata.category(c) == "Cc" for c in t) for t in tokens)
    sentences = check_properties(raw, "jsonl", strict)
    if ok:
        assert [s.tokens for s in sentences] == [tokens]
    else:
        assert sentences == [] and read(raw, "jsonl", strict, None)[1].line_no == 1


@FUZZ
@given(text=st.lists(st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff", "\n", " ", "\x00"])),
                     max_size=300).map("".join),  # st.text() never makes surrogates
       fmt=st.sampled_from(FORMATS))
def test_parse_text_any_string_only_raises_the_readers_error(text, fmt):
    # Python strings may hold lone surrogates, which have no UTF-8 form: an error, not a crash.
    try:
        sentences = parse_text(text, fmt, name=NAME)
    except CorpusFormatError as err:
        assert NAME in str(err) and 0 <= err.line_no <= text.count("\n") + 2
        return
    assert all(s.tokens and not any(c.isspace() for t in s.tokens for c in t) for s in sentences)
    raw = text.encode("utf-8")  # parse_text succeeded, so the text is encodable
    assert key((sentences, None)) == key(read(raw, fmt, False, None))


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
@ROUND_TRIP
@given(sentences=st.lists(bio_sentence(TOKEN), min_size=1, max_size=5), order=st.sampled_from(["mit", "conll"]),
       fmt=st.sampled_from(["bio", "conll"]), max_tokens=MAX_TOKENS, data=st.data())
def test_valid_bio_round_trips(strict, sentences, order, fmt, max_tokens, data):
    if order == "conll":
        # Only a token that is not tag-shaped tells CoNLL order from MIT order ("O O" fits both);
        # a file with none is read in MIT order, the corpus's own.
        assume(any(not is_tag(t) for tokens, _ in sentences for t in tokens))
    blocks = []
    for tokens, tags in sentences:
        block = []
        for token, tag in zip(tokens, tags):
            a, b = (tag, token) if order == "mit" else (token, tag)
            lead, sep, trail = data.draw(st.sampled_from(["", " ", "\t"])), data.draw(SEPARATOR), data.draw(BLANK)
            block.append(lead + a + sep + b + trail)
        blocks.append(block)
    raw, starts = data.draw(layout(blocks, separate=True))
    expected = [(tokens, tags, start) for (tokens, tags), start in zip(sentences, starts)]
    check_properties(raw, fmt, strict, max_tokens)
    expect_limited(raw, fmt, strict, max_tokens, expected)


@ROUND_TRIP
@given(sentences=st.lists(st.lists(TOKEN, min_size=1, max_size=8), min_size=1, max_size=6),
       max_tokens=MAX_TOKENS, data=st.data())
def test_valid_text_round_trips(sentences, max_tokens, data):
    lines = [data.draw(BLANK) + data.draw(SEPARATOR).join(tokens) + data.draw(BLANK) for tokens in sentences]
    raw, starts = data.draw(layout([[line] for line in lines], separate=False))
    check_properties(raw, "text", False, max_tokens)
    expect_limited(raw, "text", False, max_tokens, [(raw_tokens(line), None, s) for line, s in zip(lines, starts)])


@ROUND_TRIP
@given(sentences=st.lists(st.lists(JSON_TOKEN, min_size=1, max_size=8), min_size=1, max_size=6),
       max_tokens=MAX_TOKENS, data=st.data())
def test_valid_jsonl_round_trips(sentences, max_tokens, data):
    blocks, expected = [], []
    for tokens in sentences:
        obj = {"tokens": tokens} if data.draw(st.booleans()) else {"text": data.draw(SEPARATOR).join(tokens)}
        blocks.append([json.dumps(obj, ensure_ascii=data.draw(st.booleans()))])
        expected.append(obj["tokens"] if "tokens" in obj else raw_tokens(obj["text"]))
    raw, starts = data.draw(layout(blocks, separate=False))
    check_properties(raw, "jsonl", False, max_tokens)
    expect_limited(raw, "jsonl", False, max_tokens, [(t, None, s) for t, s in zip(expected, starts)])


# --- bugs these properties found ------------------------------------------------------------------


@pytest.mark.parametrize("line", ['{"tokens": ["a "]}', '{"tokens": ["\\u2028b"]}', '{"tokens": ["a", "\\tc"]}'])
def test_jsonl_token_with_leading_or_trailing_whitespace_is_rejected(line):
    with pytest.raises(CorpusFormatError, match=r":1: a token contains whitespace"):
        parse_text(line + "\n", "jsonl")


def test_jsonl_number_too_long_to_convert_is_a_format_error():
    with pytest.raises(CorpusFormatError, match=r":2: invalid JSON"):
        parse_text('{"tokens": ["a"]}\n{"tokens": ' + "9" * 5000 + "}\n", "jsonl")


def test_parse_text_lone_surrogate_is_a_format_error():
    with pytest.raises(CorpusFormatError, match=r"<string>:2: invalid UTF-8"):
        parse_text("fine query\nbad \ud800 query\n")
