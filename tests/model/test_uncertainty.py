"""Sentence-level uncertainty (model.uncertainty): checked against every tag sequence enumerated,
at its limits (one path, flatter emissions), and through a tagger."""

from __future__ import annotations

import math

import pytest
import torch

from model import Tagger
from model.crf import CRF
from model.forward_backward import Potentials, crf_potentials
from model.network import BiLSTMTagger, ModelConfig
from model.spans import bio_spans
from model.uncertainty import NO_WORDS, best_path_score, expected_entities, sentence_doubts, surprise, unseen_share
from model.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocab
from tests.model.test_marginals import TAGS, batch, brute_force, random_crf

BEGINS = torch.tensor([t.startswith("B-") for t in TAGS])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surprise_and_expected_entities_match_every_sequence_enumerated(seed):
    crf = random_crf(seed)
    em, mask = batch(seed)
    pot = crf_potentials(crf)
    with torch.no_grad():
        got_surprise, got_entities = surprise(em, mask, pot), expected_entities(em, mask, pot, BEGINS)
    for row, n in enumerate(mask.sum(1).tolist()):
        paths = brute_force(crf, em[row, :n], n)
        assert got_surprise[row].item() == pytest.approx(-math.log(max(paths.values())) / n, rel=1e-4, abs=1e-5)
        expected = sum(p * len(bio_spans([TAGS[k] for k in path])) for path, p in paths.items())
        assert got_entities[row].item() == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_surprise_is_zero_where_the_crf_allows_one_path():
    em = torch.full((1, 4, len(TAGS)), -1e4)
    em[0, torch.arange(4), torch.tensor([1, 2, 0, 3])] = 0.0  # B-A I-A O B-B: every other path scores -1e4
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        assert surprise(em, mask, crf_potentials(CRF(TAGS))).item() == pytest.approx(0.0, abs=1e-6)


def test_surprise_rises_as_emissions_flatten():
    em, mask = batch(3)
    pot = crf_potentials(CRF(TAGS))  # BIO's rules alone
    with torch.no_grad():
        values = torch.stack([surprise(em * scale, mask, pot) for scale in (8.0, 4.0, 2.0, 1.0, 0.5)])
    assert (values[1:] > values[:-1]).all()


def test_without_transitions_surprise_is_each_words_own_softmax():
    em, mask = batch(4)
    k = len(TAGS)
    zero = Potentials(torch.zeros(k, k), torch.zeros(k), torch.zeros(k))
    per_word = -torch.log_softmax(em, 2).amax(2) * mask
    assert torch.allclose(surprise(em, mask, zero), per_word.sum(1) / mask.sum(1), atol=1e-5)


def test_best_path_score_is_the_viterbi_paths_score():
    crf = random_crf(5)
    em, mask = batch(5)
    with torch.no_grad():
        best = best_path_score(em, mask, crf_potentials(crf))
        paths = crf.viterbi(em, mask)
        assert torch.allclose(best, (-crf.nll(em, paths, mask) + crf._log_partition(em, mask, *crf._scores())), atol=1e-4)


def test_unseen_share_counts_unknown_words_only():
    words = torch.tensor([[5, UNK_ID, 7, UNK_ID], [UNK_ID, 4, PAD_ID, PAD_ID]])
    mask = words != PAD_ID
    assert unseen_share(words, mask).tolist() == [0.5, 0.5]


def tagger(crf: bool) -> Tagger:
    vocab = Vocab([PAD, UNK, "tom", "hanks", "movies"], [PAD, UNK, *"abcdefghijklmnopqrstuvwxyz"], TAGS)
    torch.manual_seed(0)
    config = ModelConfig(len(vocab.words), len(vocab.chars), TAGS, word_dim=8, char_dim=4, char_filters=4,
                         hidden=8, crf=crf)
    return Tagger(BiLSTMTagger(config), vocab, cache_chars=False, temperature=1.5)


@pytest.mark.parametrize("crf", [True, False])
def test_sentence_doubts_read_the_words_tagging_reads(crf):
    t = tagger(crf)
    tokens = [["Movies", "with", "Tom", "Hanks", "?"], ["?!"], ["tom"]]
    doubts = sentence_doubts(t, tokens, ["Movies with Tom Hanks ?", "?!", None])
    assert doubts[1] == NO_WORDS  # the tokenizer leaves the model no word of it
    assert (doubts[0].words, doubts[0].unseen) == (4, 0.25) and (doubts[2].words, doubts[2].unseen) == (1, 0.0)
    alone = sentence_doubts(t, [tokens[0]], ["Movies with Tom Hanks ?"])[0]
    assert alone == pytest.approx(doubts[0])  # its batch does not matter
    assert all(d.surprise >= 0 and 0 <= d.expected_entities <= d.words for d in doubts)
