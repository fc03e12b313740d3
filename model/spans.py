"""Entity spans from BIO tags: what storage keeps and users query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Span(NamedTuple):
    label: str
    start: int
    end: int  # exclusive


def bio_spans(tags: Sequence[str]) -> list[Span]:
    """Spans of a tag sequence; an I- that does not continue its type's span opens a new one
    (the conlleval reading, which seqeval's default mode shares)."""
    spans: list[Span] = []
    label, start = None, 0
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and kind == label:
            continue
        if label is not None:
            spans.append(Span(label, start, i))
        label, start = (kind, i) if prefix in ("B", "I") else (None, i)
    if label is not None:
        spans.append(Span(label, start, len(tags)))
    return spans
