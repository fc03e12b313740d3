"""The evaluation report: PNG plots from evaluation_runs and a model's metrics.json, and one
HTML page showing them with their numbers (relative links: it opens from disk, no server)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

import storage
from model.checkpoint import read_metrics

from .registry import current_model_dir

F1_OVER_TIME, LATEST_BARS, TRAINING_CURVE, INDEX = (
    "f1_over_time.png", "latest_per_label.png", "training_curve.png", "index.html",
)


@dataclass(frozen=True)
class Run:
    """An evaluation run, read out of its session."""

    id: int
    model: str
    dataset: str
    dataset_sha256: str
    started_at: datetime
    seconds: float
    trigger: str
    n_sentences: int
    precision: float
    recall: float
    f1: float
    per_label: dict[str, dict[str, float]]
    regression: bool


def load_runs(dataset_sha256: str | None = None) -> list[Run]:
    """Runs on one data set (default: the one evaluated last), oldest first."""
    with storage.session_scope() as session:
        names = {v.id: f"{v.id}:{v.name}" for v in storage.latest_model_versions(session, 10_000)}
        runs = storage.evaluation_history(session)
        if not runs:
            return []
        wanted = dataset_sha256 or max(runs, key=lambda r: (r.started_at, r.id)).dataset_sha256
        return [
            Run(r.id, names.get(r.model_version_id, str(r.model_version_id)), r.dataset, r.dataset_sha256,
                r.started_at, (r.finished_at - r.started_at).total_seconds(), r.trigger, r.n_sentences,
                r.precision, r.recall, r.f1, r.per_label, bool(r.regression))
            for r in runs
            if r.dataset_sha256.startswith(wanted)
        ]


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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.2f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def write_html(out: Path, runs: list[Run], metrics: dict[str, Any], model_label: str) -> None:
    run_rows = [
        [r.id, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.model, r.trigger, r.n_sentences, r.precision, r.recall,
         r.f1, f"{r.seconds:.1f}", "REGRESSION" if r.regression else ""]
        for r in runs
    ]
    latest = ""
    if runs:
        last = runs[-1]
        latest = _table(
            ["label", "precision", "recall", "F1", "support"],
            [[n, s["precision"], s["recall"], s["f1"], s.get("support", "")] for n, s in sorted(last.per_label.items())]
            + [["overall", last.precision, last.recall, last.f1, ""]],
        )
    training = _table(
        ["epoch", "loss", "dev F1", "seconds"],
        [[e["epoch"], e["loss"], e.get("dev_f1", ""), e.get("seconds", "")] for e in metrics.get("epochs") or []],
    )
    dataset = html.escape(runs[-1].dataset) if runs else "(none yet)"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nerqueue evaluation report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1200px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f0f0f0; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
</style>
</head>
<body>
<h1>nerqueue evaluation report</h1>
<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC. Data set: {dataset}.
Scores are entity-level (conlleval-style), in percent.</p>
<h2>F1 over time</h2>
<img src="{F1_OVER_TIME}" alt="overall and per-label F1 over time">
<h2>Evaluation runs</h2>
{_table(["run", "started (UTC)", "model", "trigger", "sentences", "P", "R", "F1", "seconds", "flag"], run_rows)}
<h2>Latest run per label</h2>
<img src="{LATEST_BARS}" alt="latest per-label precision, recall and F1">
{latest}
<h2>Training curve: {html.escape(model_label)}</h2>
<img src="{TRAINING_CURVE}" alt="training loss and dev F1 per epoch">
{training}
</body>
</html>
"""
    out.write_text(page, encoding="utf-8")


def write_report(out_dir: str | Path, dataset_sha256: str | None = None, model_dir: str | Path | None = None) -> list[Path]:
    """Write the three PNGs and index.html into out_dir; returns their paths. The training curve
    is that of model_dir, else of the model of the latest run, else of the current model."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(dataset_sha256)
    if model_dir is None:
        if runs:
            with storage.session_scope() as session:
                latest = storage.evaluation_history(session, dataset_sha256=runs[-1].dataset_sha256)[-1]
                model_dir = storage.get_model_version(session, latest.model_version_id).path
        else:
            model_dir = current_model_dir()
    metrics = read_metrics(model_dir) if Path(model_dir).is_dir() else {}
    label = Path(model_dir).resolve().name
    plot_f1_over_time(runs, out / F1_OVER_TIME)
    plot_latest_bars(runs, out / LATEST_BARS)
    plot_training_curve(metrics, label, out / TRAINING_CURVE)
    write_html(out / INDEX, runs, metrics, label)
    return [out / name for name in (F1_OVER_TIME, LATEST_BARS, TRAINING_CURVE, INDEX)]
