"""Calibration measures on known inputs, and a temperature fit that does what it is for."""

from __future__ import annotations

import random

import pytest

from model import Tagger
from model.calibration import (
    Scored,
    expected_calibration_error,
    fit_temperature,
    log_loss,
    reliability,
    scored_entities,
    threshold_table,
)
from model.corpus import read_corpus


def test_ece_is_zero_when_scores_match_accuracy_and_large_when_overconfident():
    rng = random.Random(3)
    honest = [Scored(s, rng.random() < s) for s in (rng.choice([0.15, 0.55, 0.95]) for _ in range(20000))]
    assert expected_calibration_error(honest) < 0.02
    overconfident = [Scored(0.95, i % 2 == 0) for i in range(1000)]
    assert expected_calibration_error(overconfident) == pytest.approx(0.45)
    rows = reliability([Scored(1.0, True), Scored(0.05, False), Scored(0.55, True)])
    assert [r["n"] for r in rows] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]  # a score of 1.0 falls in the last bin
    assert rows[9]["accuracy"] == 1.0 and rows[1]["mean_score"] is None


def test_threshold_table_counts_kept_entities():
    pairs = [Scored(0.95, True), Scored(0.8, True), Scored(0.6, False), Scored(0.3, True)]
    assert threshold_table(pairs, n_gold=5) == [
        {"threshold": 0.5, "kept": 3, "precision": 66.67, "recall": 40.0},
        {"threshold": 0.7, "kept": 2, "precision": 100.0, "recall": 40.0},
        {"threshold": 0.9, "kept": 1, "precision": 100.0, "recall": 20.0},
    ]


def test_fitted_temperature_lowers_the_log_loss_and_is_restored(tiny_model, test_file):
    sentences = read_corpus(test_file)
    fit_on, held_out = sentences[:400], sentences[400:800]
    tagger = Tagger.load(tiny_model, "cpu")
    tagger.temperature = 1.0  # raw marginals, not the temperature training fit
    raw, n_gold = scored_entities(tagger, held_out)
    assert n_gold > len(held_out) and len(raw) > 100
    temperature = fit_temperature(tagger, fit_on, steps=8)
    assert tagger.temperature == 1.0 and temperature != 1.0
    tagger.temperature = temperature
    calibrated, _ = scored_entities(tagger, held_out)
    assert [p.correct for p in calibrated] == [p.correct for p in raw]  # the same entities
    assert log_loss(calibrated) < log_loss(raw)


def test_reliability_diagram_renders_from_a_saved_measurement(tmp_path):
    from worker.report.plots import plot_reliability

    pairs = [Scored(s / 100, s % 3 == 0) for s in range(100)]
    measured = {"temperature": 1.0, "ece": expected_calibration_error(pairs), "reliability": reliability(pairs)}
    for calibration in ({"raw": measured, "calibrated": {**measured, "temperature": 1.3}}, {}):
        out = tmp_path / "reliability.png"
        plot_reliability(calibration, "m", out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
