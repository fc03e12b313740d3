"""The report's PNG plots: F1 over time, the latest run per label, a model's training curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from .data import Run


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)


def plot_f1_over_time(runs: list[Run], out: Path) -> None:
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    if not runs:
        _empty(fig, "no evaluation runs recorded yet")
    else:
        ax = fig.add_subplot()
        times = [r.started_at for r in runs]
        labels = sorted({name for r in runs for name in r.per_label})
        cmap = matplotlib.colormaps["tab20"]
        for i, label in enumerate(labels):
            ys = [r.per_label.get(label, {}).get("f1") for r in runs]
            ax.plot(times, [float("nan") if y is None else y for y in ys], marker=".", linewidth=1,
                    color=cmap(i % 20), alpha=0.8, label=label)
        ax.plot(times, [r.f1 for r in runs], marker="o", linewidth=3, color="black", label="overall")
        bad = [r for r in runs if r.regression]
        if bad:
            ax.scatter([r.started_at for r in bad], [r.f1 for r in bad], marker="X", s=160, color="red",
                       zorder=5, label="regression")
        ax.set_ylabel("F1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"F1 over time on {Path(runs[-1].dataset).name} ({len(runs)} runs)")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
        fig.autofmt_xdate()
    fig.savefig(out, dpi=100)


def plot_latest_bars(runs: list[Run], out: Path) -> None:
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


def plot_training_curve(metrics: dict[str, Any], model_label: str, out: Path) -> None:
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


def plot_reliability(calibration: dict[str, Any], model_label: str, out: Path) -> None:
    """Entity scores against how often such entities are exactly right (bench_calibration.py's
    test-set measurement in calibration.json): on the diagonal, a score means what it says."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    measured = [(name, calibration[name]) for name in ("raw", "calibrated") if name in calibration]
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
        ax.set_title(f"Reliability of entity scores: {model_label}")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.savefig(out, dpi=100)
