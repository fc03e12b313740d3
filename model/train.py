"""Training, the recipe: carve dev from train, fit (model.fit: the epoch loop with early stopping
on dev F1), choose the decoding and the score temperature on dev, refit on train+dev, save
(TrainConfig and presets: model.train_config)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from . import data
from .batching import encode
from .calibration import fit_temperature, reliability_figures, scored_entities
from .checkpoint import default_out_dir, point_current, save_model_dir, write_calibration
from .corpus import CorpusFormatError, Sentence, read_corpus
from .devices import resolve_device
from .distillation import SoftTargets, ensemble_targets
from .evaluation import evaluate
from .fit import fit
from .network import BiLSTMTagger
from .tagger import Tagger
from .train_config import TrainConfig
from .vocab import Vocab


def split_dev(sentences: Sequence[Sentence], fraction: float, seed: int) -> tuple[list, list]:
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_dev = int(round(len(order) * fraction))
    dev = set(order[:n_dev])
    return [s for i, s in enumerate(sentences) if i not in dev], [s for i, s in enumerate(sentences) if i in dev]


def _train_dev_split(cfg: TrainConfig, train_all: Sequence[Sentence], train_file: Path) -> tuple[list, list]:
    train_set, dev_set = split_dev(train_all, cfg.dev_fraction, cfg.seed)
    if not dev_set:
        raise CorpusFormatError(str(train_file), 0, "too few sentences to carve a dev split")
    unseen = {t for s in dev_set for t in s.tags} - {t for s in train_set for t in s.tags}
    if cfg.teachers and unseen:  # the teachers could give the refit no targets for these
        raise CorpusFormatError(str(train_file), 0, f"tags {sorted(unseen)} occur only in the dev split; "
                                "distillation needs every tag in the train split")
    return train_set, dev_set


def _refit(cfg: TrainConfig, train_all: Sequence[Sentence], device: torch.device, epochs: int,
           soft: Sequence[SoftTargets] | None) -> tuple[BiLSTMTagger, Vocab, list[dict]]:
    """A fresh model on train+dev for the epoch count that was best on dev."""
    print(f"refit: training on all {len(train_all)} sentences for {epochs} epochs "
          "(the best count on dev)", flush=True)
    vocab = Vocab.build((s.tokens, s.tags) for s in train_all)
    model, history, _ = fit(cfg, vocab, train_all, device, epochs, soft=soft)
    return model, vocab, history


def _dev_calibration(model: BiLSTMTagger, vocab: Vocab, dev_set: Sequence[Sentence]) -> dict:
    """A score temperature fit on dev by the early-stopped model, which never trained on it:
    the refit model sees dev, so nothing held out is left to fit it afterwards. The refit
    trains as long on 10% more data, and keeps this temperature (bench/bench_calibration.py
    measures the result on test). What it measured on dev, before and after the temperature,
    is kept for bin/report's reliability diagram (``dev``)."""
    tagger = Tagger(model, vocab, cache_chars=False)
    raw = reliability_figures(scored_entities(tagger, dev_set)[0], tagger.temperature)
    tagger.temperature = fit_temperature(tagger, dev_set)
    calibrated = reliability_figures(scored_entities(tagger, dev_set)[0], tagger.temperature)
    return {"temperature": tagger.temperature, "fit_on": "dev, by the model before the refit",
            "dev_sentences": len(dev_set), "dev_ece_raw": raw["ece"], "dev_ece": calibrated["ece"],
            "dev": {"raw": raw, "calibrated": calibrated}}


def _teacher_targets(cfg: TrainConfig, vocab: Vocab, split: tuple[Sequence[Sentence], Sequence[Sentence]],
                     train_all: Sequence[Sentence], device: torch.device) -> tuple[list[SoftTargets], dict]:
    """Train ``cfg.teachers`` models on the train split (seeds of their own, early stopped on
    dev, never refit: dev stays unseen) and return their ensemble's targets for every sentence
    of ``train_all``, with a summary for metrics.json."""
    if not cfg.crf:
        raise ValueError("distillation needs CRF teachers (crf=True)")
    train_set, dev_set = split
    teachers, summary = [], {"teachers": cfg.teachers, "weight": cfg.distill_weight, "teacher_dev_f1": []}
    for i in range(cfg.teachers):
        print(f"teacher {i + 1}/{cfg.teachers}", flush=True)
        teacher, history, _ = fit(replace(cfg, seed=cfg.seed + 10_000 * (i + 1)), vocab, train_set, device,
                                   cfg.epochs, dev_set)
        teachers.append(teacher)
        summary["teacher_dev_f1"].append(round(float(max(row["dev_f1"] for row in history)), 3))
    print(f"distilling: the model trains on {cfg.distill_weight:g} of the teachers' averaged distribution "
          f"and {1 - cfg.distill_weight:g} of the gold tags", flush=True)
    encoded = encode(vocab, [s.tokens for s in train_all])
    return ensemble_targets(teachers, encoded, cfg.batch_size, device), summary


SPAN_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def _fit_span_threshold(model: BiLSTMTagger, vocab: Vocab, dev_set: Sequence[Sentence]) -> dict:
    """Choose how the model decodes, by dev F1 of the early-stopped model (which never trained
    on dev): Viterbi, or the spans more likely than one of SPAN_THRESHOLDS. Sets it on the
    model's config and returns {"threshold": the choice, "dev_f1": {choice: F1}}."""
    tagger = Tagger(model, vocab, cache_chars=False)
    curve: dict[str, float] = {}
    for threshold in (None, *SPAN_THRESHOLDS):
        model.config.span_threshold = threshold
        name = "viterbi" if threshold is None else str(threshold)
        curve[name] = round(float(evaluate(tagger, dev_set)["default"]["f1"]), 3)
    best = max(curve, key=curve.__getitem__)
    model.config.span_threshold = None if best == "viterbi" else float(best)
    return {"threshold": model.config.span_threshold, "dev_f1": curve}


def _decoding_name(threshold: float | None) -> str:
    return "Viterbi" if threshold is None else f"spans more likely than {threshold}"


def _choose_on_dev(cfg: TrainConfig, model: BiLSTMTagger, vocab: Vocab, dev_set: Sequence[Sentence]
                   ) -> tuple[dict | None, dict, dict]:
    """(decoding, dev scores, calibration), all from the early-stopped model before a refit sees dev."""
    decoding = _fit_span_threshold(model, vocab, dev_set) if cfg.span_decoding and model.crf else None
    if decoding:
        print(f"decoding: {_decoding_name(decoding['threshold'])} (dev F1 {decoding['dev_f1']})", flush=True)
    dev_scores = evaluate(Tagger(model, vocab, cache_chars=False), dev_set)
    calibration = _dev_calibration(model, vocab, dev_set)
    print(f"score temperature {calibration['temperature']:.3f} (dev ECE {calibration['dev_ece_raw']:.4f} -> "
          f"{calibration['dev_ece']:.4f})", flush=True)
    return decoding, dev_scores, calibration


def _provenance(cfg: TrainConfig, train_file: Path, test_file: Path, device: torch.device) -> dict:
    """What a model was trained from and with, for its metrics.json."""
    return {
        "corpus": {
            "train": str(train_file),
            "train_sha256": data.file_sha256(train_file),
            "test": str(test_file),
            "test_sha256": data.file_sha256(test_file),
        },
        "train_config": asdict(cfg),
        "device": str(device),
        "torch": torch.__version__,
    }


def _save(cfg: TrainConfig, model: BiLSTMTagger, vocab: Vocab, metrics: dict) -> Path:
    """Write the model directory; without ``out``, a new one that ``current`` then points to."""
    out = Path(cfg.out) if cfg.out else default_out_dir()
    save_model_dir(out, model, vocab, metrics)
    if not cfg.out:
        point_current(out)
    return out


def train(cfg: TrainConfig) -> tuple[Path, dict]:
    """Train, evaluate on dev and test, write the model directory; returns (dir, metrics)."""
    started = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    corpus = data.find_corpus(cfg.data_dir)
    train_file, test_file = corpus / data.TRAIN_FILE, corpus / data.TEST_FILE
    train_all, test = read_corpus(train_file), read_corpus(test_file)
    train_set, dev_set = _train_dev_split(cfg, train_all, train_file)
    print(f"training on {len(train_set)} sentences (dev {len(dev_set)}), device {device}, "
          f"preset {cfg.preset}, up to {cfg.epochs} epochs", flush=True)
    vocab = Vocab.build((s.tokens, s.tags) for s in train_set)
    soft_all, distillation = (_teacher_targets(cfg, vocab, (train_set, dev_set), train_all, device)
                              if cfg.teachers else (None, None))
    soft_train = split_dev(soft_all, cfg.dev_fraction, cfg.seed)[0] if soft_all else None
    model, history, best_epoch = fit(cfg, vocab, train_set, device, cfg.epochs, dev_set, soft_train)
    decoding, dev_scores, calibration = _choose_on_dev(cfg, model, vocab, dev_set)
    refit_history: list[dict] = []
    if cfg.refit:
        model, vocab, refit_history = _refit(cfg, train_all, device, best_epoch, soft_all)
        model.config.span_threshold = decoding["threshold"] if decoding else None
    metrics = {
        "dev": dev_scores,  # before any refit (it sees dev), decoded as chosen on dev: a little optimistic
        "test": evaluate(Tagger(model, vocab, cache_chars=False), test),
        "best_epoch": best_epoch,
        "decoding": decoding,
        "distillation": distillation,
        "epochs": history,
        "refit_epochs": refit_history,
        "training_seconds": time.perf_counter() - started,
        **_provenance(cfg, train_file, test_file, device),
    }
    out = _save(cfg, model, vocab, metrics)
    write_calibration(out, calibration.pop("temperature"), calibration)
    return out, metrics
