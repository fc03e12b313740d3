"""Span decoding against brute force: every span more likely than the threshold, and below 0.5
the non-overlapping set of the largest expected gain."""

from __future__ import annotations

import itertools

import pytest
import torch

from model.crf import CRF
from model.forward_backward import crf_potentials
from model.network import ModelConfig
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


def test_two_readings_tied_at_the_threshold_never_overlap():
    """Spans of probability 0.5 each, mutually exclusive: float rounding may put both above a
    threshold of 0.5, and the tags must still be one valid reading."""
    crf = CRF(TAGS)
    with torch.no_grad():  # only "B-A I-A O" and "O B-B I-B" stay likely, equally so
        crf.transitions[TAGS.index("B-A"), TAGS.index("B-B")] = -50.0
        crf.transitions[TAGS.index("B-B"), TAGS.index("O")] = -50.0
    likely = [["O", "B-A"], ["I-A", "B-B"], ["O", "I-B"]]
    em = torch.full((1, 3, len(TAGS)), -50.0)
    for t, tags in enumerate(likely):
        for tag in tags:
            em[0, t, TAGS.index(tag)] = 0.0
    # A constant per position keeps the two readings tied; only the rounding differs by row,
    # and in many rows both spans come out above 0.5.
    em = em + (torch.rand(400, 3, 1, generator=torch.Generator().manual_seed(0)) - 0.5) * 100
    mask = torch.ones(400, 3, dtype=torch.bool)
    with torch.no_grad():
        ids = threshold_spans(em, mask, crf_potentials(crf), TAGS, 0.5)
    readings = {tuple(TAGS[k] for k in row) for row in ids.tolist()}
    assert readings <= {("B-A", "I-A", "O"), ("O", "B-B", "I-B"), ("O", "O", "O")}


def test_an_empty_batch_decodes_to_nothing():
    em, mask = torch.zeros(0, 4, len(TAGS)), torch.zeros(0, 4, dtype=torch.bool)
    assert threshold_spans(em, mask, crf_potentials(random_crf(0)), TAGS, 0.4).shape == (0, 4)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5])
def test_a_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(ValueError, match="span_threshold"):
        ModelConfig(n_words=4, n_chars=4, tags=TAGS, span_threshold=threshold)
