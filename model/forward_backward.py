"""Forward-backward over a linear-chain CRF, batched one time step at a time like Viterbi.

Both directions run as one recursion in probability space: the backward one on each sentence
reversed within its own length, so every sentence starts at step 0 and padding only ever comes
after it. Each step is one batched matrix product by exp(transitions), one product with the
step's max-shifted emissions and a normalisation, whose logs are kept; nothing is turned back
into log space but what a caller asks for. A sentence whose scaling underflows (emissions
hundreds apart, with nothing the CRF allows left likely) is redone in log space.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .crf import CRF
from .reversal import reverse_within

_SMALLEST_NORM = 1e-30  # a step's scaled total below this has lost precision to underflow


class Potentials(NamedTuple):
    """A CRF's log-potentials, BIO's forbidden moves already penalised."""

    trans: torch.Tensor  # [K, K]: tag i followed by tag j
    start: torch.Tensor  # [K]
    end: torch.Tensor  # [K]


def crf_potentials(crf: CRF) -> Potentials:
    trans, start = crf._scores()
    return Potentials(trans, start, crf.end)


class Recursions(NamedTuple):
    """log alpha[b, t] = log prob[t, 0, b] + log_scale[t, 0, b]: every prefix ending in each tag
    at t, its emission included. Direction 1 holds gamma = beta + emissions at the reversed
    position length-1-t, beta scoring every suffix after t, the end score included. Rows that
    underflowed read their log values from ``exact`` instead."""

    prob: torch.Tensor  # [T, 2, B, K], each row summing to 1
    log_scale: torch.Tensor  # [T, 2, B]
    lengths: torch.Tensor  # [B]
    underflow: torch.Tensor  # [B]
    exact: torch.Tensor | None = None  # [T, 2, B, K] log values, where underflow

    def _at(self, direction: int, row: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(self.prob.dtype).tiny
        prob = self.prob[step, direction, row].clamp(min=tiny)
        scaled = torch.log(prob) + self.log_scale[step, direction, row, None]
        if self.exact is None:
            return scaled
        return torch.where(self.underflow[row, None], self.exact[step, direction, row], scaled)

    def log_alpha(self, row: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[N, K] for sentence rows and positions t [N]."""
        return self._at(0, row, t)

    def log_gamma(self, row: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[N, K]; a position at or past the sentence's end gives finite values of no meaning."""
        return self._at(1, row, (self.lengths[row] - 1 - t).clamp(min=0))

    def log_z(self, pot: Potentials) -> torch.Tensor:
        rows = torch.arange(len(self.lengths), device=self.lengths.device)
        return torch.logsumexp(self.log_alpha(rows, (self.lengths - 1).clamp(min=0)) + pot.end, dim=1)


def _scaled(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials) -> Recursions:
    """The recursions, flagging the rows that underflowed."""
    lengths = mask.sum(1)
    top = emissions.amax(2).masked_fill(~mask, 0.0)  # [B, T]
    x = torch.exp(emissions - top[..., None]).masked_fill(~mask[..., None], 1.0)  # padding: finite, unread
    xs = torch.stack([x, reverse_within(x, lengths)]).permute(2, 0, 1, 3).contiguous()  # [T, 2, B, K]
    forward = torch.exp(pot.trans)
    weights = torch.stack([forward, forward.T])  # gamma_t = (gamma_{t+1} @ E^T) * x_t
    state = torch.stack([pot.start, pot.end]).exp()[:, None] * xs[0]
    states, norms = [], []
    for i in range(emissions.shape[1]):
        if i:
            state = torch.bmm(state, weights).mul_(xs[i])
        norm = state.sum(2, keepdim=True)
        states.append(state.div_(norm))
        norms.append(norm)
    norm = torch.stack(norms).squeeze(3)  # [T, 2, B]
    underflow = ((norm < _SMALLEST_NORM) & mask.T[:, None]).any(0).any(0)
    shift = torch.log(norm) + torch.stack([top, reverse_within(top, lengths)], 1).permute(2, 1, 0)
    return Recursions(torch.stack(states), shift.cumsum(0), lengths, underflow)


def _log_space(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials) -> tuple[torch.Tensor, torch.Tensor]:
    """(log alpha, log beta) [B, T, K], a logsumexp at every step: slower, safe for any input."""
    b, t, _ = emissions.shape
    alpha = [pot.start + emissions[:, 0]]
    for i in range(1, t):
        nxt = torch.logsumexp(alpha[-1][:, :, None] + pot.trans, dim=1) + emissions[:, i]
        alpha.append(torch.where(mask[:, i, None], nxt, alpha[-1]))
    beta = [pot.end.expand(b, -1)]
    for i in range(t - 2, -1, -1):
        nxt = torch.logsumexp(pot.trans + (emissions[:, i + 1] + beta[-1])[:, None, :], dim=2)
        beta.append(torch.where(mask[:, i + 1, None], nxt, beta[-1]))
    beta.reverse()
    return torch.stack(alpha, 1), torch.stack(beta, 1)


def recursions(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials) -> Recursions:
    """Forward-backward of emissions [B, T, K] under mask [B, T]."""
    rec = _scaled(emissions, mask, pot)
    if not rec.underflow.any():
        return rec
    em, lengths = emissions[rec.underflow], rec.lengths[rec.underflow]
    alpha, beta = _log_space(em, mask[rec.underflow], pot)
    exact = torch.zeros_like(rec.prob)
    exact[:, 0, rec.underflow] = alpha.transpose(0, 1)
    exact[:, 1, rec.underflow] = reverse_within(beta + em, lengths).transpose(0, 1)
    return rec._replace(exact=exact)


def token_marginals(emissions: torch.Tensor, mask: torch.Tensor, pot: Potentials,
                    rec: Recursions | None = None) -> torch.Tensor:
    """P(y_t = k) [B, T, K]; rows past a sentence's end are 0. ``rec``: these emissions'
    recursions, when the caller has them already."""
    rec = recursions(emissions, mask, pot) if rec is None else rec
    b, t, _ = emissions.shape
    rows = torch.arange(b, device=emissions.device).repeat_interleave(t)
    steps = torch.arange(t, device=emissions.device).repeat(b)
    log_beta = rec.log_gamma(rows, steps) - emissions.reshape(b * t, -1)
    log_p = rec.log_alpha(rows, steps) + log_beta - rec.log_z(pot).repeat_interleave(t)[:, None]
    # Past a sentence's end the values mean nothing and may overflow: 0 there, never inf * 0.
    return torch.where(mask[..., None], torch.exp(log_p).reshape(b, t, -1), 0.0)
