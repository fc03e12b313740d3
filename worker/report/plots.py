"""The report's PNG plots: F1 over time, the latest run per label, a model's training curve."""

from __future__ import annotations

from datetime import datetime
from itertools import cycle
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .data import Run


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)


# Distinct hues (tab10), then the same hues dashed and dotted: 30 lines stay told apart.
_STYLES = [(color, style) for style in ("-", "--", ":") for color in matplotlib.colormaps["tab10"].colors]
_LABEL_GAP = 3.2  # F1 points between two line-end labels (about one line of 8-pt text)


def _spread(ys: list[float], gap: float, low: float = 0.0, high: float = 100.0) -> list[float]:
    """Label heights near `ys` (in their order) at least `gap` apart, kept within [low, high]."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed: dict[int, float] = {}
    floor = low
    for i in order:
        placed[i] = floor = max(ys[i], floor)
        floor += gap
    overflow = max(0.0, max(placed.values(), default=high) - high)
    return [placed[i] - overflow for i in range(len(ys))]


def _label_line_ends(ax: Axes, ends: list[tuple[str, datetime, float, Any]]) -> None:
    """Name each line at its right end, (label, time, F1, colour), the labels spread apart."""
    for (label, when, _, color), y in zip(ends, _spread([e[2] for e in ends], _LABEL_GAP)):
        ax.annotate(label, xy=(when, y), xytext=(8, 0), textcoords="offset points", va="center",
                    fontsize=8, color=color, fontweight="bold" if label == "overall" else "normal")


def _month_dates(ax: Axes) -> None:
    """Date ticks that always show a month: 14 Mar, or 09:30 with the day and month beside the axis."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    formatter = mdates.ConciseDateFormatter(
        locator, formats=["%Y", "%b %Y", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
        offset_formats=["", "%Y", "%b %Y", "%d %b %Y", "%d %b %Y", "%d %b %Y %H:%M"])
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)


def _f1_lines(ax: Axes, runs: list[Run]) -> None:
    """Overall F1 (thick, black) and each label's F1 over time, named at their right ends."""
    times = [r.started_at for r in runs]
    ends = []
    for (color, style), label in zip(cycle(_STYLES), sorted({name for r in runs for name in r.per_label})):
        ys = [r.per_label.get(label, {}).get("f1", float("nan")) for r in runs]
        ax.plot(times, ys, marker=".", linewidth=1.4, linestyle=style, color=color)
        last = max((i for i, y in enumerate(ys) if y == y), default=None)  # y == y: not NaN
        if last is not None:
            ends.append((label, times[last], ys[last], color))
    ax.plot(times, [r.f1 for r in runs], marker="o", linewidth=3, color="black")
    _label_line_ends(ax, [*ends, ("overall", times[-1], runs[-1].f1, "black")])
    bad = [r for r in runs if r.regression]
    if bad:
        ax.scatter([r.started_at for r in bad], [r.f1 for r in bad], marker="X", s=160, color="red", zorder=5,
                   label="regression")
        ax.legend(loc="lower left", fontsize=8)
    _month_dates(ax)
    ax.set_title(f"F1 over time on {Path(runs[-1].dataset).name} ({len(runs)} runs)")


def _f1_single_run(ax: Axes, run: Run) -> None:
    """The one run there is: its F1 per label as bars, overall as a line (a time axis needs two runs)."""
    names = sorted(run.per_label, key=lambda n: run.per_label[n].get("f1", 0.0))
    scores = [run.per_label[n].get("f1", 0.0) for n in names]
    bars = ax.barh(names, scores, color=_STYLES[0][0])
    ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
    ax.axvline(run.f1, color="black", linewidth=2, label=f"overall {run.f1:.1f}")
    ax.set_xlim(0, 100)
    ax.set_xlabel("F1 (%)")
    ax.legend(loc="lower right")
    ax.set_title(f"F1 per label of the only run so far: run {run.id}, model {run.model}, "
                 f"{run.started_at:%d %b %Y %H:%M} UTC on {Path(run.dataset).name}")


def plot_f1_over_time(runs: list[Run], out: Path) -> Figure:
    """Overall and per-label F1 over the runs; with runs at one moment only, that run's F1 per label."""
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    if not runs:
        _empty(fig, "no evaluation runs recorded yet")
    elif len({r.started_at for r in runs}) == 1:
        _f1_single_run(fig.add_subplot(), runs[-1])
    else:
        ax = fig.add_subplot()
        _f1_lines(ax, runs)
        ax.set_ylabel("F1 (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    fig.savefig(out, dpi=100)
    return fig


def plot_latest_bars(runs: list[Run], out: Path) -> Figure:
    fig = Figure(figsize=(11, 5), layout="constrained")
    if not runs:
        _empty(fig, "no evaluation runs recorded yet")
    else:
        last = runs[-1]
        names = [*sorted(last.per_label), "overall"]
        scores = {**last.per_label, "overall": {"precision": last.precision, "recall": last.recall, "f1": last.f1}}
        ax = fig.add_subplot()
        width = 0.27
        for k, (metric, color) in enumerate((("precision", "#4c72b0"), ("recall", "#dd8452"), ("f1", "#55a868"))):
            xs = [i + (k - 1) * width for i in range(len(names))]
            ax.bar(xs, [scores[n][metric] for n in names], width, label=metric.capitalize() if metric != "f1"
                   else "F1", color=color)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(f"Latest run {last.id}: model {last.model}, {last.started_at:%Y-%m-%d %H:%M} UTC")
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    fig.savefig(out, dpi=100)
    return fig


def plot_training_curve(metrics: dict[str, Any], model_label: str, out: Path) -> Figure:
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    epochs = metrics.get("epochs") or []
    if not epochs:
        _empty(fig, f"no training history for {model_label}")
    else:
        ax = fig.add_subplot()
        ax.plot([e["epoch"] for e in epochs], [e["loss"] for e in epochs], marker="o", color="#4c72b0",
                label="training loss")
        refit = metrics.get("refit_epochs") or []
        if refit:
            ax.plot([e["epoch"] for e in refit], [e["loss"] for e in refit], marker="o", linestyle="--",
                    color="#8172b3", label="refit loss (train+dev)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean loss per sentence")
        dev = [(e["epoch"], e["dev_f1"]) for e in epochs if "dev_f1" in e]
        ax2 = ax.twinx()
        if dev:
            ax2.plot([d[0] for d in dev], [d[1] for d in dev], marker="s", color="#55a868", label="dev F1")
        if metrics.get("best_epoch"):
            ax.axvline(metrics["best_epoch"], color="grey", linestyle=":", label=f"best epoch {metrics['best_epoch']}")
        ax2.set_ylabel("dev F1 (%)")
        ax.set_xticks([e["epoch"] for e in epochs])
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
        ax.set_title(f"Training curve of {model_label}")
        ax.grid(alpha=0.3)
    fig.savefig(out, dpi=100)
    return fig


def reliability_measured(calibration: dict[str, Any]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """(the sentences measured, [(raw or calibrated, its figures)]) from calibration.json: the
    test set's, which bench/bench_calibration.py --save writes, else dev's, which bin/train
    saves with the temperature it fits; ("", []) for a model with neither."""
    for figures, sentences in ((calibration, "test"), (calibration.get("dev") or {}, "dev")):
        measured = [(name, figures[name]) for name in ("raw", "calibrated") if name in figures]
        if measured:
            return sentences, measured
    return "", []


def plot_reliability(calibration: dict[str, Any], model_label: str, out: Path) -> Figure:
    """Entity scores against how often such entities are exactly right (calibration.json's
    figures, :func:`reliability_measured`): on the diagonal, a score means what it says."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    sentences, measured = reliability_measured(calibration)
    if not measured:
        _empty(fig, f"no calibration measured for {model_label}\n(bench/bench_calibration.py --save)")
    else:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
        for (name, m), color in zip(measured, ("#dd8452", "#4c72b0")):
            rows = [r for r in m["reliability"] if r["n"]]
            ax.plot([r["mean_score"] for r in rows], [r["accuracy"] for r in rows], marker="o", color=color,
                    label=f"{name} (T={m['temperature']:.2f}): ECE {m['ece']:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("entity score (mean per bin)")
        ax.set_ylabel("share exactly a gold span")
        ax.set_title(f"Reliability of entity scores: {model_label}\n(measured on the {sentences} set)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.savefig(out, dpi=100)
    return fig
