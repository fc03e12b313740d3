from __future__ import annotations

import itertools

import torch

from model.crf import CRF, bio_allowed

TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]


def valid(path: tuple[int, ...]) -> bool:
    allowed, start = bio_allowed(TAGS)
    return bool(start[path[0]]) and all(allowed[a, b] for a, b in zip(path, path[1:]))


def path_score(crf: CRF, em: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    s = crf.start[path[0]] + em[0, path[0]] + crf.end[path[-1]]
    for i in range(1, len(path)):
        s = s + crf.transitions[path[i - 1], path[i]] + em[i, path[i]]
    return s


def test_nll_and_viterbi_match_brute_force():
    torch.manual_seed(0)
    crf = CRF(TAGS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    lengths = [4, 2, 3]
    em = torch.randn(3, 4, len(TAGS))
    mask = torch.arange(4)[None] < torch.tensor(lengths)[:, None]
    gold = torch.tensor([[1, 2, 0, 3], [3, 4, 0, 0], [0, 1, 2, 0]])
    nll = crf.nll(em, gold, mask)
    best = crf.viterbi(em, mask)
    for b, n in enumerate(lengths):
        paths = [p for p in itertools.product(range(len(TAGS)), repeat=n) if valid(p)]
        scores = torch.stack([path_score(crf, em[b], p) for p in paths])
        expected = torch.logsumexp(scores, 0) - path_score(crf, em[b], tuple(gold[b, :n].tolist()))
        assert torch.allclose(nll[b], expected, atol=1e-4)
        assert tuple(best[b, :n].tolist()) == paths[int(scores.argmax())]
        assert best[b, n:].eq(0).all()


def test_viterbi_never_emits_invalid_bio():
    torch.manual_seed(1)
    crf = CRF(TAGS)
    em = torch.randn(64, 9, len(TAGS)) * 5
    em[:, :, 2] += 3  # push hard towards I-A everywhere
    mask = torch.ones(64, 9, dtype=torch.bool)
    for row in crf.viterbi(em, mask).tolist():
        assert valid(tuple(row))
