"""Distillation: the ensemble's expected counts against brute force, the soft CRF loss against
the usual one, and the best preset's training run."""

from __future__ import annotations

import itertools

import pytest
import torch

from model.batching import collate, encode
from model.distillation import SoftTargets, batch_targets, ensemble_targets, gold_targets, pair_marginals
from model.forward_backward import crf_potentials, recursions, token_marginals
from model.network import BiLSTMTagger, ModelConfig
from model.vocab import Vocab
from tests.model.test_marginals import TAGS, batch, brute_force, random_crf

LENGTHS = [4, 1, 3, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_marginals_match_brute_force(seed):
    crf = random_crf(seed)
    em, mask = batch(seed, LENGTHS, pad_to=6)
    pot = crf_potentials(crf)
    with torch.no_grad():
        pairs = pair_marginals(em, mask, pot, recursions(em, mask, pot))
    for row, n in enumerate(LENGTHS):
        expected = torch.zeros(len(TAGS), len(TAGS))
        for path, p in brute_force(crf, em[row], n).items():
            for a, b in itertools.pairwise(path):
                expected[a, b] += p
        assert torch.allclose(pairs[row], expected, atol=1e-5), row
        assert float(pairs[row].sum()) == pytest.approx(n - 1, abs=1e-4)


def test_gold_counts_give_the_usual_loss():
    crf = random_crf(3)
    em, mask = batch(3, LENGTHS)
    gold = torch.randint(0, len(TAGS), mask.shape, generator=torch.Generator().manual_seed(3)) * mask
    targets = gold_targets(gold, mask, len(TAGS))
    assert torch.allclose(crf.soft_nll(em, targets.tags, targets.pairs, mask), crf.nll(em, gold, mask), atol=1e-4)


def test_the_crf_s_own_counts_are_a_minimum():
    """The soft loss's gradient is the model's expected counts minus the targets: zero when the
    targets are the model's own, and not otherwise."""
    crf = random_crf(4)
    em, mask = batch(4, LENGTHS)
    pot = crf_potentials(crf)
    with torch.no_grad():
        rec = recursions(em, mask, pot)
        own = SoftTargets(token_marginals(em, mask, pot, rec), pair_marginals(em, mask, pot, rec))
    for targets, zero in ((own, True), (gold_targets(em.argmax(2) * mask, mask, len(TAGS)), False)):
        emissions = em.clone().requires_grad_()
        crf.zero_grad()
        crf.soft_nll(emissions, targets.tags, targets.pairs, mask).sum().backward()
        small = emissions.grad.abs().max() < 1e-4 and crf.transitions.grad.abs().max() < 1e-4
        assert bool(small) == zero


def teacher(seed: int, vocab: Vocab) -> BiLSTMTagger:
    torch.manual_seed(seed)
    model = BiLSTMTagger(ModelConfig(len(vocab.words), len(vocab.chars), vocab.tags, word_dim=8, char_dim=4,
                                     char_filters=6, hidden=8))
    with torch.no_grad():
        for p in model.crf.parameters():
            p.normal_()
    return model.eval()


SENTENCES = [("who directed jaws".split(), ["O", "O", "B-A"]), ("a film".split(), ["O", "O"]),
             ("the lady in red song".split(), ["B-B", "I-B", "I-B", "I-B", "O"]), (["x"], ["O"])]


def test_ensemble_targets_do_not_depend_on_the_batch():
    vocab = Vocab.build(SENTENCES)
    teachers = [teacher(1, vocab), teacher(2, vocab)]
    encoded = encode(vocab, [tokens for tokens, _ in SENTENCES])
    one_by_one = ensemble_targets(teachers, encoded, 1, torch.device("cpu"))
    together = ensemble_targets(teachers, encoded, 64, torch.device("cpu"))
    for (tokens, _), a, b in zip(SENTENCES, one_by_one, together):
        assert a.tags.shape == (len(tokens), len(vocab.tags))
        assert torch.allclose(a.tags, b.tags, atol=1e-5) and torch.allclose(a.pairs, b.pairs, atol=1e-5)
        assert torch.allclose(a.tags.sum(1), torch.ones(len(tokens)), atol=1e-5)


def test_an_ensemble_of_one_teacher_is_that_teacher():
    vocab = Vocab.build(SENTENCES)
    model = teacher(5, vocab)
    encoded = encode(vocab, [tokens for tokens, _ in SENTENCES])
    targets = ensemble_targets([model, model], encoded, 64, torch.device("cpu"))
    b = collate(encoded, [0])
    with torch.no_grad():
        em = model(b.words, b.chars, b.lengths)
        expected = token_marginals(em, b.mask, crf_potentials(model.crf))[0]
    assert torch.allclose(targets[0].tags, expected, atol=1e-5)


def test_the_weight_mixes_teachers_and_gold():
    vocab = Vocab.build(SENTENCES)
    encoded = encode(vocab, [tokens for tokens, _ in SENTENCES], [tags for _, tags in SENTENCES])
    soft = ensemble_targets([teacher(1, vocab)], encoded, 64, torch.device("cpu"))
    b = collate(encoded, [2, 0, 3])
    gold = gold_targets(b.tags, b.mask, len(vocab.tags))
    assert torch.equal(batch_targets(soft, b, 0.0).tags, gold.tags)
    assert torch.equal(batch_targets(soft, b, 0.0).pairs, gold.pairs)
    half = batch_targets(soft, b, 0.5)
    assert torch.allclose(half.tags[1, :3], 0.5 * soft[0].tags + 0.5 * gold.tags[1, :3])
    assert torch.allclose(half.pairs[0], 0.5 * soft[2].pairs + 0.5 * gold.pairs[0])
    assert half.tags[2, 1:].eq(0).all()  # past the end of a one-word sentence


def test_best_preset_trains_one_model_of_the_default_size(small_data_dir, tmp_path, tiny_model):
    """With no weight on the teachers the training is the default's, epoch by epoch; with the
    preset's weight the model learns from the ensemble, and is the default's size."""
    from model.checkpoint import load_model_dir, read_metrics
    from model.train import train
    from model.train_config import preset_config
    from tests.conftest import TINY

    def losses(metrics: dict) -> list[float]:
        return [row["loss"] for row in metrics["epochs"] + metrics["refit_epochs"]]

    default = losses(read_metrics(tiny_model))
    _, gold_only = train(preset_config("best", data_dir=str(small_data_dir), out=str(tmp_path / "gold"),
                                       **{**TINY, "teachers": 1, "distill_weight": 0.0}))
    assert losses(gold_only) == pytest.approx(default, rel=1e-4)
    out, metrics = train(preset_config("best", data_dir=str(small_data_dir), out=str(tmp_path / "best"),
                                       **{**TINY, "teachers": 2}))
    assert metrics["distillation"]["teachers"] == 2 and len(metrics["distillation"]["teacher_dev_f1"]) == 2
    assert all(abs(a - b) > 0.01 * b for a, b in zip(losses(metrics), default))
    student, plain_tiny = (load_model_dir(d, torch.device("cpu"))[0].config.to_dict() for d in (out, tiny_model))
    student.pop("span_threshold"), plain_tiny.pop("span_threshold")
    assert student == plain_tiny  # the same network: it tags as fast
    best, plain = preset_config("best"), preset_config("default")
    assert (best.word_dim, best.char_filters, best.hidden, best.layers) == (
        plain.word_dim, plain.char_filters, plain.hidden, plain.layers)


def test_a_tag_seen_only_in_dev_is_refused_clearly():
    from model.corpus import CorpusFormatError, Sentence
    from model.train import _train_dev_split, split_dev
    from model.train_config import preset_config

    sentences = [Sentence(["a"], ["O"], i) for i in range(19)] + [Sentence(["b"], ["B-A"], 19)]
    seed = next(s for s in range(100) if split_dev(sentences, 0.1, s)[1].count(sentences[-1]))
    _train_dev_split(preset_config("default", seed=seed), sentences, "train.bio")
    with pytest.raises(CorpusFormatError, match=r"train.bio.*\['B-A'\] occur only in the dev split"):
        _train_dev_split(preset_config("best", seed=seed), sentences, "train.bio")
