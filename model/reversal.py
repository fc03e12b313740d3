"""Each sentence read backwards within its own length, padding left where it is: how the
BiLSTM's backward direction (model.inference) and the CRF's backward recursion
(model.forward_backward) start every sentence at step 0 and never read padding before it.
Every reversal here is its own inverse."""

from __future__ import annotations

import torch


def reversed_positions(lengths: torch.Tensor, t_max: int) -> torch.Tensor:
    """[B, T]: position t of each sentence read backwards (L-1-t), padding left where it is."""
    t = torch.arange(t_max, device=lengths.device).unsqueeze(0)
    n = lengths.unsqueeze(1)
    return torch.where(t < n, n - 1 - t, t)


def reverse_time(x: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
    """x [T, B, ...] with each sentence read backwards (rev: reversed_positions)."""
    return x[rev.t(), torch.arange(x.shape[1], device=x.device).unsqueeze(0)]


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, ...] with each sentence read backwards."""
    rev = reversed_positions(lengths, x.shape[1])
    return x[torch.arange(x.shape[0], device=x.device)[:, None], rev]
