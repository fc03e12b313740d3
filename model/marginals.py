"""How sure the model is of an entity: the marginal probability of a labelled span.

P(span X over [i, j)) = P(y_i = B-X, y_{i+1..j-1} = I-X, y_j != I-X), summed over every tag
sequence the CRF allows (model.forward_backward), or for a model without CRF the product of
per-token softmax probabilities with the same end condition. Scores of a sentence never depend
on its batch or its padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import torch

from .forward_backward import Potentials, Recursions, recursions
from .spans import Span


class SpanIndex(NamedTuple):
    """Every span of a batch flattened: sentence row, positions and tag ids of B-X / I-X."""

    row: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    b_tag: torch.Tensor
    i_tag: torch.Tensor


@lru_cache(maxsize=16)
def span_tag_ids(tags: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """label -> (id of B-label, id of I-label) in a model's tag list."""
    ids = {tag: i for i, tag in enumerate(tags)}
    return {tag[2:]: (i, ids[f"I-{tag[2:]}"]) for tag, i in ids.items() if tag.startswith("B-")}


def index_spans(spans: Sequence[Sequence[Span]], tags: Sequence[str], device: torch.device) -> SpanIndex:
    ids = span_tag_ids(tuple(tags))
    flat = [(row, s.start, s.end, *ids[s.label]) for row, sentence in enumerate(spans) for s in sentence]
    table = torch.tensor(flat, dtype=torch.long, device=device).reshape(-1, 5)
    return SpanIndex(*table.unbind(1))


def _inside_sum(scores: torch.Tensor, idx: SpanIndex) -> torch.Tensor:
    """Sum of scores[row, t, I-X] over t in (start, end): the span's I- positions. [N]
    From running sums (in float64, so the difference loses nothing): constant work per span
    however long, where span decoding may score every span of a long sentence."""
    running = scores.double().cumsum(1)  # [B, T, K]
    last = running[idx.row, idx.end - 1, idx.i_tag]
    return (last - running[idx.row, idx.start, idx.i_tag]).to(scores.dtype)


def _next_position(idx: SpanIndex, emissions: torch.Tensor) -> torch.Tensor:
    """The position just after each span, kept inside the tensor (its score is unused there)."""
    return idx.end.clamp(max=emissions.shape[1] - 1)


def _not_inside(scores: torch.Tensor, idx: SpanIndex) -> torch.Tensor:
    """logsumexp of scores [N, K] over every tag but the span's I-X: the span ends there."""
    return scores.scatter(1, idx.i_tag[:, None], float("-inf")).logsumexp(1)


def per_sentence(values: torch.Tensor, spans: Sequence[Sequence[Span]]) -> list[list[float]]:
    """The flat values of index_spans(spans) back as a list for each sentence."""
    flat = values.tolist()
    out, at = [], 0
    for sentence in spans:
        out.append(flat[at : at + len(sentence)])
        at += len(sentence)
    return out


def crf_span_probabilities(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    pot: Potentials,
    tags: Sequence[str],
    spans: Sequence[Sequence[Span]],
) -> list[list[float]]:
    """Marginal probability of each span (label, start, end exclusive) of each sentence."""
    idx = index_spans(spans, tags, emissions.device)
    if not len(idx.row):
        return [[] for _ in spans]
    return per_sentence(crf_probabilities_at(emissions, mask, pot, idx), spans)


def crf_probabilities_at(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials, idx: SpanIndex) -> torch.Tensor:
    """[N]: the marginal probability of each indexed span (at least one)."""
    return span_probabilities(emissions, recursions(emissions, mask, pot), pot, idx)


def span_probabilities(emissions: torch.Tensor, rec: Recursions, pot: Potentials, idx: SpanIndex) -> torch.Tensor:
    """[N]: the marginal probability of each indexed span, from the emissions' recursions."""
    n_inner = idx.end - idx.start - 1
    last = torch.where(n_inner > 0, idx.i_tag, idx.b_tag)
    path = (n_inner > 0) * pot.trans[idx.b_tag, idx.i_tag]  # B-X -> I-X, then I-X -> I-X
    path = path + (n_inner - 1).clamp(min=0) * pot.trans[idx.i_tag, idx.i_tag]
    start = rec.log_alpha(idx.row, idx.start).gather(1, idx.b_tag[:, None]).squeeze(1)
    score = start + _inside_sum(emissions, idx) + path
    after = pot.trans[last] + rec.log_gamma(idx.row, idx.end)  # [N, K]: the tag after the span
    score = score + torch.where(idx.end < rec.lengths[idx.row], _not_inside(after, idx), pot.end[last])
    return torch.exp(score - rec.log_z(pot)[idx.row]).clamp(max=1.0)


def softmax_span_probabilities(
    emissions: torch.Tensor, mask: torch.Tensor, tags: Sequence[str], spans: Sequence[Sequence[Span]]
) -> list[list[float]]:
    """The same for a model without CRF: p_i(B-X) * prod p_t(I-X) * (1 - p_j(I-X))."""
    idx = index_spans(spans, tags, emissions.device)
    if not len(idx.row):
        return [[] for _ in spans]
    return per_sentence(softmax_probabilities_at(emissions, mask, idx), spans)


def softmax_probabilities_at(emissions: torch.Tensor, mask: torch.Tensor, idx: SpanIndex) -> torch.Tensor:
    """[N]: softmax_span_probabilities of each indexed span (at least one)."""
    logp = torch.log_softmax(emissions, dim=2)
    score = logp[idx.row, idx.start, idx.b_tag] + _inside_sum(logp, idx)
    not_inside = _not_inside(logp[idx.row, _next_position(idx, emissions)], idx)
    score = score + torch.where(idx.end < mask.sum(1)[idx.row], not_inside, torch.zeros_like(score))
    return torch.exp(score)
