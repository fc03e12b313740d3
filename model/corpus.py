"""Streaming readers for labelled corpora (MIT / CoNLL column order), raw text and JSON lines.
Raw text (``text`` lines, JSON lines' ``{"text": ...}``) goes through model/tokenizer.py and
keeps its original line in ``Sentence.text``.

Every reader yields one :class:`Sentence` at a time so multi-GB inputs never sit in memory,
and every problem is reported as a :class:`CorpusFormatError` that names file, line and cause.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .tokenizer import token_texts

FORMATS = ("text", "bio", "conll", "jsonl")
# A line longer than this is not a query; reading it whole could exhaust memory.
MAX_LINE_BYTES = 1 << 20
# Longer sentences are rejected: a tagger input this long is almost surely a broken file.
MAX_SENTENCE_TOKENS = 1000

_TAG_RE = re.compile(r"^(O|[BI]-[^\s-][^\s]*)$")


class CorpusFormatError(ValueError):
    """Bad input, with the place it was found, so users can fix their file."""

    def __init__(self, path: str, line_no: int, reason: str, line: str | None = None) -> None:
        self.path, self.line_no, self.reason, self.line = path, line_no, reason, line
        where = f"{path}:{line_no}" if line_no else path
        shown = f": {line[:80]!r}" if line is not None else ""
        super().__init__(f"{where}: {reason}{shown}")


@dataclass(frozen=True)
class Sentence:
    tokens: list[str]
    tags: list[str] | None
    line_no: int  # 1-based line of the sentence's first token in its file
    text: str | None = None  # the original line that raw-text input was tokenized from


def is_tag(text: str) -> bool:
    return _TAG_RE.match(text) is not None


def decoded_lines(stream: BinaryIO, path: str) -> Iterator[tuple[int, str]]:
    """(line number, text without line ending), refusing binary data and invalid UTF-8."""
    head = stream.peek(8192)[:8192] if hasattr(stream, "peek") else b""
    if b"\x00" in head:  # say "binary" up front rather than "invalid UTF-8" on some line
        nul_line = head[: head.index(b"\x00")].count(b"\n") + 1
        raise CorpusFormatError(path, nul_line, "binary data (NUL byte); expected a text file")
    line_no = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise CorpusFormatError(path, line_no, f"line longer than {MAX_LINE_BYTES} bytes")
        if b"\x00" in raw:
            raise CorpusFormatError(path, line_no, "binary data (NUL byte); expected a text file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusFormatError(
                path, line_no, f"invalid UTF-8 at byte {exc.start} of the line"
            ) from None
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        yield line_no, text.rstrip("\r\n")


def _check_length(path: str, line_no: int, tokens: list[str], max_tokens: int) -> None:
    if len(tokens) > max_tokens:
        raise CorpusFormatError(
            path, line_no, f"sentence has {len(tokens)} tokens, more than the limit of {max_tokens}"
        )


def _split(text: str) -> list[str]:
    """Raw text's tokens (model/tokenizer.py): punctuation split off, the line kept alongside."""
    return token_texts(text)


def _read_text(lines: Iterable[tuple[int, str]], path: str, max_tokens: int) -> Iterator[Sentence]:
    for line_no, text in lines:
        tokens = _split(text)
        if tokens:
            _check_length(path, line_no, tokens, max_tokens)
            yield Sentence(tokens, None, line_no, text)


def _json_reason(msg: str, column: int | None = None) -> str:
    """`invalid JSON: unterminated string starting at column 9`, from json's terse message."""
    reason = f"invalid JSON: {msg[:1].lower()}{msg[1:]}"
    if column is None:
        return reason
    return f"{reason} column {column}" if msg.endswith(" at") else f"{reason} at column {column}"


def _read_jsonl(lines: Iterable[tuple[int, str]], path: str, max_tokens: int) -> Iterator[Sentence]:
    for line_no, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorpusFormatError(path, line_no, _json_reason(exc.msg, exc.colno), text) from None
        except RecursionError:
            raise CorpusFormatError(path, line_no, "invalid JSON: nested too deeply", text) from None
        except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits()
            raise CorpusFormatError(path, line_no, _json_reason(str(exc).split(":")[0]), text) from None
        tokens = obj.get("tokens") if isinstance(obj, dict) else None
        raw = None
        if tokens is None and isinstance(obj, dict) and isinstance(obj.get("text"), str):
            raw = obj["text"]
            tokens = _split(raw)
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise CorpusFormatError(
                path, line_no, 'expected an object with "tokens" (non-empty strings) or "text"', text
            )
        if any(t.split() != [t] for t in tokens):  # also at either end: "a " splits to ["a"]
            raise CorpusFormatError(path, line_no, "a token contains whitespace", text)
        if any(unicodedata.category(c) in ("Cc", "Cs") for t in tokens for c in t):
            raise CorpusFormatError(path, line_no, "a token contains a control character or lone surrogate", text)
        if tokens:
            _check_length(path, line_no, tokens, max_tokens)
            yield Sentence(tokens, None, line_no, raw)


def _columns(path: str, line_no: int, text: str) -> list[str]:
    """A token line's two columns, or [] for a blank line; any other count is an error."""
    cols = text.split()
    if cols and len(cols) != 2:
        what = "one column" if len(cols) == 1 else f"{len(cols)} columns"
        raise CorpusFormatError(path, line_no, f"{what}; expected a tag and a token separated by whitespace", text)
    return cols


def _column_order(path: str, line_no: int, text: str, cols: list[str]) -> str | None:
    """The order a line shows: 'mit' (TAG token), 'conll' (token TAG), or None for a blank line
    or one whose columns both look like tags (e.g. "O O")."""
    if not cols:
        return None
    first, second = is_tag(cols[0]), is_tag(cols[1])
    if not (first or second):
        raise CorpusFormatError(path, line_no, "neither column is a BIO tag", text)
    if first == second:
        return None
    return "mit" if first else "conll"


class _SentenceBuilder:
    """The sentence being read from a column file: each token line is checked as it arrives."""

    def __init__(self, path: str, strict: bool, max_tokens: int) -> None:
        self.path, self.strict, self.max_tokens = path, strict, max_tokens
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.start = 0

    def read(self, lines: Iterable[tuple[int, str, list[str]]], order: str) -> Iterator[Sentence]:
        """Add (line number, text, columns) in the given column order; a blank line ends a sentence."""
        for line_no, text, cols in lines:
            if not cols:
                yield from self.finish()
                continue
            tag, token = cols if order == "mit" else reversed(cols)
            self._add(line_no, text, tag, token)

    def _add(self, line_no: int, text: str, tag: str, token: str) -> None:
        if not is_tag(tag):
            raise CorpusFormatError(self.path, line_no, f"unknown tag shape {tag!r}", text)
        prev = self.tags[-1] if self.tags else "O"
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            if self.strict:
                raise CorpusFormatError(
                    self.path, line_no, f"{tag} does not continue an entity (previous tag {prev})", text
                )
            tag = "B-" + tag[2:]  # IOB1 -> IOB2: an I- that opens an entity begins it
        if not self.tokens:
            self.start = line_no
        self.tokens.append(token)
        self.tags.append(tag)
        _check_length(self.path, self.start, self.tokens, self.max_tokens)

    def finish(self) -> Iterator[Sentence]:
        if self.tokens:
            yield Sentence(self.tokens, self.tags, self.start)
            self.tokens, self.tags = [], []


def _read_columns(
    lines: Iterable[tuple[int, str]], path: str, strict: bool, max_tokens: int
) -> Iterator[Sentence]:
    """Either column order, found from the first line that tells them apart. Lines before it wait
    and are then read in that order; a file where no line tells is read in MIT order, the corpus's own."""
    sentence = _SentenceBuilder(path, strict, max_tokens)
    order: str | None = None
    waiting: list[tuple[int, str, list[str]]] = []
    for line_no, text in lines:
        cols = _columns(path, line_no, text)
        if order is not None:
            yield from sentence.read([(line_no, text, cols)], order)
            continue
        waiting.append((line_no, text, cols))
        order = _column_order(path, line_no, text, cols)
        if order is not None:
            yield from sentence.read(waiting, order)
    if order is None:
        yield from sentence.read(waiting, "mit")
    yield from sentence.finish()


def _open(source: str | Path | BinaryIO, name: str | None) -> tuple[BinaryIO, str, bool]:
    """(binary stream, name for messages, whether we opened it and so must close it)."""
    if isinstance(source, (str, Path)) and str(source) != "-":
        path = name or str(source)
        try:
            return open(source, "rb"), path, True  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise CorpusFormatError(path, 0, "no such file") from None
        except IsADirectoryError:
            raise CorpusFormatError(path, 0, "is a directory, not a file") from None
        except PermissionError:
            raise CorpusFormatError(path, 0, "permission denied") from None
    if str(source) == "-":
        return sys.stdin.buffer, name or "<stdin>", False
    return source, name or getattr(source, "name", "<stream>"), False  # type: ignore[return-value]


def _parse(
    lines: Iterable[tuple[int, str]], fmt: str, path: str, strict: bool, max_tokens: int
) -> Iterator[Sentence]:
    if fmt == "text":
        return _read_text(lines, path, max_tokens)
    if fmt == "jsonl":
        return _read_jsonl(lines, path, max_tokens)
    return _read_columns(lines, path, strict, max_tokens)


def read_sentences(
    source: str | Path | BinaryIO,
    fmt: str = "bio",
    *,
    strict: bool = False,
    max_tokens: int = MAX_SENTENCE_TOKENS,
    name: str | None = None,
) -> Iterator[Sentence]:
    """Yield sentences from a path, '-' (stdin) or a binary stream, one at a time.

    ``bio`` and ``conll`` both accept either column order, found from the tag column's shape.
    An input with no sentence at all is an error: a job over nothing is a mistake.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stream, path, owned = _open(source, name)
    try:
        empty = True
        for sentence in _parse(decoded_lines(stream, path), fmt, path, strict, max_tokens):
            empty = False
            yield sentence
        if empty:
            raise CorpusFormatError(path, 0, "no sentences found (empty input)")
    finally:
        if owned:
            stream.close()


def read_corpus(path: str | Path, *, strict: bool = False) -> list[Sentence]:
    """A whole labelled file in memory: for training and evaluation sets, which are small."""
    return list(read_sentences(path, "bio", strict=strict))

