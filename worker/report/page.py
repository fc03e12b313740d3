"""The report's HTML page (page.html, a string.Template): the plots with their numbers, linked
relatively so that it opens from disk."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

from .data import Run

F1_OVER_TIME, LATEST_BARS, TRAINING_CURVE, INDEX = (
    "f1_over_time.png", "latest_per_label.png", "training_curve.png", "index.html",
)
RELIABILITY = "reliability.png"
PAGE = Template(files(__package__).joinpath("page.html").read_text(encoding="utf-8"))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.2f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _runs_table(runs: list[Run]) -> str:
    return _table(["run", "started (UTC)", "model", "trigger", "sentences", "P", "R", "F1", "seconds", "flag"], [
        [r.id, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.model, r.trigger, r.n_sentences, r.precision, r.recall,
         r.f1, f"{r.seconds:.1f}", "REGRESSION" if r.regression else ""]
        for r in runs
    ])


def _latest_table(runs: list[Run]) -> str:
    """The latest run per label; the overall row's support is every label's (gold entities)."""
    if not runs:
        return ""
    last = runs[-1]
    supports = [s.get("support") for s in last.per_label.values()]
    overall = sum(supports) if None not in supports else ""
    return _table(
        ["label", "precision", "recall", "F1", "support"],
        [[n, s["precision"], s["recall"], s["f1"], s.get("support", "")] for n, s in sorted(last.per_label.items())]
        + [["overall", last.precision, last.recall, last.f1, overall]],
    )


def _training_table(metrics: dict[str, Any]) -> str:
    return _table(
        ["epoch", "loss", "dev F1", "seconds"],
        [[e["epoch"], e["loss"], e.get("dev_f1", ""), e.get("seconds", "")] for e in metrics.get("epochs") or []],
    )


def render_page(runs: list[Run], metrics: dict[str, Any], model_label: str) -> str:
    """index.html for these runs (oldest first) and the training metrics of model_label."""
    return PAGE.substitute(
        generated=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}",
        dataset=html.escape(runs[-1].dataset) if runs else "(none yet)",
        f1_over_time=F1_OVER_TIME, latest_bars=LATEST_BARS, training_curve=TRAINING_CURVE, reliability=RELIABILITY,
        runs_table=_runs_table(runs), latest_table=_latest_table(runs), training_table=_training_table(metrics),
        model_label=html.escape(model_label),
    )


def write_html(out: Path, runs: list[Run], metrics: dict[str, Any], model_label: str) -> None:
    out.write_text(render_page(runs, metrics, model_label), encoding="utf-8")
