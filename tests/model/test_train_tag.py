from __future__ import annotations

import json
import os
import threading

import pytest
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from model import Tagger
from model.checkpoint import (ModelLoadError, load_model_dir, read_calibration, read_metrics, save_model_dir,
                              weights_sha256, write_calibration)
from model.corpus import read_corpus
from model.evaluation import evaluate
from model.network import BiLSTMTagger, ModelConfig
from model.spans import bio_spans
from model.train import train
from model.train_config import preset_config
from tests.conftest import TINY

DEVICE = os.environ.get("NERQ_TEST_DEVICE", "cpu")  # bench/gpu_check.sh runs these tests on cuda too
PRECISIONS = ["fp32", "bf16"] + (["int8"] if DEVICE == "cpu" else [])


def seqeval_f1(gold: list[list[str]], pred: list[list[str]], strict: bool) -> float:
    """F1 in percent, straight from seqeval (not through model.evaluation)."""
    return 100 * f1_score(gold, pred, **({"mode": "strict", "scheme": IOB2} if strict else {}))


def test_model_directory_contents(tiny_model, test_file):
    names = sorted(p.name for p in tiny_model.iterdir())
    assert names == ["calibration.json", "config.json", "metrics.json", "model.safetensors", "vocab.json"]
    # The score temperature was fit on dev by the model before any refit, for these weights.
    calibration = read_calibration(tiny_model)
    assert 0.25 <= calibration["temperature"] <= 8.0 and calibration["fit_on"].startswith("dev")
    assert calibration["weights_sha256"] == weights_sha256(tiny_model)
    assert Tagger.load(tiny_model, "cpu").temperature == calibration["temperature"]
    assert not [p for p in tiny_model.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["crf"] is True and config["tags"][0] == "O" and len(config["tags"]) == 25
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    for split in ("dev", "test"):
        for mode in ("default", "strict"):
            scores = metrics[split][mode]
            p, r = scores["precision"], scores["recall"]
            assert scores["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
        assert len(metrics[split]["default"]["per_label"]) == 12
    # The saved test scores are those of the saved weights: tag the test set again and score it.
    sentences = read_corpus(test_file)
    gold, pred = [s.tags for s in sentences], Tagger.load(tiny_model, "cpu").tag([s.tokens for s in sentences])
    for mode, strict in (("default", False), ("strict", True)):
        assert metrics["test"][mode]["f1"] == pytest.approx(seqeval_f1(gold, pred, strict), abs=1e-9)
    assert len(metrics["corpus"]["train_sha256"]) == 64 and metrics["training_seconds"] > 0
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["train_config"]["hidden"] == TINY["hidden"]
    # How it decodes was chosen on dev, before the refit, and travels in config.json.
    decoding = metrics["decoding"]
    assert list(decoding["dev_f1"]) == ["viterbi", "0.3", "0.35", "0.4", "0.45", "0.5", "0.55", "0.6"]
    chosen = "viterbi" if decoding["threshold"] is None else str(decoding["threshold"])
    assert decoding["dev_f1"][chosen] == max(decoding["dev_f1"].values())
    assert config["span_threshold"] == decoding["threshold"]


def test_weights_are_plain_safetensors(tiny_model):
    raw = (tiny_model / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "crf.transitions" in header and "lstm.weight_hh_l0" in header


def test_roundtrip_tags_match_saved_scores(tiny_model, test_file):
    tagger = Tagger.load(tiny_model, "cpu", precision="fp32")  # training scores in fp32
    sentences = read_corpus(test_file)
    result = evaluate(tagger, sentences)
    saved = json.loads((tiny_model / "metrics.json").read_text())["test"]
    assert result["default"]["f1"] == pytest.approx(saved["default"]["f1"], abs=1e-9)
    assert result["strict"]["f1"] == pytest.approx(saved["strict"]["f1"], abs=1e-9)


# Viterbi, and span decoding below 0.5 (overlaps settled) and at it.
@pytest.mark.parametrize("model,threshold", [("tiny_model", None), ("sharp_model", 0.3), ("sharp_model", 0.5)])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_tags_do_not_depend_on_batch_size_or_padding(request, test_file, precision, model, threshold):
    tagger = Tagger.load(request.getfixturevalue(model), DEVICE, precision=precision)
    tagger.model.config.span_threshold = threshold
    assert tagger.precision == precision
    sentences = [s.tokens for s in read_corpus(test_file)]
    reference = tagger.tag(sentences, batch_size=256)
    assert len(reference) == 1953 and sum(len(bio_spans(t)) for t in reference) > 1000
    assert [len(t) for t in reference] == [len(s) for s in sentences]
    for batch_size, max_tokens in ((1, None), (7, None), (256, 300), (1953, 10**6)):
        assert tagger.tag(sentences, batch_size=batch_size, max_tokens=max_tokens) == reference
    # A sentence tagged alone, or among longer neighbours, gets the same tags.
    assert tagger.tag([sentences[5]]) == [reference[5]]
    assert tagger.tag([max(sentences, key=len), sentences[5]])[1] == reference[5]
    tagger.step_cost = None  # batches filled in turn rather than cut at least estimated cost
    assert tagger.tag(sentences, batch_size=256) == reference


def scored(tagger: Tagger, encoded, **budget) -> tuple[list, list]:
    """(tags, span scores) of every sentence in input order, through iter_scored."""
    tags, scores = [None] * len(encoded), [None] * len(encoded)
    for indices, batch_tags, batch_scores in tagger.iter_scored(encoded, **budget):
        for i, t, s in zip(indices, batch_tags, batch_scores):
            tags[i], scores[i] = t, s
    return tags, scores


@pytest.mark.parametrize("precision", PRECISIONS)
def test_scores_do_not_depend_on_batch_size_and_leave_tags_unchanged(tiny_model, test_file, precision):
    tagger = Tagger.load(tiny_model, DEVICE, precision=precision)
    # Raw marginals: the tiny model's fitted temperature sits at the search's bound (0.25), which
    # would multiply bf16's rounding fourfold; a temperature never changes tags (tested below).
    tagger.temperature = 1.0
    sentences = [s.tokens for s in read_corpus(test_file)]
    encoded = tagger.encode(sentences)
    reference_tags, reference = scored(tagger, encoded, batch_size=256)
    assert reference_tags == tagger.tag(sentences, batch_size=256)  # the same pass, the same tags
    assert [len(s) for s in reference] == [len(bio_spans(t)) for t in reference_tags]
    flat = [p for s in reference for p in s]
    # A decoded span always has some probability; the tiny model is too weak for high ones.
    assert flat and all(0.0 <= p <= 1.0 for p in flat) and len(set(flat)) > 1
    for batch_size, max_tokens in ((1, None), (7, None), (256, 300), (1953, 10**6)):
        tags, scores = scored(tagger, encoded, batch_size=batch_size, max_tokens=max_tokens)
        assert tags == reference_tags  # exactly; scores to float rounding (bf16/int8 kernels by batch shape)
        assert [pytest.approx(s, rel=1e-4, abs=1e-12) for s in reference] == scores


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "training network"])
def test_batches_run_on_several_threads_give_the_same_tags_and_scores(tiny_model, test_file, precision):
    """With n torch threads a CPU tagger runs n batches at once, each on one thread: the same
    tags and scores as on one thread, in input order, and the thread count is n again after.
    A single batch keeps the caller's thread (and all of torch's). (On CPU whatever
    NERQ_TEST_DEVICE says: CUDA runs one batch at a time.) The training network is what
    bin/train evaluates dev with."""
    if precision == "training network":
        tagger = Tagger(*load_model_dir(tiny_model, torch.device("cpu")), cache_chars=False)
    else:
        tagger = Tagger.load(tiny_model, "cpu", precision=precision)
    encoded = tagger.encode([s.tokens for s in read_corpus(test_file)])
    scoring_threads = set()

    def spans_of(_: int, tags: list[str]) -> list:
        scoring_threads.add(threading.current_thread().name)
        return bio_spans(tags)

    def scored_on_threads(threads: int, sentences: int = len(encoded)) -> tuple[list, list]:
        torch.set_num_threads(threads)
        scoring_threads.clear()
        tags, scores = [None] * sentences, [None] * sentences
        for indices, batch_tags, batch_scores in tagger.iter_scored(encoded[:sentences], spans_of, batch_size=64):
            for i, t, p in zip(indices, batch_tags, batch_scores):
                tags[i], scores[i] = t, p
        assert torch.get_num_threads() == threads
        return tags, scores

    before = torch.get_num_threads()
    try:
        reference = scored_on_threads(1)
        assert scoring_threads == {threading.current_thread().name}
        assert scored_on_threads(3) == reference
        assert scoring_threads and all(name.startswith("nerq-batch") for name in scoring_threads)
        tags, scores = scored_on_threads(3, sentences=1)  # one batch, of another shape: scores to rounding
        assert tags == reference[0][:1] and scores == [pytest.approx(reference[1][0], rel=1e-4, abs=1e-12)]
        assert scoring_threads == {threading.current_thread().name}
    finally:
        torch.set_num_threads(before)


def test_a_temperature_changes_scores_never_tags(tiny_model, test_file):
    sentences = [s.tokens for s in read_corpus(test_file)][:300]
    tagger = Tagger.load(tiny_model, "cpu")
    encoded = tagger.encode(sentences)
    tags, raw = scored(tagger, encoded)
    tagger.temperature = 2.0
    softer_tags, softer = scored(tagger, encoded)
    assert softer_tags == tags
    flat_raw, flat_softer = [p for s in raw for p in s], [p for s in softer for p in s]
    # A higher temperature flattens the distribution: confident spans lose confidence.
    assert all(b < a for a, b in zip(flat_raw, flat_softer) if a > 0.9)


def test_calibration_file_is_bound_to_its_weights(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_model, copy)
    (copy / "calibration.json").unlink()  # the one training fit
    assert Tagger.load(copy, "cpu").temperature == 1.0
    write_calibration(copy, 1.5, {"fit_on": "dev"})
    assert Tagger.load(copy, "cpu").temperature == 1.5
    record = json.loads((copy / "calibration.json").read_text())
    (copy / "calibration.json").write_text(json.dumps({**record, "weights_sha256": "0" * 64}))
    with pytest.raises(ModelLoadError, match="fit for other weights"):
        Tagger.load(copy, "cpu")


def test_a_model_without_crf_scores_with_softmax(tiny_model, test_file):
    model, vocab = load_model_dir(tiny_model, torch.device("cpu"))
    torch.manual_seed(0)
    config = ModelConfig.from_dict({**model.config.to_dict(), "crf": False})
    tagger = Tagger(BiLSTMTagger(config), vocab)
    sentences = [s.tokens for s in read_corpus(test_file)][:200]
    encoded = tagger.encode(sentences)
    tags, scores = scored(tagger, encoded, batch_size=64)
    assert tags == tagger.tag(sentences)
    small_tags, small_scores = scored(tagger, encoded, batch_size=3)
    assert small_tags == tags  # softmax scores in bf16 batches agree to float rounding, tags exactly
    assert [pytest.approx(s, abs=1e-6) for s in scores] == small_scores
    assert all(0.0 <= p <= 1.0 for s in scores for p in s) and sum(map(len, scores)) > 0


def test_char_feature_cache_gives_identical_tags(tiny_model, test_file):
    model, vocab = load_model_dir(tiny_model, torch.device("cpu"))
    sentences = [s.tokens for s in read_corpus(test_file)] + [["qwxzy", "unseenword", "jaws"]]
    cached = Tagger(model, vocab, precision="fp32").tag(sentences)
    assert model.char_table is not None
    model.train()
    assert model.char_table is None  # training invalidates the cache
    assert Tagger(model, vocab, cache_chars=False).tag(sentences) == cached


def test_tag_keeps_input_order_and_empty_sentences(tiny_model):
    tagger = Tagger.load(tiny_model, "cpu")
    out = tagger.tag([["a", "long", "query", "about", "sharks"], [], ["jaws"]], batch_size=1)
    assert [len(t) for t in out] == [5, 0, 1]


def test_tagging_imports_no_training_code(tiny_model):
    import subprocess
    import sys

    code = (
        "import sys; from model import Tagger; t = Tagger.load(sys.argv[1], 'cpu'); t.tag([['jaws']]);"
        "bad = [m for m in sys.modules if m in ('model.train', 'model.fit', 'model.evaluation', 'seqeval')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tiny_model)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_same_weights_save_to_the_same_bytes(tiny_model, tmp_path):
    """A model version is its weights' sha256: saving the same model twice must not make two."""
    model, vocab = load_model_dir(tiny_model, torch.device("cpu"))
    saved = [save_model_dir(tmp_path / f"copy{i}", model, vocab, read_metrics(tiny_model)) for i in range(4)]
    assert len({weights_sha256(d) for d in saved}) == 1
    assert load_model_dir(saved[0], torch.device("cpu"))[1].tags == vocab.tags


def test_broken_model_dirs_fail_clearly(tiny_model, tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        load_model_dir(tmp_path / "missing", torch.device("cpu"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.json"):
        (broken / name).write_bytes((tiny_model / name).read_bytes())
    with pytest.raises(ModelLoadError, match="missing model.safetensors"):
        load_model_dir(broken, torch.device("cpu"))
    (broken / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="model.safetensors: corrupt weights file"):
        load_model_dir(broken, torch.device("cpu"))
    (broken / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    assert load_model_dir(broken, torch.device("cpu"))[1].tags  # whole again: it loads
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "dropout": 0.1}))  # same shapes, other file
    with pytest.raises(ModelLoadError, match="config.json: changed since the model was saved"):
        load_model_dir(broken, torch.device("cpu"))


def test_pretrained_embeddings_are_used(small_data_dir, tmp_path, capsys):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("4 4\nMovie 1 2 3 4\nthe 0.5 0.5 0.5 0.5\nfilm 1 1 1 1\nzzzunseen 9 9 9 9\n")
    cfg = preset_config(
        "default", data_dir=str(small_data_dir), out=str(tmp_path / "m"), embeddings=str(vectors),
        **{**TINY, "epochs": 1},
    )
    out, metrics = train(cfg)
    model, vocab = load_model_dir(out, torch.device("cpu"))
    assert model.config.word_dim == 4
    assert metrics["train_config"]["embeddings"] == str(vectors)
    assert vocab.word_id("zzzunseen") == 1  # only our words are taken from the file
    assert "pretrained vectors for 3 of" in capsys.readouterr().out  # "Movie" matched lowercased


def test_embeddings_file_errors_name_the_line(small_data_dir, tmp_path):
    from model.corpus import CorpusFormatError

    vectors = tmp_path / "bad.txt"
    vectors.write_text("movie 1 2 3\nfilm 1 2\n")
    cfg = preset_config("default", data_dir=str(small_data_dir), out=str(tmp_path / "m"),
                        embeddings=str(vectors), **TINY)
    with pytest.raises(CorpusFormatError, match=r"bad.txt:2: 2 numbers, expected 3"):
        train(cfg)


def test_reference_preset_is_the_notebook_model():
    cfg = preset_config("reference")
    assert (cfg.word_dim, cfg.hidden, cfg.char_dim, cfg.crf) == (200, 200, 0, False)
    assert (cfg.lr, cfg.lr_decay, cfg.clip, cfg.batch_size, cfg.epochs, cfg.dropout) == (
        0.005, 1.414, 1.0, 32, 5, 0.5)


def test_loading_a_precision_this_cpu_lacks_warns_and_still_runs_it(tiny_model, monkeypatch, caplog):
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: False)  # as on an AVX2-only CPU
    caplog.set_level("INFO", logger="model.tagger")
    assert Tagger.load(tiny_model, "cpu", precision="fp32").precision == "fp32"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert Tagger.load(tiny_model, "cpu", precision="int8").precision == "int8"  # an explicit choice holds
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.name for r in warnings] == ["model.tagger"] and "precision int8" in warnings[0].getMessage()
