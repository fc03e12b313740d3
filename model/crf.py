"""Linear-chain CRF over BIO tags: transitions that BIO forbids are never scored or decoded.

Both the forward algorithm and Viterbi run as batched tensor code, one step per time position,
so their cost does not grow with a Python loop over sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FORBIDDEN = -10000.0


def bio_allowed(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(allowed[i, j] for tag i followed by tag j, allowed_start[j])."""
    n = len(tags)
    allowed = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = False
            for i, prev in enumerate(tags):
                allowed[i, j] = prev[2:] == tag[2:] and prev != "O"
    return allowed, start


class CRF(nn.Module):
    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        n = len(tags)
        self.transitions = nn.Parameter(torch.zeros(n, n))  # score of tag i followed by tag j
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        allowed, start = bio_allowed(tags)
        zero = torch.tensor(0.0)
        self.register_buffer("trans_penalty", torch.where(allowed, zero, FORBIDDEN), persistent=False)
        self.register_buffer("start_penalty", torch.where(start, zero, FORBIDDEN), persistent=False)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transitions + self.trans_penalty, self.start + self.start_penalty

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each sentence's gold tags: [B]."""
        trans, start = self._scores()
        b, t, _ = emissions.shape
        rows = torch.arange(b, device=emissions.device)
        maskf = mask.to(emissions.dtype)
        # Gold path score.
        gold = start[tags[:, 0]] + emissions[:, 0].gather(1, tags[:, :1]).squeeze(1)
        if t > 1:
            step = trans[tags[:, :-1], tags[:, 1:]] + emissions[:, 1:].gather(2, tags[:, 1:, None]).squeeze(2)
            gold = gold + (step * maskf[:, 1:]).sum(1)
        last = tags[rows, mask.sum(1) - 1]
        gold = gold + self.end[last]
        return self._log_partition(emissions, mask, trans, start) - gold

    def soft_nll(self, emissions: torch.Tensor, tags: torch.Tensor, pairs: torch.Tensor, mask: torch.Tensor
                 ) -> torch.Tensor:
        """Cross-entropy [B] from a distribution over tag sequences, given by its expected counts
        (tags [B, T, K]: P(y_t = k); pairs [B, K, K]: expected i -> j transitions), to the CRF's.
        One-hot counts of the gold tags give :meth:`nll` (model.distillation)."""
        trans, start = self._scores()
        rows = torch.arange(len(emissions), device=emissions.device)
        last = tags[rows, mask.sum(1) - 1]
        expected = (tags * emissions).sum((1, 2)) + (pairs * trans).sum((1, 2))
        expected = expected + tags[:, 0] @ start + last @ self.end
        return self._log_partition(emissions, mask, trans, start) - expected

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor, trans: torch.Tensor,
                       start: torch.Tensor) -> torch.Tensor:
        """log Z [B]: the forward algorithm in log space."""
        alpha = start + emissions[:, 0]
        for i in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, i]
            alpha = torch.where(mask[:, i, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids [B, T]; positions past a sentence's end hold 0."""
        trans, start = self._scores()
        b, t, _ = emissions.shape
        score = start + emissions[:, 0]
        history = []
        for i in range(1, t):
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            score = torch.where(mask[:, i, None], best + emissions[:, i], score)
            history.append(idx)
        current = (score + self.end).argmax(dim=1)
        path = [current]
        for i in range(t - 1, 0, -1):
            prev = history[i - 1].gather(1, current[:, None]).squeeze(1)
            current = torch.where(mask[:, i], prev, current)
            path.append(current)
        path.reverse()
        return torch.stack(path, dim=1) * mask
