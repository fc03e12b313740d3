"""The one way sentences become padded tensors: training, bin/tag and the worker all use it.

Sentences are grouped by length so that little compute goes to padding, batches are capped both
in sentences and in padded tokens, and every batch remembers the input positions it holds so
callers can put results back in input order.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np
import torch

from .vocab import MAX_WORD_CHARS, PAD_ID, Vocab

# Below this share of padded token slots, filling batches in turn is kept: the least-cost search
# (about 3 us a sentence) would cost about what it saves (20,000 test queries sorted together pad 0.9%).
REPLAN_ABOVE_PADDING = 0.02


@dataclass
class Encoded:
    """Sentences as flat arrays, a row per word pointing into the vocabulary's token table
    (Vocab.token_rows): a chunk is encoded with one look-up a word, and each batch gathers its
    ids from the table by index, with no per-sentence or per-word arrays."""

    table: np.ndarray  # [R, 2 + MAX_WORD_CHARS] int64: word id, char ids padded with PAD_ID, char count; row 0 padding
    rows: np.ndarray  # [W + 1] int64: each word's row in table, then 0 (padding)
    offsets: np.ndarray  # [N + 1]: sentence i's words are rows[offsets[i]:offsets[i + 1]]
    tags: np.ndarray | None = None  # [W + 1] int64, then 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, index: slice) -> Encoded:
        """Sentences [start, stop) of these, sharing their arrays."""
        picked = range(len(self))[index]
        if picked.step != 1:
            raise ValueError("only contiguous slices of encoded sentences")
        return replace(self, offsets=self.offsets[picked.start : picked.stop + 1])

    def sentence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(word ids [L], char ids [L, longest word]) of sentence i alone."""
        ids = self._ids(self.rows[self.offsets[i] : self.offsets[i + 1]])
        return ids[..., 0], ids[..., 1:]

    def _ids(self, rows: np.ndarray) -> np.ndarray:
        """[..., 1 + longest word's chars (at least 1)]: word id, then char ids, of these table rows."""
        width = max(1, int(self.table[rows, -1].max(initial=0)))
        return self.table[:, : 1 + width][rows]


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


def encode(vocab: Vocab, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None) -> Encoded:
    """All sentences at once: their words' rows in the vocabulary's token table."""
    if tags is not None and any(len(t) != len(s) for s, t in zip(sentences, tags, strict=True)):
        raise ValueError("each sentence needs one tag per token")
    table, rows = vocab.token_rows(chain.from_iterable(sentences))
    offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sentences], out=offsets[1:])
    tag_ids = None if tags is None else np.array([*map(vocab.tag_id, chain.from_iterable(tags)), 0], dtype=np.int64)
    return Encoded(table, np.append(rows, 0), offsets, tag_ids)


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
    dynamic programming over where the last batch starts. The cost of batch [k, end) is
    longest * (step_cost + end - k), so the best start minimises best[k] - longest * k over the
    caps' window: a sliding-window minimum (a deque of candidates, rebuilt when longest
    changes), constant work a sentence."""
    sorted_lengths = [float(lengths[i]) for i in pool]
    n = len(pool)
    best = [0.0] * (n + 1)  # best[j]: least cost of the first j sentences
    start = [0] * (n + 1)  # where the last batch of that plan starts
    window: deque[int] = deque()  # candidate starts, their values rising (the first of equals kept)
    current = None
    for end in range(1, n + 1):
        longest = sorted_lengths[end - 1]
        fits = batch_size if max_tokens is None else max(1, int(max_tokens // max(longest, 1)))
        first = end - min(batch_size, fits, end)
        if longest != current:
            current, _ = longest, window.clear()
            candidates = range(first, end)
        else:
            candidates = range(end - 1, end)
        for k in candidates:
            value = best[k] - longest * k
            while window and best[window[-1]] - longest * window[-1] > value:
                window.pop()
            window.append(k)
        while window[0] < first:
            window.popleft()
        k = window[0]
        best[end] = (best[k] - longest * k) + longest * (step_cost + end)
        start[end] = k
    batches, end = [], n
    while end > 0:
        batches.append(pool[start[end] : end])
        end = start[end]
    return batches[::-1]


def collate(encoded: Encoded, indices: list[int]) -> Batch:
    """Pad the chosen sentences into one batch (on CPU), gathered from the token table."""
    picked = np.asarray(indices, dtype=np.int64)
    lengths = encoded.offsets[picked + 1] - encoded.offsets[picked]
    steps = np.arange(int(lengths.max()))
    inside = steps < lengths[:, None]
    at = np.where(inside, encoded.offsets[picked][:, None] + steps, len(encoded.rows) - 1)  # else the padding
    ids = encoded._ids(encoded.rows[at])  # [B, T, 1 + chars]
    return Batch(
        indices,
        torch.from_numpy(ids[:, :, 0]),
        torch.from_numpy(ids[:, :, 1:]),
        torch.from_numpy(lengths),
        torch.from_numpy(inside),
        None if encoded.tags is None else torch.from_numpy(encoded.tags[at]),
    )


def iter_batches(
    encoded: Sequence[Encoded],
    batch_size: int,
    max_tokens: int | None = None,
    rng: random.Random | None = None,
) -> Iterator[Batch]:
    for indices in plan_batches(encoded.lengths.tolist(), batch_size, max_tokens, rng):
        yield collate(encoded, indices)
