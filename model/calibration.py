"""Do entity scores mean what they say? Each predicted entity's score against whether it is
exactly a gold span (label and boundaries): expected calibration error, a reliability table,
precision/recall above thresholds, and a temperature fit on held-out sentences for when the
scores miss. A temperature divides every CRF potential (or softmax logit) for scores only: tags
are decoded from the raw potentials (Viterbi or span decoding), and only the marginals soften
(T > 1) or sharpen (T < 1). So an entity kept as more likely than the span threshold may show
a calibrated score below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from .chunk_tagging import tag_sentences
from .corpus import Sentence
from .spans import bio_spans
from .tagger import Tagger

THRESHOLDS = (0.5, 0.7, 0.9)


class Scored(NamedTuple):
    score: float
    correct: bool  # the predicted span is exactly a gold span


def scored_entities(tagger: Tagger, sentences: Sequence[Sentence]) -> tuple[list[Scored], int]:
    """(every predicted entity's score and correctness, the number of gold spans)."""
    tagged = tag_sentences(tagger, [s.tokens for s in sentences], [None] * len(sentences))
    gold = [set(bio_spans(s.tags or [])) for s in sentences]
    pairs = [Scored(score, (label, start, end) in gold[p]) for p, label, start, end, score
             in zip(tagged.position.tolist(), tagged.label, tagged.start.tolist(), tagged.end.tolist(),
                    tagged.score.tolist())]
    return pairs, sum(map(len, gold))


def reliability(pairs: Sequence[Scored], bins: int = 10) -> list[dict]:
    """Equal-width score bins: how many entities, their mean score and the share correct."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [p for p in pairs if lo <= p.score < hi or (b == bins - 1 and p.score == 1.0)]
        rows.append({"lo": lo, "hi": hi, "n": len(inside),
                     "mean_score": sum(p.score for p in inside) / len(inside) if inside else None,
                     "accuracy": sum(p.correct for p in inside) / len(inside) if inside else None})
    return rows


def reliability_figures(pairs: Sequence[Scored], temperature: float) -> dict:
    """What a reliability diagram draws of entities scored at one temperature: their ECE and
    bins (count, mean score, share correct), rounded so that a model directory's JSON stays small."""
    bins = [{**row, "mean_score": _rounded(row["mean_score"]), "accuracy": _rounded(row["accuracy"])}
            for row in reliability(pairs)]
    return {"temperature": temperature, "entities": len(pairs),
            "ece": round(expected_calibration_error(pairs), 4), "reliability": bins}


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def expected_calibration_error(pairs: Sequence[Scored], bins: int = 10) -> float:
    """Mean |share correct - mean score| over the bins, weighted by their entity counts."""
    if not pairs:
        return 0.0
    rows = [r for r in reliability(pairs, bins) if r["n"]]
    return sum(r["n"] * abs(r["accuracy"] - r["mean_score"]) for r in rows) / len(pairs)


def threshold_table(pairs: Sequence[Scored], n_gold: int, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """Precision and recall (percent) of the entities kept at each score threshold."""
    table = []
    for t in thresholds:
        kept = [p for p in pairs if p.score >= t]
        hits = sum(p.correct for p in kept)
        table.append({"threshold": t, "kept": len(kept),
                      "precision": round(100 * hits / len(kept), 2) if kept else 0.0,
                      "recall": round(100 * hits / n_gold, 2) if n_gold else 0.0})
    return table


def log_loss(pairs: Sequence[Scored]) -> float:
    if not pairs:
        return 0.0
    eps = 1e-7
    return -sum(math.log(min(max(p.score if p.correct else 1 - p.score, eps), 1.0)) for p in pairs) / len(pairs)


def fit_temperature(tagger: Tagger, sentences: Sequence[Sentence], lo: float = 0.25, hi: float = 8.0,
                    steps: int = 14) -> float:
    """The temperature minimising the log loss of span scores against correctness on these
    (held-out) sentences: golden-section search over log T. The tagger's own is restored."""
    kept = tagger.temperature

    def loss(log_t: float) -> float:
        tagger.temperature = math.exp(log_t)
        return log_loss(scored_entities(tagger, sentences)[0])

    ratio = (math.sqrt(5) - 1) / 2
    a, b = math.log(lo), math.log(hi)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    try:
        fc, fd = loss(c), loss(d)
        for _ in range(steps):
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - ratio * (b - a)
                fc = loss(c)
            else:
                a, c, fc = c, d, fd
                d = a + ratio * (b - a)
                fd = loss(d)
    finally:
        tagger.temperature = kept
    return math.exp((a + b) / 2)
