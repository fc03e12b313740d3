"""The one way sentences become padded tensors: training, bin/tag and the worker all use it.

Sentences are grouped by length so that little compute goes to padding, batches are capped both
in sentences and in padded tokens, and every batch remembers the input positions it holds so
callers can put results back in input order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .vocab import MAX_WORD_CHARS, PAD_ID, Vocab

# Below this share of padded token slots, filling batches in turn is kept: the least-cost search
# (about 3 us a sentence) would cost about what it saves (20,000 test queries sorted together pad 0.9%).
REPLAN_ABOVE_PADDING = 0.02


@dataclass
class Encoded:
    """One sentence as id arrays (no tensors yet: cheap to hold many)."""

    words: np.ndarray  # [L] int64
    chars: np.ndarray  # [L, longest word] int64, padded with PAD_ID
    tags: np.ndarray | None = None  # [L] int64

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class Batch:
    indices: list[int]  # positions of these sentences in the caller's list
    words: torch.Tensor  # [B, T] long
    chars: torch.Tensor  # [B, T, C] long
    lengths: torch.Tensor  # [B] long, on CPU (pack_padded_sequence wants it there)
    mask: torch.Tensor  # [B, T] bool
    tags: torch.Tensor | None  # [B, T] long, padded with 0

    def to(self, device: torch.device | str) -> Batch:
        """Copies to CUDA go through pinned memory, so they really are asynchronous."""
        pin = torch.device(device).type == "cuda"
        move = lambda t: None if t is None else (t.pin_memory() if pin else t).to(device, non_blocking=True)  # noqa: E731
        return Batch(
            self.indices, move(self.words), move(self.chars), self.lengths, move(self.mask), move(self.tags)
        )


def encode(vocab: Vocab, tokens: Sequence[str], tags: Sequence[str] | None = None) -> Encoded:
    rows = [vocab.token_row(t) for t in tokens]
    width = max(max((n for n, _ in rows), default=1), 1)
    table = np.frombuffer(b"".join(row for _, row in rows), dtype=np.int64).reshape(len(rows), MAX_WORD_CHARS + 1)
    return Encoded(
        table[:, 0].copy(),
        table[:, 1 : 1 + width].copy(),
        None if tags is None else np.array([vocab.tag_id(t) for t in tags], dtype=np.int64),
    )


def plan_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    rng: random.Random | None = None,
    step_cost: float | None = None,
) -> list[list[int]]:
    """Groups of indices of similar length, each with at most ``batch_size`` sentences and at
    most ``max_tokens`` padded tokens (a single longer sentence still gets its own batch).

    Without ``rng`` the plan is deterministic (sorted by length). With it, training gets
    shuffled buckets: sentences are shuffled, sorted by length inside pools of 50 batches,
    cut into batches, and the batches shuffled.

    ``step_cost`` (deterministic plans only): what one time step of a batch costs besides its
    sentences, in sentences' worth of work. The sorted sentences are then cut where the
    estimated cost, each batch's longest length x (step_cost + its size), is least, instead of
    filling each batch in turn: padding is traded against steps, so a few long sentences no
    longer pad a full batch to their length. Where filling in turn pads little
    (REPLAN_ABOVE_PADDING), its plan is kept.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if step_cost is not None and (rng is not None or not step_cost >= 0):
        raise ValueError("step_cost must be at least 0, and only for deterministic plans (no rng)")
    order = list(range(len(lengths)))
    if rng is None:
        pools = [sorted(order, key=lambda i: lengths[i])]
    else:
        rng.shuffle(order)
        size = batch_size * 50
        pools = [sorted(order[i : i + size], key=lambda i: lengths[i]) for i in range(0, len(order), size)]
    batches = [batch for pool in pools for batch in _cut(pool, lengths, batch_size, max_tokens)]
    if step_cost is not None and _padded_share(batches, lengths) > REPLAN_ABOVE_PADDING:
        return _cut_least_cost(pools[0], lengths, batch_size, max_tokens, step_cost)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _cut(pool: list[int], lengths: Sequence[int], batch_size: int, max_tokens: int | None) -> list[list[int]]:
    """Consecutive runs of a length-sorted pool, each within both caps."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in pool:
        longest_if_added = max(longest, lengths[i])
        too_many = len(current) >= batch_size
        too_big = max_tokens is not None and longest_if_added * (len(current) + 1) > max_tokens
        if current and (too_many or too_big):
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


def _padded_share(batches: list[list[int]], lengths: Sequence[int]) -> float:
    """The share of a plan's token slots that are padding."""
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - sum(lengths) / slots if slots else 0.0


def _cut_least_cost(
    pool: list[int], lengths: Sequence[int], batch_size: int, max_tokens: int | None, step_cost: float
) -> list[list[int]]:
    """Runs of a length-sorted pool within both caps, of least estimated cost (plan_batches):
    dynamic programming over where the last batch starts, one vectorised minimum per position."""
    sorted_lengths = np.array([lengths[i] for i in pool], dtype=np.float64)
    n = len(pool)
    best = np.zeros(n + 1)  # best[j]: least cost of the first j sentences
    start = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that plan starts
    positions = np.arange(n + 1, dtype=np.float64)
    for end in range(1, n + 1):
        longest = sorted_lengths[end - 1]
        fits = batch_size if max_tokens is None else max(1, int(max_tokens // max(longest, 1)))
        first = end - min(batch_size, fits, end)
        # cost of batch [k, end) = longest * (step_cost + end - k)
        options = best[first:end] - longest * positions[first:end]
        k = int(np.argmin(options))
        best[end] = options[k] + longest * (step_cost + end)
        start[end] = first + k
    batches, end = [], n
    while end > 0:
        batches.append(pool[start[end] : end])
        end = int(start[end])
    return batches[::-1]


def collate(encoded: Sequence[Encoded], indices: list[int]) -> Batch:
    """Pad the chosen sentences into one batch (on CPU)."""
    items = [encoded[i] for i in indices]
    n, t = len(items), max(len(e) for e in items)
    c = max(e.chars.shape[1] for e in items)
    words = np.full((n, t), PAD_ID, dtype=np.int64)
    chars = np.full((n, t, c), PAD_ID, dtype=np.int64)
    has_tags = items[0].tags is not None
    tags = np.zeros((n, t), dtype=np.int64) if has_tags else None
    for row, e in enumerate(items):
        words[row, : len(e)] = e.words
        chars[row, : len(e), : e.chars.shape[1]] = e.chars
        if tags is not None:
            tags[row, : len(e)] = e.tags
    lengths = torch.tensor([len(e) for e in items], dtype=torch.long)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    return Batch(
        indices,
        torch.from_numpy(words),
        torch.from_numpy(chars),
        lengths,
        mask,
        None if tags is None else torch.from_numpy(tags),
    )


def iter_batches(
    encoded: Sequence[Encoded],
    batch_size: int,
    max_tokens: int | None = None,
    rng: random.Random | None = None,
) -> Iterator[Batch]:
    for indices in plan_batches([len(e) for e in encoded], batch_size, max_tokens, rng):
        yield collate(encoded, indices)
