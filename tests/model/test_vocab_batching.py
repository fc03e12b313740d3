from __future__ import annotations

import random

import pytest
import torch

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


@pytest.mark.parametrize("batch_size,max_tokens", [(1, None), (3, None), (64, 20), (64, 1)])
def test_plan_covers_every_index_once_within_limits(batch_size, max_tokens):
    lengths = [random.Random(i).randint(1, 15) for i in range(50)]
    plan = plan_batches(lengths, batch_size, max_tokens)
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


def test_collate_pads_and_masks():
    v = Vocab.build(SENTS)
    long_word = "x" * (MAX_WORD_CHARS + 10)
    b = collate([encode(v, ["steve", long_word], ["O", "O"]), encode(v, ["jaws"], ["B-Plot"])], [1, 0])
    assert b.indices == [1, 0]
    assert b.lengths.tolist() == [1, 2]
    assert b.mask.tolist() == [[True, False], [True, True]]
    assert b.words[0, 1].item() == PAD_ID and b.words[1, 1].item() == UNK_ID
    assert b.chars.shape == (2, 2, MAX_WORD_CHARS)
    assert (b.chars[0, 1] == PAD_ID).all()
    assert b.tags is not None and b.tags[0, 0].item() == v.tag_id("B-Plot")
    assert int(b.mask.sum()) == int(b.lengths.sum()) == 3


def test_iter_batches_yields_tensors():
    v = Vocab.build(SENTS)
    enc = [encode(v, t, g) for t, g in SENTS]
    batches = list(iter_batches(enc, batch_size=1))
    assert [b.words.shape[0] for b in batches] == [1, 1]
    assert all(b.words.dtype == torch.long for b in batches)


def test_remembered_token_ids_are_the_ids_and_stay_bounded(monkeypatch):
    """Vocab.token_ids remembers tokens (a bulk job's repeat): the same ids as computing them
    afresh, also for unknown words and after the memory was cleared for being full."""
    import model.vocab

    vocab = Vocab.build([(["Jaws", "shark"], ["B-Title", "O"])])
    monkeypatch.setattr(model.vocab, "_TOKEN_CACHE_SIZE", 3)
    tokens = ["jaws", "JAWS", "shark", "sharks", "jaws", "zebra", "shark", "x" * (MAX_WORD_CHARS + 5)]
    for token in tokens * 2:
        assert vocab.token_ids(token) == (vocab.word_id(token), vocab.char_ids(token))
        assert len(vocab._token_ids) <= 3
    long = encode(vocab, tokens)
    assert long.chars.shape == (len(tokens), MAX_WORD_CHARS)
    assert long.words.tolist() == [vocab.word_id(t) for t in tokens]
    assert long.chars[1].tolist()[:4] == vocab.char_ids("JAWS") and long.chars[1, 4:].tolist() == [PAD_ID] * (MAX_WORD_CHARS - 4)
