"""Real text to tokens with character offsets, and the corpus-style words the model sees.

A small rule set on ``re`` rather than a library: NLTK's Treebank tokenizer splits ``don't``
into ``do n't`` and ``$5`` into ``$ 5``, sacremoses and blingfire keep no offsets, syntok and
spaCy would be a dependency (spaCy a heavy one) for a dozen rules. Tokens are what a user sees:

- punctuation is split off words, one character a token (``"Titanic"`` -> ``"``, ``Titanic``, ``"``);
- kept whole: contractions (``don't``, ``i'm``), names with an inner apostrophe (``o'brien``),
  hyphenated words (``spider-man``), ``r&b``, ``9/11``, decimals and digit groups (``2.5``,
  ``1,000``, ``3:10``), ``1990s``, currency amounts (``$5``), dotted abbreviations (``u.s.``)
  and titles with their dot (``mr.``, ``dr.``, ``st.``: the dot is not a sentence end);
- a clitic ``'s`` is its own token (``Spielberg's`` -> ``Spielberg``, ``'s``): the name
  before it is usually an entity and the ``'s`` is not.

The corpus is ASCII, lower-cased, unpunctuated and split Treebank-style at every inner
non-alphanumeric character and digit/letter boundary (``do n t``, ``1990 s``, ``spider man``,
``u s``, ``9 11``). :func:`model_input` turns tokens into exactly such words (accents
dropped); punctuation tokens give none, so the model never sees a character it was not
trained on. A token's tag is its first word's (punctuation: ``O``).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate, chain
from typing import NamedTuple

TITLES = ("mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "prof", "gen", "lt", "sgt", "capt", "col")
# Combining diacritical marks (the five Unicode blocks of them): a letter keeps its marks, so
# decomposed text (NFD: "e" + U+0301 for "é") is cut where its composed form is. Other scripts'
# marks (Indic vowel signs) still stand alone, as in composed text.
_COMBINING = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_HAS_MARK = re.compile(f"[{_COMBINING}]")


def _token_pattern(marks: str | None) -> re.Pattern[str]:
    """The tokenizer's rules; with ``marks`` (a character class's body), letters keep them."""
    letter, run, marked = r"[^\W\d_]", r"[^\W_]+", ""
    if marks:
        letter = rf"{letter}[{marks}]*"
        run = rf"{run}(?:[{marks}]+{run})*[{marks}]*"  # each repetition takes a letter: one reading
        marked = rf"|[^\W\d_][{marks}]"
    return re.compile(
        # Both dotted forms start with 1-4 letters and a dot (or a letter and its marks): the
        # lookahead, implied by each, lets most positions skip them (findall 1.8x faster on
        # the test queries, 2.2x on punctuated ones).
        rf"(?=[^\W\d_]{{1,4}}\.{marked})(?:"
        rf"(?i:\b(?:{'|'.join(TITLES)})\.)"  # titles keep their dot
        rf"|(?:{letter}\.){{2,}})"  # u.s., l.a., t.v.
        rf"|[$£€¥]?{run}(?:(?:[-&'’/]|(?<=\d)[.,:](?=\d)){run})*"  # words, numbers, $5, 9/11
        r"|\S"  # any other character stands alone
    )


# Marks made findall 1.3x slower on punctuated queries: only lines that have some pay for them.
_TOKEN, _TOKEN_WITH_MARKS = _token_pattern(None), _token_pattern(_COMBINING)


def _rules(line: str) -> re.Pattern[str]:
    return _TOKEN_WITH_MARKS if not line.isascii() and _HAS_MARK.search(line) else _TOKEN


_CLITIC_S = re.compile(r"['’][sS]$")
_NEGATION = re.compile(r"n['’]t$")
_WORD_PIECES = re.compile(r"\d+|[^\W\d_]+")


class Token(NamedTuple):
    text: str
    start: int  # character offsets into the original line: line[start:end] == text
    end: int


class ModelInput(NamedTuple):
    """The words the model tags, and for each the index of the token it came from."""

    words: list[str]
    owners: list[int]


def _ends_in_clitic(text: str) -> bool:
    """``Spielberg's``: the ``'s`` is a token of its own."""
    return len(text) > 2 and _CLITIC_S.search(text) is not None


def _has_apostrophe(line: str) -> bool:
    """Whether any token of the line can end in a clitic: most lines have none to look for."""
    return "'" in line or "’" in line


def tokenize(line: str) -> list[Token]:
    """Tokens of one line in order; whitespace is never part of a token."""
    tokens: list[Token] = []
    clitics = _has_apostrophe(line)
    for m in _rules(line).finditer(line):
        start, end = m.span()
        if clitics and _ends_in_clitic(m.group()):
            tokens.append(Token(line[start : end - 2], start, end - 2))
            start = end - 2
        tokens.append(Token(line[start:end], start, end))
    return tokens


def token_texts(line: str) -> list[str]:
    """The texts of :func:`tokenize`'s tokens, faster (8-13x on lines of plain words): what
    bin/submit stores (the offsets are found again from them by :func:`align`)."""
    words = line.split()
    if "".join(words).isalnum():  # plain words (isalnum is [^\W_]), as most queries are
        return words
    texts = _rules(line).findall(line)
    if not _has_apostrophe(line):
        return texts
    out: list[str] = []
    for text in texts:
        if _ends_in_clitic(text):
            out += (text[:-2], text[-2:])
        else:
            out.append(text)
    return out


@lru_cache(maxsize=200_000)  # tokens repeat: a bulk job splits each distinct one once
def corpus_words(text: str) -> tuple[str, ...]:
    """One token's words as the corpus writes them: lower-cased alphanumeric runs without
    accents (``Gérard`` -> ``gerard``), digits and letters apart, ``n't`` as ``n t``
    (``don't`` -> ``do n t``); none for punctuation."""
    if not text.isascii():  # the corpus is ASCII: "Gérard" is its "gerard", whichever way é is encoded
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.lower()
    if _NEGATION.search(text) and len(text) > 3:
        return (*_WORD_PIECES.findall(text[:-3]), "n", "t")
    return tuple(_WORD_PIECES.findall(text))


def model_input(texts: Sequence[str]) -> ModelInput:
    """The words the model sees for the tokens ``texts``, each with the token it came from."""
    pieces = list(map(corpus_words, texts))
    words = list(chain.from_iterable(pieces))
    if len(words) == len(pieces) and all(pieces):  # a word per token, as in most queries
        return ModelInput(words, list(range(len(words))))
    return ModelInput(words, [i for i, p in enumerate(pieces) for _ in p])


def token_tags(inp: ModelInput, word_tags: Sequence[str], n_tokens: int) -> list[str]:
    """Per-token tags from the model's per-word tags: a token takes its first word's tag. A
    token the model did not see (punctuation) is ``O``, unless it sits inside an entity the
    model continues across it (``Steven, Spielberg``), which then keeps it."""
    if inp.owners == list(range(n_tokens)):  # a word per token, as in most queries
        return list(word_tags)
    first: dict[int, str] = {}
    for owner, tag in zip(inp.owners, word_tags):
        first.setdefault(owner, tag)
    tags = ["O"] * n_tokens
    label = None  # type of the entity open before the current token
    for i in range(n_tokens):
        if i in first:
            tags[i] = first[i]
            label = tags[i][2:] or None
            continue
        after = bisect_left(inp.owners, i)
        if label and after < len(word_tags) and word_tags[after] == f"I-{label}":
            tags[i] = f"I-{label}"
    return tags


def token_starts(tokens: Sequence[str], line: str) -> list[int]:
    """Where each stored token starts in ``line``, each found after the one before: they were
    cut from it in order with only whitespace between, so this needs neither the tokenizer
    (old jobs stay readable whatever its rules become) nor stored offsets."""
    if tokens and " ".join(tokens) == line:  # one space between tokens, as in most lines: no search
        return list(accumulate((len(t) + 1 for t in tokens[:-1]), initial=0))
    starts: list[int] = []
    at = 0
    for text in tokens:
        start = line.find(text, at)
        if start < 0:
            raise ValueError(f"token {text!r} is not in the line after character {at}")
        at = start + len(text)
        starts.append(start)
    return starts


def align(tokens: Sequence[str], line: str) -> list[Token]:
    """Stored tokens with their offsets in ``line`` (see :func:`token_starts`)."""
    return [Token(text, start, start + len(text)) for text, start in zip(tokens, token_starts(tokens, line))]


def word_range(inp: ModelInput, token_start: int, token_end: int) -> tuple[int, int]:
    """The model words [start, end) under tokens [token_start, token_end): where to score a
    span found on tokens. Empty (start == end) when those tokens gave the model no words."""
    return bisect_left(inp.owners, token_start), bisect_left(inp.owners, token_end)
