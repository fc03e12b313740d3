from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch

from model import batching
from model.batching import MAX_WORD_CHARS, collate, encode, iter_batches, plan_batches
from model.vocab import PAD_ID, UNK_ID, Vocab

SENTS = [(["Steve", "McQueen", "films"], ["B-Actor", "I-Actor", "O"]), (["jaws"], ["B-Plot"])]


def test_vocab_build_roundtrip(tmp_path):
    v = Vocab.build(SENTS)
    assert v.words[:2] == ["<PAD>", "<UNK>"] and "mcqueen" in v.words
    assert v.tags == ["O", "B-Actor", "I-Actor", "B-Plot", "I-Plot"]
    assert v.word_id("STEVE") == v.word_id("steve") != UNK_ID
    assert v.word_id("unseen") == UNK_ID and v.char_ids("é") == [UNK_ID]
    v.save(tmp_path / "vocab.json")
    again = Vocab.load(tmp_path / "vocab.json")
    assert again == v and again.word_id("films") == v.word_id("films")
    with pytest.raises(KeyError, match="B-Quote"):
        v.tag_id("B-Quote")


@pytest.mark.parametrize("step_cost", [None, 0.0, 32.0])
@pytest.mark.parametrize("batch_size,max_tokens", [(1, None), (3, None), (64, 20), (64, 1)])
def test_plan_covers_every_index_once_within_limits(batch_size, max_tokens, step_cost):
    lengths = [random.Random(i).randint(1, 15) for i in range(50)]
    plan = plan_batches(lengths, batch_size, max_tokens, step_cost=step_cost)
    assert sorted(i for b in plan for i in b) == list(range(50))
    for b in plan:
        assert len(b) <= batch_size
        if max_tokens and len(b) > 1:
            assert len(b) * max(lengths[i] for i in b) <= max_tokens
    shuffled = plan_batches(lengths, batch_size, max_tokens, random.Random(0))
    assert sorted(i for b in shuffled for i in b) == list(range(50))


def test_deterministic_plan_groups_by_length():
    lengths = [5, 1, 5, 1, 9]
    assert plan_batches(lengths, 2) == [[1, 3], [0, 2], [4]]


def plan_cost(plan: list[list[int]], lengths: list[int], step_cost: float) -> float:
    return sum(max(lengths[i] for i in b) * (step_cost + len(b)) for b in plan)


def test_least_cost_plan_gives_a_long_sentence_its_own_batch():
    lengths = [10] * 127 + [60]
    assert plan_batches(lengths, 128) == [list(range(128))]  # filled in turn: 128 rows of 60 steps
    assert plan_batches(lengths, 128, step_cost=32.0) == [list(range(127)), [127]]
    # Where a time step's fixed cost outweighs the padding, one batch is still the cheaper plan.
    assert plan_batches(lengths, 128, step_cost=10_000.0) == [list(range(128))]


@pytest.mark.parametrize("seed", range(5))
def test_least_cost_plan_costs_no_more_than_filling_batches_in_turn(seed):
    rng = random.Random(seed)
    lengths = [min(int(rng.lognormvariate(2.9, 0.35)), 80) for _ in range(1000)]
    greedy = plan_batches(lengths, 128, 8192)
    for step_cost in (0.0, 8.0, 32.0, 128.0):
        least = plan_batches(lengths, 128, 8192, step_cost=step_cost)
        assert plan_cost(least, lengths, step_cost) <= plan_cost(greedy, lengths, step_cost)
    least = plan_batches(lengths, 128, 8192, step_cost=32.0)
    assert plan_cost(least, lengths, 0.0) < plan_cost(greedy, lengths, 0.0)  # fewer padded tokens


def cheapest_cost(lengths: list[int], batch_size: int, max_tokens: int, step_cost: float) -> float:
    """Brute force over every way to cut the sorted lengths into runs within both caps."""
    ordered = sorted(lengths)
    best = math.inf
    for cuts in itertools.product((False, True), repeat=len(ordered) - 1):
        runs, run = [], [ordered[0]]
        for length, cut in zip(ordered[1:], cuts):
            runs, run = (runs + [run], [length]) if cut else (runs, run + [length])
        runs.append(run)
        if all(len(r) <= batch_size and (len(r) == 1 or max(r) * len(r) <= max_tokens) for r in runs):
            best = min(best, sum(max(r) * (step_cost + len(r)) for r in runs))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_least_cost_plan_is_the_cheapest_within_the_caps(seed, monkeypatch):
    monkeypatch.setattr(batching, "REPLAN_ABOVE_PADDING", 0.0)  # search even where little is padded
    rng = random.Random(seed)
    lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 9))]
    batch_size, max_tokens, step_cost = rng.randint(1, 5), rng.randint(1, 40), rng.choice([0.0, 1.0, 3.0, 32.0])
    plan = plan_batches(lengths, batch_size, max_tokens, step_cost=step_cost)
    assert plan_cost(plan, lengths, step_cost) == cheapest_cost(lengths, batch_size, max_tokens, step_cost)


def test_a_plan_that_pads_little_is_kept(monkeypatch):
    lengths = [100] * 100 + [101]  # one batch pads 1% of its slots
    assert plan_batches(lengths, 128, step_cost=0.0) == [list(range(101))]
    monkeypatch.setattr(batching, "REPLAN_ABOVE_PADDING", 0.0)
    assert plan_batches(lengths, 128, step_cost=0.0) == [list(range(100)), [100]]  # no padding at all


def test_step_cost_is_for_deterministic_plans_only():
    with pytest.raises(ValueError, match="step_cost"):
        plan_batches([3, 1, 2], 2, step_cost=1.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="step_cost"):
        plan_batches([3, 1, 2], 2, step_cost=-1.0)


def test_collate_pads_and_masks():
    v = Vocab.build(SENTS)
    long_word = "x" * (MAX_WORD_CHARS + 10)
    b = collate(encode(v, [["steve", long_word], ["jaws"]], [["O", "O"], ["B-Plot"]]), [1, 0])
    assert b.indices == [1, 0]
    assert b.lengths.tolist() == [1, 2]
    assert b.mask.tolist() == [[True, False], [True, True]]
    assert b.words[0, 1].item() == PAD_ID and b.words[1, 1].item() == UNK_ID
    assert b.chars.shape == (2, 2, MAX_WORD_CHARS)
    assert (b.chars[0, 1] == PAD_ID).all()
    assert b.tags is not None and b.tags[0, 0].item() == v.tag_id("B-Plot")
    assert int(b.mask.sum()) == int(b.lengths.sum()) == 3


def test_each_sentence_needs_one_tag_per_token():
    v = Vocab.build(SENTS)
    with pytest.raises(ValueError, match="one tag per token"):
        encode(v, [["jaws"], ["steve", "films"]], [["B-Plot", "O"], ["O"]])  # the totals agree


def test_iter_batches_yields_tensors():
    v = Vocab.build(SENTS)
    enc = encode(v, [t for t, _ in SENTS], [g for _, g in SENTS])
    batches = list(iter_batches(enc, batch_size=1))
    assert [b.words.shape[0] for b in batches] == [1, 1]
    assert all(b.words.dtype == torch.long for b in batches)


def test_remembered_token_rows_are_the_ids_and_stay_bounded(monkeypatch):
    """Vocab.token_rows remembers tokens (a bulk job's repeat): the same ids as computing them
    afresh, also for unknown words, for a token twice in one call and after the memory was
    cleared for being full (tables handed out before stay as they were)."""
    import model.vocab

    vocab = Vocab.build([(["Jaws", "shark"], ["B-Title", "O"])])
    monkeypatch.setattr(model.vocab, "_TOKEN_CACHE_SIZE", 3)
    tokens = ["jaws", "JAWS", "shark", "sharks", "jaws", "zebra", "shark", "x" * (MAX_WORD_CHARS + 5)]
    held = []
    for token in tokens * 2:
        table, rows = vocab.token_rows([token, token])
        chars = vocab.char_ids(token)[:MAX_WORD_CHARS]
        assert rows[0] == rows[1] and table[rows[0]].tolist() == [
            vocab.word_id(token), *chars, *[PAD_ID] * (MAX_WORD_CHARS - len(chars)), len(chars)]
        assert len(vocab._rows._row_of) <= 3
        held.append((table, rows[0], table[rows[0]].copy()))
    assert all((table[row] == row_then).all() for table, row, row_then in held)
    long = encode(vocab, [tokens])
    words, chars = long.sentence(0)
    assert chars.shape == (len(tokens), MAX_WORD_CHARS)
    assert words.tolist() == [vocab.word_id(t) for t in tokens]
    assert chars[1].tolist()[:4] == vocab.char_ids("JAWS") and chars[1, 4:].tolist() == [PAD_ID] * (MAX_WORD_CHARS - 4)
    words, chars = encode(vocab, [["jaws", "a"]]).sentence(0)
    assert chars.shape == (2, 4) and chars[1].tolist() == [*vocab.char_ids("a"), PAD_ID, PAD_ID, PAD_ID]
    assert len(encode(vocab, [])) == 0 and encode(vocab, [[]]).lengths.tolist() == [0]


def test_slices_of_encoded_sentences_batch_as_the_whole_does():
    v = Vocab.build(SENTS)
    sentences = [["steve", "jaws", "films"], ["jaws"], ["mcqueen", "x" * 30], ["films", "films"]]
    whole = encode(v, sentences)
    part = whole[1:3]
    assert len(part) == 2 and part.lengths.tolist() == [1, 2]
    got, want = collate(part, [1, 0]), collate(whole, [2, 1])
    assert got.indices == [1, 0] and got.tags is None
    assert all(torch.equal(getattr(got, f), getattr(want, f)) for f in ("words", "chars", "lengths", "mask"))
    with pytest.raises(ValueError, match="contiguous"):
        whole[::2]
