"""bin/report's plots and page, rendered at their fixed size from made-up runs and checked
through matplotlib's artists (lines, texts, ticks), not only that a file was written."""

from __future__ import annotations

import calendar
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from model.checkpoint import read_calibration
from worker.report.data import Run
from worker.report.page import render_page
from worker.report.plots import plot_f1_over_time, plot_reliability

LABELS = ["Actor", "Award", "Character_Name", "Director", "Genre", "Opinion", "Origin", "Plot", "Quote",
          "Relationship", "Soundtrack", "Year"]
T0 = datetime(2026, 3, 14, 9, 0, tzinfo=timezone.utc)
MONTHS = set(calendar.month_abbr[1:])


def make_run(run_id: int, when: datetime, seed: int = 0, regression: bool = False) -> Run:
    rng = random.Random(seed + run_id)
    per_label = {label: {"precision": rng.uniform(30, 90), "recall": rng.uniform(30, 90),
                         "f1": rng.uniform(30, 90), "support": rng.randint(10, 900)} for label in LABELS}
    return Run(run_id, 1, "1:tiny", "/data/eval300.bio", "ab" * 32, when, 2.5, "scheduled", 300,
               61.0, 62.0, 60.0 + run_id, per_label, regression)


def only_axes(fig: Figure) -> Axes:
    assert len(fig.axes) == 1
    return fig.axes[0]


def test_one_run_is_shown_as_bars_per_label_not_dots_on_a_time_axis(tmp_path: Path):
    run = make_run(1, T0)
    fig = plot_f1_over_time([run], tmp_path / "f1.png")
    assert tuple(fig.get_size_inches() * fig.dpi) == (1100, 550)
    ax = only_axes(fig)
    bars = ax.patches
    assert len(bars) == len(LABELS)
    assert sorted(round(b.get_width(), 6) for b in bars) == sorted(round(s["f1"], 6) for s in run.per_label.values())
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == LABELS
    overall = [line for line in ax.get_lines() if line.get_label().startswith("overall")]
    assert len(overall) == 1 and overall[0].get_xdata()[0] == pytest.approx(run.f1)
    assert "only run" in ax.get_title() and "Mar 2026" in ax.get_title()


def test_runs_over_time_have_distinct_styled_lines_named_at_their_right_ends(tmp_path: Path):
    runs = [make_run(i, T0 + timedelta(hours=6 * i), regression=i == 3) for i in range(1, 7)]
    fig = plot_f1_over_time(runs, tmp_path / "f1.png")
    ax = only_axes(fig)
    lines = ax.get_lines()
    assert len(lines) == len(LABELS) + 1  # one per label and the overall line
    styles = {(line.get_color(), line.get_linestyle()) for line in lines}
    assert len(styles) == len(lines), "two lines look alike"
    assert not any("tab20" in str(line.get_color()) for line in lines)
    names = {t.get_text(): t for t in ax.texts}
    assert set(names) == {*LABELS, "overall"}
    assert all(t.xy[0] == runs[-1].started_at for t in names.values())
    heights = sorted(t.xy[1] for t in names.values())
    assert min(b - a for a, b in zip(heights, heights[1:])) >= 3.0  # labels never sit on each other
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["regression"]


@pytest.mark.parametrize("step", [timedelta(minutes=3), timedelta(hours=6), timedelta(days=9), timedelta(days=60)])
def test_date_ticks_name_a_month(tmp_path: Path, step: timedelta):
    runs = [make_run(i, T0 + step * i) for i in range(1, 5)]
    ax = only_axes(plot_f1_over_time(runs, tmp_path / "f1.png"))
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    shown = " ".join([*ticks, ax.xaxis.get_major_formatter().get_offset()])
    assert len([t for t in ticks if t]) >= 2
    assert MONTHS & set(shown.replace("-", " ").split()), f"no month in {shown!r}"
    assert "2026" in shown


def test_no_runs_says_so(tmp_path: Path):
    fig = plot_f1_over_time([], tmp_path / "f1.png")
    assert [t.get_text() for t in fig.axes[0].texts] == ["no evaluation runs recorded yet"]
    assert (tmp_path / "f1.png").stat().st_size > 0


def test_overall_row_of_the_page_has_its_support():
    run = make_run(1, T0)
    page = render_page([run], {}, "tiny")
    overall_row = next(line for line in page.split("<tr>") if line.startswith("<td>overall</td>"))
    assert f"<td>{sum(s['support'] for s in run.per_label.values())}</td>" in overall_row


def test_a_trained_models_reliability_diagram_draws_what_training_measured_on_dev(tmp_path: Path, tiny_model: Path):
    """bin/train saves the dev figures behind its temperature (bins before and after it, small);
    the report draws them for a model never measured on test, and says so without any figures."""
    calibration = read_calibration(tiny_model)
    dev = calibration["dev"]
    assert dev["raw"]["temperature"] == 1.0 and dev["calibrated"]["temperature"] == calibration["temperature"]
    assert (dev["raw"]["ece"], dev["calibrated"]["ece"]) == (calibration["dev_ece_raw"], calibration["dev_ece"])
    for figures in dev.values():
        bins = figures["reliability"]
        assert len(bins) == 10 and sum(b["n"] for b in bins) == figures["entities"] > 0
    assert len(json.dumps(dev)) < 4000

    ax = only_axes(plot_reliability(calibration, "tiny", tmp_path / "reliability.png"))
    drawn = {line.get_label().split()[0]: line for line in ax.get_lines()}
    assert set(drawn) == {"perfectly", "raw", "calibrated"} and "dev set" in ax.get_title()
    for name in ("raw", "calibrated"):
        filled = [b for b in dev[name]["reliability"] if b["n"]]
        assert list(drawn[name].get_xdata()) == [b["mean_score"] for b in filled] != []
        assert list(drawn[name].get_ydata()) == [b["accuracy"] for b in filled]

    empty = plot_reliability({"temperature": 1.3}, "old", tmp_path / "none.png")
    assert [t.get_text() for t in empty.axes[0].texts] == [
        "no calibration measured for old\n(bench/bench_calibration.py --save)"]
