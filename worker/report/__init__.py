"""The evaluation report: PNG plots from evaluation_runs and a model's metrics.json, and one
HTML page showing them with their numbers (relative links: it opens from disk, no server).
Data access in data.py, plots in plots.py, the page in page.py (its template page.html)."""

from __future__ import annotations

from pathlib import Path

from model.checkpoint import read_calibration, read_metrics

from .data import curve_model_dir, load_runs
from .page import F1_OVER_TIME, INDEX, LATEST_BARS, RELIABILITY, TRAINING_CURVE, write_html
from .plots import plot_f1_over_time, plot_latest_bars, plot_reliability, plot_training_curve

__all__ = ["write_report"]


def write_report(out_dir: str | Path, dataset_sha256: str | None = None, model_dir: str | Path | None = None) -> list[Path]:
    """Write the four PNGs and index.html into out_dir; returns their paths. The training curve
    and the reliability diagram are those of model_dir, else of the model of the latest run,
    else of the current model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(dataset_sha256)
    if model_dir is None:
        model_dir = curve_model_dir(runs)
    metrics = read_metrics(model_dir) if Path(model_dir).is_dir() else {}
    label = Path(model_dir).resolve().name
    plot_f1_over_time(runs, out / F1_OVER_TIME)
    plot_latest_bars(runs, out / LATEST_BARS)
    plot_training_curve(metrics, label, out / TRAINING_CURVE)
    plot_reliability(read_calibration(model_dir) if Path(model_dir).is_dir() else {}, label, out / RELIABILITY)
    write_html(out / INDEX, runs, metrics, label)
    return [out / name for name in (F1_OVER_TIME, LATEST_BARS, TRAINING_CURVE, RELIABILITY, INDEX)]
