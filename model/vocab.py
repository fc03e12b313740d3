"""Word, character and tag vocabularies, saved as plain JSON beside the weights."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PAD, UNK = "<PAD>", "<UNK>"
PAD_ID, UNK_ID = 0, 1
MAX_WORD_CHARS = 24  # longer tokens keep their first characters; bounds char tensor size
_TOKEN_CACHE_SIZE = 200_000  # distinct tokens remembered by Vocab.token_row (a few tens of MB at most)


@dataclass
class Vocab:
    words: list[str]
    chars: list[str]
    tags: list[str]
    lowercase: bool = True
    _word_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _char_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _tag_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _token_rows: dict[str, tuple[int, bytes]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != [PAD, UNK] or self.chars[:2] != [PAD, UNK]:
            raise ValueError("vocabularies must start with <PAD>, <UNK>")
        self._word_ids = {w: i for i, w in enumerate(self.words)}
        self._char_ids = {c: i for i, c in enumerate(self.chars)}
        self._tag_ids = {t: i for i, t in enumerate(self.tags)}
        self._token_rows = {}

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

    def token_row(self, token: str) -> tuple[int, bytes]:
        """(n, row): n is the token's char count up to MAX_WORD_CHARS; row its word id, then
        those n char ids padded with PAD_ID to MAX_WORD_CHARS, as int64 bytes. Remembered: a bulk
        job's tokens repeat (Zipf), and model.batching.encode joins a sentence's rows into its
        arrays at once (8.6 against 19.3 us a sentence, filling them id by id)."""
        known = self._token_rows.get(token)
        if known is None:
            if len(self._token_rows) >= _TOKEN_CACHE_SIZE:
                self._token_rows.clear()
            chars = self.char_ids(token)[:MAX_WORD_CHARS]
            row = array("q", [self.word_id(token), *chars, *[PAD_ID] * (MAX_WORD_CHARS - len(chars))])
            known = self._token_rows[token] = (len(chars), row.tobytes())
        return known

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
