"""Entity-level scores with seqeval: conlleval-style (its default) and strict IOB2."""

from __future__ import annotations

import time
from collections.abc import Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from typing import TYPE_CHECKING

from .corpus import Sentence

if TYPE_CHECKING:
    from .tagger import Tagger


def _report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], strict: bool) -> dict:
    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    raw = classification_report(
        [list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0, **kwargs
    )
    labels = {
        name: {
            "precision": 100 * r["precision"],
            "recall": 100 * r["recall"],
            "f1": 100 * r["f1-score"],
            "support": int(r["support"]),
        }
        for name, r in sorted(raw.items())
        if not name.endswith(" avg")
    }
    micro = raw["micro avg"]
    return {
        "precision": 100 * micro["precision"],
        "recall": 100 * micro["recall"],
        "f1": 100 * micro["f1-score"],
        "support": int(micro["support"]),
        "per_label": labels,
    }


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """{"default": conlleval-style scores, "strict": strict IOB2 scores}, in percent."""
    return {"default": _report(gold, pred, False), "strict": _report(gold, pred, True)}


def evaluate(tagger: Tagger, sentences: Sequence[Sentence]) -> dict:
    start = time.perf_counter()
    pred = tagger.tag([s.tokens for s in sentences])
    result = score([s.tags or [] for s in sentences], pred)
    result["n_sentences"] = len(sentences)
    result["seconds"] = time.perf_counter() - start
    return result


def format_table(result: dict) -> str:
    """A conlleval-like table: per label, then overall (default and strict)."""
    d = result["default"]
    lines = [f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, r in d["per_label"].items():
        lines.append(f"{name:<16}{r['precision']:>10.2f}{r['recall']:>10.2f}{r['f1']:>10.2f}{r['support']:>9}")
    for title, r in (("overall", d), ("overall strict", result["strict"])):
        lines.append(f"{title:<16}{r['precision']:>10.2f}{r['recall']:>10.2f}{r['f1']:>10.2f}{r['support']:>9}")
    return "\n".join(lines)
