from __future__ import annotations

import itertools

import pytest
import torch

from model.crf import CRF
from model.forward_backward import _log_space, _scaled, crf_potentials, recursions, token_marginals
from model.marginals import crf_span_probabilities, softmax_span_probabilities
from model.reversal import reverse_within
from model.spans import Span, bio_spans

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]
LENGTHS = [4, 1, 3, 2]


def random_crf(seed: int) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(TAGS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def batch(seed: int, lengths: list[int] = LENGTHS, pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    t = pad_to or max(lengths)
    em = torch.randn(len(lengths), t, len(TAGS), generator=gen) * 2
    mask = torch.arange(t)[None] < torch.tensor(lengths)[:, None]
    return em, mask


@torch.no_grad()
def brute_force(crf: CRF, em: torch.Tensor, n: int) -> dict[tuple[int, ...], float]:
    """P(path) for every tag sequence of length n, straight from the CRF's own scores."""
    trans, start = crf._scores()
    scores = {}
    for path in itertools.product(range(len(TAGS)), repeat=n):
        s = start[path[0]] + em[0, path[0]] + crf.end[path[-1]]
        for i in range(1, n):
            s = s + trans[path[i - 1], path[i]] + em[i, path[i]]
        scores[path] = s
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    return {path: float(torch.exp(s - log_z)) for path, s in scores.items()}


def all_spans(n: int) -> list[Span]:
    return [Span(label, i, j) for label in ("A", "B") for i in range(n) for j in range(i + 1, n + 1)]


def span_holds(path: tuple[int, ...], span: Span) -> bool:
    tags = [TAGS[k] for k in path]
    return span in bio_spans(tags) and tags[span.start] == f"B-{span.label}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_span_and_token_marginals_match_brute_force(seed):
    crf = random_crf(seed)
    em, mask = batch(seed + 10)
    spans = [all_spans(n) for n in LENGTHS]
    with torch.no_grad():
        pot = crf_potentials(crf)
        got = crf_span_probabilities(em, mask, pot, TAGS, spans)
        marg = token_marginals(em, mask, pot)
    for b, n in enumerate(LENGTHS):
        probs = brute_force(crf, em[b], n)
        for span, p in zip(spans[b], got[b]):
            expected = sum(q for path, q in probs.items() if span_holds(path, span))
            assert p == pytest.approx(expected, abs=1e-5), (b, span)
        for t in range(n):
            for k in range(len(TAGS)):
                expected = sum(q for path, q in probs.items() if path[t] == k)
                assert float(marg[b, t, k]) == pytest.approx(expected, abs=1e-5)
        assert marg[b, n:].eq(0).all()


def test_token_marginals_sum_to_one_and_forbidden_tags_get_none():
    crf = random_crf(3)
    em, mask = batch(4, [7, 3, 5])
    with torch.no_grad():
        marg = token_marginals(em, mask, crf_potentials(crf))
    assert torch.allclose(marg.sum(2), mask.float(), atol=1e-5)
    assert marg[:, 0, [2, 4]].max() < 1e-6  # no sentence starts with I-


def test_span_probabilities_lie_in_unit_interval_and_partition_the_start():
    crf = random_crf(5)
    em, mask = batch(6, [6, 6])
    em = em * 5  # confident model: probabilities near 0 and 1
    with torch.no_grad():
        got = crf_span_probabilities(em, mask, crf_potentials(crf), TAGS, [all_spans(6)] * 2)
        marg = token_marginals(em, mask, crf_potentials(crf))
    flat = [p for row in got for p in row]
    assert all(0.0 <= p <= 1.0 for p in flat)
    # Spans starting with B-A at 0, over every end, add up to P(y_0 = B-A).
    starts = [p for s, p in zip(all_spans(6), got[0]) if s.label == "A" and s.start == 0]
    assert sum(starts) == pytest.approx(float(marg[0, 0, 1]), abs=1e-5)


def test_scaled_recursions_agree_with_log_space_and_underflow_falls_back_to_it():
    crf = random_crf(12)
    em, mask = batch(13, [6, 3, 5])
    pot = crf_potentials(crf)
    # Sentence 1 at step 1 has only I-A likely, which cannot follow the O that step 0 is sure of:
    # every tag the CRF allows there is e^-110 or less, which scaling in fp32 cannot hold.
    em[1, 0, 0], em[1, 1, 2] = 120.0, 120.0
    with torch.no_grad():
        underflow = _scaled(em, mask, pot).underflow
        rec = recursions(em, mask, pot)
        ref_alpha, ref_beta = _log_space(em, mask, pot)
    assert underflow.tolist() == [False, True, False]
    lengths = mask.sum(1)
    for b, n in enumerate(lengths.tolist()):
        rows, steps = torch.full((n,), b), torch.arange(n)
        alpha, gamma = rec.log_alpha(rows, steps), rec.log_gamma(rows, steps)
        ref_gamma = ref_beta[b, :n] + em[b, :n]
        # Tags the CRF forbids: about -1e4 in log space, the fp32 floor scaled. Compare the rest.
        for got, ref in ((alpha, ref_alpha[b, :n]), (gamma, ref_gamma)):
            allowed = ref > -1e3
            assert torch.allclose(got[allowed], ref[allowed], rtol=1e-5, atol=1e-3), b
    marg = token_marginals(em, mask, pot)
    assert torch.isfinite(rec.log_z(pot)).all()
    # log Z is near 240 here, where fp32 values lie about 3e-5 apart: sums to 1 within 1e-4.
    assert torch.allclose(marg.sum(2), mask.float(), atol=1e-4)


def test_token_marginals_are_zero_past_each_sentence_however_long_the_padding():
    crf = random_crf(5)
    em, mask = batch(6, [5, 1], pad_to=60)
    with torch.no_grad():
        marg = token_marginals(em * 1.5, mask, crf_potentials(crf))  # the scaled sums grow in padding
    assert torch.isfinite(marg).all() and (marg[~mask] == 0).all()
    assert torch.allclose(marg[mask].sum(1), torch.ones(6), atol=1e-4)


def test_reversing_within_lengths_keeps_padding_in_place_and_undoes_itself():
    x = torch.arange(12).reshape(3, 4)
    lengths = torch.tensor([4, 2, 0])
    assert reverse_within(x, lengths).tolist() == [[3, 2, 1, 0], [5, 4, 6, 7], [8, 9, 10, 11]]
    assert torch.equal(reverse_within(reverse_within(x, lengths), lengths), x)


def sentence_scores(crf: CRF, em: torch.Tensor, mask: torch.Tensor, spans) -> list[list[float]]:
    with torch.no_grad():
        return crf_span_probabilities(em, mask, crf_potentials(crf), TAGS, spans)


def test_scores_do_not_depend_on_batch_size_or_padding():
    crf = random_crf(7)
    lengths = [5, 2, 4, 1, 3]
    em, mask = batch(8, lengths)
    spans = [all_spans(n) for n in lengths]
    together = sentence_scores(crf, em, mask, spans)
    for b, n in enumerate(lengths):
        alone = sentence_scores(crf, em[b : b + 1, :n], mask[b : b + 1, :n], spans[b : b + 1])
        padded_em = torch.cat([em[b : b + 1], torch.randn(1, 3, len(TAGS)) * 9], dim=1)
        padded_mask = torch.cat([mask[b : b + 1], torch.zeros(1, 3, dtype=torch.bool)], dim=1)
        padded = sentence_scores(crf, padded_em, padded_mask, spans[b : b + 1])
        assert alone[0] == pytest.approx(together[b], abs=1e-6)
        assert padded[0] == pytest.approx(together[b], abs=1e-6)


def test_sentences_without_spans_and_batches_without_any():
    crf = random_crf(9)
    em, mask = batch(10, [3, 2])
    assert sentence_scores(crf, em, mask, [[], []]) == [[], []]
    got = sentence_scores(crf, em, mask, [[], [Span("B", 0, 2)]])
    assert got[0] == [] and len(got[1]) == 1


def softmax_brute_force(em: torch.Tensor, n: int, span: Span) -> float:
    p = torch.softmax(em[:n], dim=1)
    total = 0.0
    for path in itertools.product(range(len(TAGS)), repeat=n):
        if span_holds(path, span):
            total += float(torch.prod(p[torch.arange(n), torch.tensor(path)]))
    return total


def test_softmax_span_probabilities_match_brute_force_over_independent_tags():
    em, mask = batch(11)
    spans = [all_spans(n) for n in LENGTHS]
    got = softmax_span_probabilities(em, mask, TAGS, spans)
    for b, n in enumerate(LENGTHS):
        for span, p in zip(spans[b], got[b]):
            assert p == pytest.approx(softmax_brute_force(em[b], n, span), abs=1e-5)
            assert 0.0 <= p <= 1.0
    padded_em = torch.cat([em[:1], torch.randn(1, 2, len(TAGS))], dim=1)
    padded_mask = torch.cat([mask[:1], torch.zeros(1, 2, dtype=torch.bool)], dim=1)
    assert softmax_span_probabilities(padded_em, padded_mask, TAGS, spans[:1])[0] == pytest.approx(got[0], abs=1e-6)
