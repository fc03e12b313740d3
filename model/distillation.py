"""Knowledge distillation: soft training targets from an ensemble of CRF taggers.

Several teachers (same data, different seeds) are combined by averaging their potentials, a
product of experts, which tags better than any one of them. A single student then trains to
match that ensemble's distribution over tag sequences, so it tags at one model's speed.

The target is the ensemble's expected counts: each token's tag marginals and each sentence's
summed tag-pair marginals. The CRF loss against them (model.crf.CRF.soft_nll) is the
cross-entropy from the ensemble to the student, log Z minus the expected path score, which
costs no more than the usual negative log-likelihood. Gold tags give the same counts as one-hot
values, so mixing the two is a weighted average of counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .batching import Batch, Encoded, iter_batches
from .forward_backward import Potentials, Recursions, crf_potentials, recursions, token_marginals
from .network import BiLSTMTagger


class SoftTargets(NamedTuple):
    """Expected counts of one sentence, or of a padded batch of them."""

    tags: torch.Tensor  # [L, K] or [B, T, K]: P(y_t = k); 0 past a sentence's end
    pairs: torch.Tensor  # [K, K] or [B, K, K]: sum over t of P(y_{t-1} = i, y_t = j)


@torch.no_grad()
def ensemble_scores(teachers: Sequence[BiLSTMTagger], batch: Batch) -> tuple[torch.Tensor, Potentials]:
    """The teachers' emissions (teachers in eval mode) and CRF potentials, averaged."""
    emissions = torch.stack([t(batch.words, batch.chars, batch.lengths) for t in teachers]).mean(0)
    pots = [crf_potentials(t.crf) for t in teachers]
    return emissions, Potentials(*(torch.stack(parts).mean(0) for parts in zip(*pots)))


def pair_marginals(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials, rec: Recursions) -> torch.Tensor:
    """[B, K, K]: the expected number of times tag i is followed by tag j in each sentence."""
    b, t, k = emissions.shape
    if t < 2:
        return emissions.new_zeros(b, k, k)
    rows = torch.arange(b, device=emissions.device).repeat_interleave(t - 1)
    steps = torch.arange(1, t, device=emissions.device).repeat(b)
    log_p = (rec.log_alpha(rows, steps - 1)[:, :, None] + pot.trans + rec.log_gamma(rows, steps)[:, None, :]
             - rec.log_z(pot)[rows, None, None])
    p = torch.where(mask[:, 1:].reshape(-1, 1, 1), torch.exp(log_p), 0.0)
    return p.view(b, t - 1, k, k).sum(1)


@torch.no_grad()
def ensemble_targets(teachers: Sequence[BiLSTMTagger], encoded: Encoded, batch_size: int,
                     device: torch.device) -> list[SoftTargets]:
    """The ensemble's expected counts for each encoded sentence, in input order."""
    out: list[SoftTargets | None] = [None] * len(encoded)
    for teacher in teachers:
        teacher.eval()  # no dropout in the targets
    for batch in iter_batches(encoded, batch_size):
        batch = batch.to(device)
        emissions, pot = ensemble_scores(teachers, batch)
        rec = recursions(emissions, batch.mask, pot)
        tags = token_marginals(emissions, batch.mask, pot, rec).cpu()
        pairs = pair_marginals(emissions, batch.mask, pot, rec).cpu()
        for row, i in enumerate(batch.indices):
            out[i] = SoftTargets(tags[row, : int(batch.lengths[row])].clone(), pairs[row].clone())
    return out  # type: ignore[return-value]


def gold_targets(tags: torch.Tensor, mask: torch.Tensor, n_tags: int) -> SoftTargets:
    """The counts of the gold tags [B, T]: one-hot, batched."""
    one_hot = torch.nn.functional.one_hot(tags, n_tags).to(torch.float32) * mask[..., None]
    pair_ids = (tags[:, :-1] * n_tags + tags[:, 1:]).masked_fill(~mask[:, 1:], 0)
    pairs = torch.zeros(len(tags), n_tags * n_tags, device=tags.device)
    pairs.scatter_add_(1, pair_ids, mask[:, 1:].to(torch.float32))
    return SoftTargets(one_hot, pairs.view(-1, n_tags, n_tags))


def batch_targets(soft: Sequence[SoftTargets], batch: Batch, weight: float) -> SoftTargets:
    """The batch's training counts: ``weight`` of the ensemble's and the rest the gold tags'."""
    assert batch.tags is not None
    gold = gold_targets(batch.tags, batch.mask, soft[batch.indices[0]].pairs.shape[0])
    tags = torch.zeros_like(gold.tags)
    for row, i in enumerate(batch.indices):
        tags[row, : len(soft[i].tags)] = soft[i].tags
    pairs = torch.stack([soft[i].pairs for i in batch.indices]).to(gold.pairs.device)
    return SoftTargets(weight * tags + (1 - weight) * gold.tags,
                       weight * pairs + (1 - weight) * gold.pairs)
