#!/usr/bin/env python3
"""Tagging queries as people type them: F1 on gold character spans, three ways.

The test set's queries are rewritten as a person would type them (names and awards
capitalised, the first word too, quotes around quotes and song titles, a comma between some
adjacent entities, contractions and possessives joined: ``don't``, ``Spielberg's``, ``1990s``;
a question mark after questions), each gold span kept as character offsets. Then scored on
exact (label, char_start, char_end) matches:

- ``original``: the corpus tokens as they are (spans in the space-joined tokens);
- ``whitespace``: the typed text split on whitespace, as ``text`` input is today;
- ``tokenizer``: the typed text through model/tokenizer.py (corpus-style words, punctuation
  unseen), and two variants of what the model sees for comparison: each token whole with
  punctuation tokens kept, or whole with them dropped;
- ``tokenizer_accented_names``: the typed text with every vowel, n and c of a person's name
  accented (``Péñélöpé Çrüz``), as names from other languages are written: the corpus has no
  accents, so the tokenizer must map them to the words the model learned.

    bin/_python bench/bench_real_text.py --model DIR [--test FILE] [--seed N] [--examples N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from model import Tagger
from model.corpus import read_corpus
from model.data import TEST_FILE, find_corpus
from model.spans import bio_spans
from model.tokenizer import ModelInput, Token, model_input, token_tags, tokenize

CAPITALISED = {"Actor", "Director", "Character_Name", "Award"}
QUOTED = {"Quote", "Soundtrack"}
QUESTION_WORDS = {"who", "what", "which", "when", "where", "why", "how", "whose", "is", "are", "was",
                  "were", "did", "does", "do", "can", "could", "has", "have", "will", "would", "name"}
PRONOUNS = {"i", "you", "we", "they", "he", "she", "it", "that", "who", "there", "what"}
ORDINALS = {"s", "st", "nd", "rd", "th"}
PEOPLE = {"Actor", "Director", "Character_Name"}
ACCENTS = str.maketrans("aeiouncAEIOUNC", "áéíöüñçÁÉÍÖÜÑÇ")  # one character for one: offsets stay
CharSpan = tuple[str, int, int]  # label, char_start, char_end


class Typed(NamedTuple):
    text: str
    gold: set[CharSpan]


class Piece(NamedTuple):
    prefix: str
    text: str
    suffix: str


def _joined(tokens: Sequence[str], tags: Sequence[str], i: int, unit: Sequence[int | None]) -> str | None:
    """How token i is written when glued to the one before (``n't``, ``'s``, ``1990s``), or None."""
    tok, prev = tokens[i], tokens[i - 1] if i else ""
    same = i > 0 and unit[i] == unit[i - 1]
    if tok == "n" and i + 1 < len(tokens) and tokens[i + 1] == "t" and same and unit[i + 1] == unit[i]:
        return "n"
    if tok == "t" and prev == "n" and i > 1 and unit[i - 1] == unit[i - 2]:
        return "'t"
    if tok in ORDINALS and prev.isdigit() and same:
        return tok
    if tok == "s" and prev.isalpha() and not tags[i].startswith("B-"):
        return "'s"
    if tok in ("m", "ll", "re", "ve", "d") and prev in PRONOUNS and same:
        return "'" + tok
    return None


def _pieces(tokens: Sequence[str], tags: Sequence[str], rng: random.Random) -> list[Piece]:
    spans = bio_spans(tags)
    unit: list[int | None] = [None] * len(tokens)
    for n, s in enumerate(spans):
        unit[s.start : s.end] = [n] * (s.end - s.start)
    pieces = []
    for i, tok in enumerate(tokens):
        label = spans[unit[i]].label if unit[i] is not None else None
        glued = _joined(tokens, tags, i, unit) if i else None
        text = glued or (tok.capitalize() if label in CAPITALISED or tok == "i" or i == 0 else tok)
        prefix = "" if glued is not None or i == 0 else " "
        starts = unit[i] is not None and spans[unit[i]].start == i
        if starts and i and unit[i - 1] is not None and glued is None and rng.random() < 0.5:
            prefix = ", "
        if starts and label in QUOTED:
            prefix += '"'
        ends = unit[i] is not None and spans[unit[i]].end == i + 1
        pieces.append(Piece(prefix, text, '"' if ends and label in QUOTED else ""))
    return pieces


def typed_query(tokens: Sequence[str], tags: Sequence[str], rng: random.Random) -> Typed:
    """The query as a person might type it, with its gold spans as character offsets."""
    pieces = _pieces(tokens, tags, rng)
    ending = "?" if tokens[0] in QUESTION_WORDS else rng.choice([".", ""])
    pieces[-1] = pieces[-1]._replace(suffix=pieces[-1].suffix + ending)
    text, offsets = "", []
    for p in pieces:
        text += p.prefix
        offsets.append((len(text), len(text) + len(p.text)))
        text += p.text + p.suffix
    gold = {(s.label, offsets[s.start][0], offsets[s.end - 1][1]) for s in bio_spans(tags)}
    return Typed(text, gold)


def char_spans(tokens: Sequence[Token], tags: Sequence[str]) -> set[CharSpan]:
    return {(s.label, tokens[s.start].start, tokens[s.end - 1].end) for s in bio_spans(tags)}


def whitespace_tokens(line: str) -> list[Token]:
    return [Token(m.group(), *m.span()) for m in re.finditer(r"\S+", line)]


def whole_tokens(tokens: Sequence[Token], keep_punctuation: bool) -> ModelInput:
    kept = [i for i, t in enumerate(tokens) if keep_punctuation or any(c.isalnum() for c in t.text)]
    return ModelInput([tokens[i].text for i in kept], kept)


def tag_through(
    tagger: Tagger, lines: Sequence[str], split: Callable[[str], list[Token]],
    to_model: Callable[[Sequence[Token]], ModelInput],
) -> list[set[CharSpan]]:
    """Predicted character spans of each line: split it, feed the model, map tags back."""
    tokenized = [split(line) for line in lines]
    inputs = [to_model(tokens) for tokens in tokenized]
    word_tags = tagger.tag([inp.words for inp in inputs])
    return [char_spans(tokens, token_tags(inp, tags, len(tokens)))
            for tokens, inp, tags in zip(tokenized, inputs, word_tags)]


def prf(gold: Sequence[set[CharSpan]], pred: Sequence[set[CharSpan]]) -> dict:
    hits = sum(len(g & p) for g, p in zip(gold, pred))
    n_gold, n_pred = sum(map(len, gold)), sum(map(len, pred))
    precision = 100 * hits / n_pred if n_pred else 0.0
    recall = 100 * hits / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": round(precision, 2), "recall": round(recall, 2), "f1": round(f1, 2)}


def accented_names(typed: Typed) -> str:
    """The typed query with its people's names accented, the gold spans where they were."""
    chars = list(typed.text)
    for label, start, end in typed.gold:
        if label in PEOPLE:
            chars[start:end] = typed.text[start:end].translate(ACCENTS)
    return "".join(chars)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--test", help="labelled test file (default: the corpus's test file)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--examples", type=int, default=3, help="typed queries to show")
    args = p.parse_args()
    sentences = read_corpus(args.test or find_corpus() / TEST_FILE)
    rng = random.Random(args.seed)
    typed = [typed_query(s.tokens, s.tags, rng) for s in sentences]
    gold = [t.gold for t in typed]
    lines = [t.text for t in typed]
    originals = [" ".join(s.tokens) for s in sentences]
    tagger = Tagger.load(args.model)
    runs = {
        "original": tag_through(tagger, originals, whitespace_tokens, lambda t: whole_tokens(t, True)),
        "whitespace": tag_through(tagger, lines, whitespace_tokens, lambda t: whole_tokens(t, True)),
        "tokenizer": tag_through(tagger, lines, tokenize, model_input),
        "tokenizer_whole_kept": tag_through(tagger, lines, tokenize, lambda t: whole_tokens(t, True)),
        "tokenizer_whole_dropped": tag_through(tagger, lines, tokenize, lambda t: whole_tokens(t, False)),
        "tokenizer_accented_names": tag_through(tagger, [accented_names(t) for t in typed], tokenize, model_input),
    }
    scores = {name: prf(gold, pred) for name, pred in runs.items()}
    original_gold = [char_spans(whitespace_tokens(line), s.tags) for line, s in zip(originals, sentences)]
    scores["original"] = prf(original_gold, runs["original"])
    scores["tokenizer_minus_original_f1"] = round(scores["tokenizer"]["f1"] - scores["original"]["f1"], 2)
    print(json.dumps({"sentences": len(sentences), "seed": args.seed, "model": str(args.model),
                      "examples": lines[: args.examples], **scores}, indent=2))


if __name__ == "__main__":
    main()
