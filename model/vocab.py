"""Word, character and tag vocabularies, saved as plain JSON beside the weights."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PAD, UNK = "<PAD>", "<UNK>"
PAD_ID, UNK_ID = 0, 1
MAX_WORD_CHARS = 24  # longer tokens keep their first characters; bounds char tensor size
_TOKEN_CACHE_SIZE = 200_000  # distinct tokens remembered by Vocab.token_rows (a few tens of MB at most)


class TokenRows:
    """A growing table of token rows (Vocab.token_rows), at most _TOKEN_CACHE_SIZE remembered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a tagger shared by threads encodes from each
        self._clear()

    def _clear(self) -> None:
        """Forget every row: tables handed out before stay valid for whoever holds them."""
        self._row_of: dict[str, int] = {}
        self.table = np.full((1024, MAX_WORD_CHARS + 2), PAD_ID, dtype=np.int64)  # row 0: padding
        self._n = 1

    def rows(self, tokens: Iterable[str], ids: Callable[[str], list[int]]) -> tuple[np.ndarray, np.ndarray]:
        tokens = list(tokens)
        with self._lock:
            rows = list(map(self._row_of.get, tokens))
            if None in rows:
                if len(self._row_of) + rows.count(None) > _TOKEN_CACHE_SIZE:
                    self._clear()
                    rows = [None] * len(tokens)
                rows = [self._add(t, ids) if r is None else r for t, r in zip(tokens, rows)]
            return self.table, np.array(rows, dtype=np.int64)

    def _add(self, token: str, ids: Callable[[str], list[int]]) -> int:
        if token in self._row_of:  # twice in one call
            return self._row_of[token]
        if self._n == len(self.table):
            self.table = np.concatenate([self.table, np.full_like(self.table, PAD_ID)])
        row = ids(token)
        self.table[self._n, : len(row)] = row
        self.table[self._n, -1] = len(row) - 1
        self._row_of[token] = self._n
        self._n += 1
        return self._n - 1


@dataclass
class Vocab:
    words: list[str]
    chars: list[str]
    tags: list[str]
    lowercase: bool = True
    _word_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _char_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _tag_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _rows: TokenRows = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != [PAD, UNK] or self.chars[:2] != [PAD, UNK]:
            raise ValueError("vocabularies must start with <PAD>, <UNK>")
        self._word_ids = {w: i for i, w in enumerate(self.words)}
        self._char_ids = {c: i for i, c in enumerate(self.chars)}
        self._tag_ids = {t: i for i, t in enumerate(self.tags)}
        self._rows = TokenRows()

    @classmethod
    def build(
        cls,
        sentences: Iterable[tuple[Sequence[str], Sequence[str]]],
        *,
        min_count: int = 1,
        lowercase: bool = True,
    ) -> Vocab:
        """Vocabulary of (tokens, tags) pairs; tags are 'O' then B-/I- of every type, for stable ids."""
        words: Counter[str] = Counter()
        chars: Counter[str] = Counter()
        types: set[str] = set()
        for tokens, sent_tags in sentences:
            for token in tokens:
                token = token.lower() if lowercase else token
                words[token] += 1
                chars.update(token)
            types.update(t[2:] for t in sent_tags if t != "O")
        kept = sorted(w for w, n in words.items() if n >= min_count)
        tag_list = ["O"] + [f"{p}-{t}" for t in sorted(types) for p in "BI"]
        return cls([PAD, UNK, *kept], [PAD, UNK, *sorted(chars)], tag_list, lowercase)

    def norm(self, token: str) -> str:
        return token.lower() if self.lowercase else token

    def word_id(self, token: str) -> int:
        return self._word_ids.get(self.norm(token), UNK_ID)

    def char_ids(self, token: str) -> list[int]:
        return [self._char_ids.get(c, UNK_ID) for c in self.norm(token)]

    def token_rows(self, tokens: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(table, each token's row in it): a row holds a token's word id, then its char ids (up
        to MAX_WORD_CHARS) padded with PAD_ID, then how many chars; row 0 is all padding. Rows are remembered: a bulk
        job's tokens repeat (Zipf), so a chunk costs a dictionary look-up a token, and batches
        gather from the table (model.batching) with no per-token arrays."""
        return self._rows.rows(tokens, lambda t: [self.word_id(t), *self.char_ids(t)[:MAX_WORD_CHARS]])

    def tag_id(self, tag: str) -> int:
        try:
            return self._tag_ids[tag]
        except KeyError:
            raise KeyError(f"tag {tag!r} is not in the model's tag set") from None

    def to_dict(self) -> dict:
        return {"words": self.words, "chars": self.chars, "tags": self.tags, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        return cls(list(data["words"]), list(data["chars"]), list(data["tags"]), bool(data["lowercase"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
