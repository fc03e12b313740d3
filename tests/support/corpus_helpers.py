"""Corpora for tests and benchmarks: read from in-memory strings (for tests that would otherwise
write a file each), and queries written out repeated to a size."""

from __future__ import annotations

import io
from pathlib import Path

from model.corpus import Sentence, read_sentences


def parse_text(text: str, fmt: str = "text", name: str = "<string>") -> list[Sentence]:
    """Sentences from a string, read exactly as the same bytes in a file would be."""
    # surrogatepass: a lone surrogate becomes bytes the reader reports as invalid UTF-8 on its line
    return list(read_sentences(io.BytesIO(text.encode("utf-8", "surrogatepass")), fmt, name=name))


def write_queries(path: Path, queries: list[str], n: int) -> None:
    """n queries, one a line: ``queries`` over and over."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(queries[i % len(queries)] + "\n")
