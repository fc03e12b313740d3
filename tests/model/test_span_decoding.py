"""Span decoding against brute force: every span more likely than the threshold, and below 0.5
the non-overlapping set of the largest expected gain."""

from __future__ import annotations

import itertools

import pytest
import torch

from model.forward_backward import crf_potentials
from model.span_decoding import threshold_spans
from model.spans import Span, bio_spans
from tests.model.test_marginals import TAGS, all_spans, batch, brute_force, random_crf, span_holds

LENGTHS = [5, 1, 3, 4, 2]


def expected_spans(probs: dict[tuple[int, ...], float], n: int, threshold: float) -> set[Span]:
    """The best-gain set of non-overlapping spans more likely than threshold, by enumeration."""
    gain = {s: sum(p for path, p in probs.items() if span_holds(path, s)) - threshold for s in all_spans(n)}
    good = [s for s, g in gain.items() if g > 0]
    best: tuple[float, set[Span]] = (0.0, set())
    for k in range(len(good) + 1):
        for subset in itertools.combinations(good, k):
            if all(a.end <= b.start or b.end <= a.start for a, b in itertools.combinations(subset, 2)):
                best = max(best, (sum(gain[s] for s in subset), set(subset)), key=lambda b: b[0])
    return best[1]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.5, 0.7])
def test_kept_spans_match_brute_force(seed, threshold):
    crf = random_crf(seed)
    em, mask = batch(seed, LENGTHS)
    em = em * 0.5  # flatter scores: several readings of a sentence stay likely
    with torch.no_grad():
        ids = threshold_spans(em, mask, crf_potentials(crf), TAGS, threshold)
    for row, n in enumerate(LENGTHS):
        tags = [TAGS[k] for k in ids[row, :n].tolist()]
        assert ids[row, n:].eq(0).all()
        assert set(bio_spans(tags)) == expected_spans(brute_force(crf, em[row], n), n, threshold), (seed, row)


def test_padding_and_neighbours_change_nothing():
    crf = random_crf(5)
    em, mask = batch(5, LENGTHS)
    wide, wide_mask = batch(5, LENGTHS, pad_to=9)
    wide[:, :5] = em
    with torch.no_grad():
        alone = [threshold_spans(em[r : r + 1, :n], mask[r : r + 1, :n], crf_potentials(crf), TAGS, 0.3)
                 for r, n in enumerate(LENGTHS)]
        together = threshold_spans(wide, wide_mask, crf_potentials(crf), TAGS, 0.3)
    for row, n in enumerate(LENGTHS):
        assert together[row, :n].tolist() == alone[row][0].tolist()
    assert together[~wide_mask].eq(0).all()
