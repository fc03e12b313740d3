"""How unsure the model is of a whole sentence, one number a sentence: what picks sentences
for a person's review (worker/review.py) beside the entities' own scores.

- ``surprise``: -log P(best tag sequence) per word, from the CRF. 0 where the CRF allows one
  path only, higher the flatter its distribution; it needs no predicted entity, so a sentence
  where the model found nothing, but hesitated, scores too.
- ``expected_entities``: how many entities the CRF expects (the sum of P(y_t = B-*)); set
  against the found entities' scores it gives the entities the model expects to have missed.
- ``unseen``: the share of words the model has no vector for (<UNK>).

All at the model's calibration temperature (Tagger.potentials), as span scores are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch

from .annotate import plain_words
from .chunk_tagging import ChunkWords
from .forward_backward import Potentials, Recursions, recursions, token_marginals
from .vocab import UNK_ID

if TYPE_CHECKING:
    from .batching import Batch
    from .tagger import Tagger


class SentenceDoubt(NamedTuple):
    """One sentence's uncertainty, as the model saw it (``words``: how many words it read)."""

    words: int
    unseen: float
    surprise: float
    expected_entities: float


NO_WORDS = SentenceDoubt(0, 0.0, 0.0, 0.0)  # a sentence the model reads nothing of: nothing to doubt


def best_path_score(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials) -> torch.Tensor:
    """[B]: the score of each sentence's most likely tag sequence (Viterbi's maximum, no path)."""
    score = pot.start + emissions[:, 0]
    for i in range(1, emissions.shape[1]):
        best = (score[:, :, None] + pot.trans).amax(1) + emissions[:, i]
        score = torch.where(mask[:, i, None], best, score)
    return (score + pot.end).amax(1)


def surprise(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials, rec: Recursions | None = None
             ) -> torch.Tensor:
    """[B]: -log P(best tag sequence) / words, so that a long sentence does not win by its length
    alone. ``rec``: these emissions' recursions, when the caller has them already."""
    rec = recursions(emissions, mask, pot) if rec is None else rec
    log_p = best_path_score(emissions, mask, pot) - rec.log_z(pot)
    return (-log_p).clamp(min=0.0) / rec.lengths


def expected_entities(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials, begins: torch.Tensor,
                      rec: Recursions | None = None) -> torch.Tensor:
    """[B]: the expected number of entities, from the token marginals of the B- tags
    (``begins`` [K] bool): BIO lets an entity start nowhere else."""
    return token_marginals(emissions, mask, pot, rec)[..., begins].sum((1, 2))


def unseen_share(words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B]: the share of each sentence's words (ids [B, T]) the vocabulary has no vector for."""
    return ((words == UNK_ID) & mask).sum(1) / mask.sum(1)


def sentence_doubts(tagger: Tagger, tokens: Sequence[Sequence[str]], texts: Sequence[str | None]
                    ) -> list[SentenceDoubt]:
    """Each sentence's doubt (its tokens, and the line each was cut from or None), in input
    order: the words tagging read, one network pass batched as tagging is."""
    words = ChunkWords.build(list(map(plain_words, tokens, texts)), texts, tokens).words
    out = [NO_WORDS] * len(words)
    read = [i for i, w in enumerate(words) if w]
    begins = torch.tensor([t.startswith("B-") for t in tagger.vocab.tags], device=tagger.device)

    def finish(batch: Batch, emissions: torch.Tensor, _: torch.Tensor) -> list[tuple[int, SentenceDoubt]]:
        em, pot = emissions / tagger.temperature, tagger.potentials()
        rec = recursions(em, batch.mask, pot)
        columns = (unseen_share(batch.words, batch.mask), surprise(em, batch.mask, pot, rec),
                   expected_entities(em, batch.mask, pot, begins, rec))
        rows = zip(batch.indices, batch.lengths.tolist(), *(c.tolist() for c in columns))
        return [(read[k], SentenceDoubt(n, *values)) for k, n, *values in rows]

    for done in tagger.map_batches(tagger.encode([words[i] for i in read]), None, None, finish):
        for i, doubt in done:
            out[i] = doubt
    return out
