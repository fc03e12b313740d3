"""Reading corpora from in-memory strings, for tests that would otherwise write a file each."""

from __future__ import annotations

import io

from model.corpus import Sentence, read_sentences


def parse_text(text: str, fmt: str = "text", name: str = "<string>") -> list[Sentence]:
    """Sentences from a string, read exactly as the same bytes in a file would be."""
    # surrogatepass: a lone surrogate becomes bytes the reader reports as invalid UTF-8 on its line
    return list(read_sentences(io.BytesIO(text.encode("utf-8", "surrogatepass")), fmt, name=name))
