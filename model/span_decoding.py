"""Decoding for entity F1: the spans whose marginal probability passes a threshold, rather than
the single most likely tag sequence (Viterbi).

Where a span is uncertain, say a plot that may start a word earlier or later, Viterbi commits
to one reading even when each is less likely than not, and entity F1 counts a wrong guess as a
false positive and a miss. Keeping only the spans more likely than a threshold (chosen on dev by
model.train) raised test F1 over Viterbi on the same weights (docs/benchmarks.md#span-decoding).

A span's probability is at most its first tag's marginal (B-X) and each inner tag's (I-X), so
only starts whose B-X marginal passes are scored, each extended while I-X's does. Kept spans
that overlap (below a threshold of 0.5, or at it by float rounding) are settled per sentence by
the best total of (probability - threshold), the expected gain of each span.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple

import torch

from .forward_backward import Potentials, recursions, token_marginals
from .marginals import SpanIndex, span_probabilities, span_tag_ids


def threshold_spans(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials, tags: Sequence[str],
                    threshold: float) -> torch.Tensor:
    """Tag ids [B, T] (0 past each sentence's end) of the spans more likely than ``threshold``."""
    ids = torch.where(mask, list(tags).index("O"), 0)
    if not mask.any():
        return ids
    b_ids, i_ids = (list(x) for x in zip(*span_tag_ids(tuple(tags)).values()))
    rec = recursions(emissions, mask, pot)
    idx = _candidates(token_marginals(emissions, mask, pot, rec), b_ids, i_ids, threshold)
    gain = span_probabilities(emissions, rec, pot, idx) - threshold
    kept = gain > 0
    return _write(ids, _without_overlaps(SpanIndex(*(x[kept] for x in idx)), gain[kept]))


def _candidates(marginals: torch.Tensor, b_ids: list[int], i_ids: list[int], threshold: float) -> SpanIndex:
    """Every span whose B-X and I-X marginals all pass ``threshold``."""
    b, t, _ = marginals.shape
    inside = marginals[:, :, i_ids] > threshold  # [B, T, X]
    steps = torch.arange(t + 1, device=marginals.device)[None, :, None]
    breaks = torch.cat([inside, inside.new_zeros(b, 1, len(i_ids))], 1).logical_not()
    # The first position at or after each step where I-X fails (padding always does).
    first_break = torch.where(breaks, steps, t).flip(1).cummin(1).values.flip(1)  # [B, T+1, X]
    row, start, kind = (marginals[:, :, b_ids] > threshold).nonzero(as_tuple=True)
    pick, offset = _expand(first_break[row, start + 1, kind] - start)  # ends start+1 .. first_break
    b_tag = torch.tensor(b_ids, device=row.device)[kind]
    i_tag = torch.tensor(i_ids, device=row.device)[kind]
    return SpanIndex(row[pick], start[pick], start[pick] + 1 + offset, b_tag[pick], i_tag[pick])


def _without_overlaps(idx: SpanIndex, gain: torch.Tensor) -> SpanIndex:
    """Per sentence, the non-overlapping spans of the largest total gain (weighted interval
    scheduling), worked out only for the few sentences whose kept spans overlap: in order of
    start, spans overlap somewhere exactly when two neighbours do."""
    if not len(idx.row):
        return idx
    order = torch.argsort(idx.row * (int(idx.end.max()) + 1) + idx.start, stable=True)
    idx, gain = SpanIndex(*(x[order] for x in idx)), gain[order]
    clash = (idx.row[1:] == idx.row[:-1]) & (idx.start[1:] < idx.end[:-1])
    crowded = torch.isin(idx.row, idx.row[1:][clash])
    if not crowded.any():
        return idx
    rows: dict[int, list[_Scored]] = {}
    for span in map(_Scored._make, zip(*(x[crowded].tolist() for x in idx), gain[crowded].tolist())):
        rows.setdefault(span.row, []).append(span)
    chosen = [s[:5] for spans in rows.values() for s in _best_disjoint(sorted(spans, key=lambda s: s.end))]
    resolved = torch.tensor(chosen, dtype=torch.long, device=idx.row.device).reshape(-1, 5).unbind(1)
    return SpanIndex(*(torch.cat([x[~crowded], r]) for x, r in zip(idx, resolved)))


class _Scored(NamedTuple):
    row: int
    start: int
    end: int
    b_tag: int
    i_tag: int
    gain: float


def _best_disjoint(spans: list[_Scored]) -> list[_Scored]:
    """Spans sorted by end -> the non-overlapping subset of the largest total gain."""
    ends = [s.end for s in spans]
    best: list[tuple[float, list[_Scored]]] = [(0.0, [])]  # best[k]: among the first k spans
    for k, span in enumerate(spans):
        before = best[bisect_right(ends, span.start, hi=k)]  # the spans that end by its start
        best.append(max(best[k], (before[0] + span.gain, before[1] + [span]), key=lambda b: b[0]))
    return best[-1][1]


def _write(ids: torch.Tensor, idx: SpanIndex) -> torch.Tensor:
    """ids with each span's B-X at its start and I-X after it."""
    ids[idx.row, idx.start] = idx.b_tag
    pick, offset = _expand(idx.end - idx.start - 1)
    ids[idx.row[pick], idx.start[pick] + 1 + offset] = idx.i_tag[pick]
    return ids


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(i repeated counts[i] times, 0 .. counts[i]-1 alongside): one row per item of each run."""
    pick = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    return pick, torch.arange(len(pick), device=counts.device) - (counts.cumsum(0) - counts)[pick]
