"""Results in the formats other tools load, written as they stream in (input order), never
held whole: bin/results and bin/tag write through here, and so can any Python caller.

- ``conll``: ``token<TAB>TAG`` lines, a blank line after each sentence (IOB2; bin/tag's format);
- ``jsonl``: one object per sentence: idx, the original text when there is one, tokens, tags,
  entities (label, token start/end, char_start/char_end, text, score);
- ``csv``: one row per entity, for spreadsheets;
- ``label-studio``: a JSON list of Label Studio tasks with the entities as scored
  pre-annotations (``predictions``), for review;
- ``entities``: one tab-separated row per entity (sentence_idx, label, start, end, text).

Character offsets point into the sentence's original text, or for pre-tokenized input into
its tokens joined by single spaces (the text Label Studio is given).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TextIO

from model.tokenizer import align

NO_TAG = "-"  # shown in conll output for sentences whose chunk failed
FROM_NAME, TO_NAME = "label", "text"  # the <Labels> and <Text> names of the labeling config


class SpanLike(Protocol):
    """An entity as storage (EntityRow) or the tagger (model.annotate.Entity) gives it."""

    label: str
    start: int
    end: int
    char_start: int | None
    char_end: int | None
    text: str
    score: float | None


class ResultLike(Protocol):
    """A sentence's results, a NamedTuple (storage.SentenceResult, Result); tags None: not tagged."""

    idx: int
    tokens: list[str]
    text: str | None
    tags: list[str] | None
    entities: Sequence[SpanLike]

    def _replace(self, **changes: Any) -> ResultLike: ...


class Result(NamedTuple):
    """A sentence's results outside the database (bin/tag)."""

    idx: int
    tokens: list[str]
    text: str | None
    tags: list[str] | None
    entities: Sequence[SpanLike]


def source_text(r: ResultLike) -> str:
    return r.text if r.text is not None else " ".join(r.tokens)


def char_span(r: ResultLike, e: SpanLike) -> tuple[int, int]:
    """An entity's character offsets; rows stored before they were recorded get them here."""
    if e.char_start is not None and e.char_end is not None:
        return e.char_start, e.char_end
    offsets = align(r.tokens, source_text(r))
    return offsets[e.start].start, offsets[e.end - 1].end


def write_conll(out: TextIO, tokens: Sequence[str], tags: Sequence[str]) -> None:
    """One sentence in bin/tag's format."""
    out.write("".join(f"{tok}\t{tag}\n" for tok, tag in zip(tokens, tags)))
    out.write("\n")


def _conll(out: TextIO, results: Iterable[ResultLike], model_version: str) -> None:
    for r in results:
        write_conll(out, r.tokens, r.tags or [NO_TAG] * len(r.tokens))


def _entity_dict(r: ResultLike, e: SpanLike) -> dict:
    char_start, char_end = char_span(r, e)
    return {"label": e.label, "start": e.start, "end": e.end, "char_start": char_start,
            "char_end": char_end, "text": e.text, "score": e.score}


def jsonl_object(r: ResultLike) -> dict:
    """A sentence as one ``jsonl`` line holds it (bin/review adds its selection score)."""
    return {"idx": r.idx, **({"text": r.text} if r.text is not None else {}), "tokens": r.tokens,
            "tags": r.tags, "entities": [_entity_dict(r, e) for e in r.entities]}


def _jsonl(out: TextIO, results: Iterable[ResultLike], model_version: str) -> None:
    for r in results:
        out.write(json.dumps(jsonl_object(r), ensure_ascii=False) + "\n")


CSV_COLUMNS = ("sentence_idx", "label", "text", "score", "start", "end", "char_start", "char_end", "sentence")


def _csv(out: TextIO, results: Iterable[ResultLike], model_version: str) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in results:
        for e in r.entities:
            d = _entity_dict(r, e)
            writer.writerow([r.idx, *(d[c] for c in CSV_COLUMNS[1:-1]), source_text(r)])


def _entities_tsv(out: TextIO, results: Iterable[ResultLike], model_version: str) -> None:
    out.write("sentence_idx\tlabel\tstart\tend\ttext\n")
    for r in results:
        for e in r.entities:
            out.write(f"{r.idx}\t{e.label}\t{e.start}\t{e.end}\t{e.text}\n")


def label_studio_task(r: ResultLike, model_version: str) -> dict:
    """One task: the sentence as ``data.text``, its entities as one prediction whose ``score``
    is the least confident entity's (Label Studio sorts tasks by it)."""
    result = []
    for k, e in enumerate(r.entities):
        start, end = char_span(r, e)
        value = {"start": start, "end": end, "text": e.text, "labels": [e.label]}
        result.append({"id": f"{r.idx}-{k}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "labels",
                       "value": value, "score": e.score})
    prediction: dict = {"model_version": model_version, "result": result}
    scores = [e.score for e in r.entities if e.score is not None]
    if scores:
        prediction["score"] = min(scores)
    return {"data": {TO_NAME: source_text(r), "idx": r.idx},
            "predictions": [prediction] if r.tags is not None else []}


def write_json_list(out: TextIO, items: Iterable[dict]) -> None:
    """A JSON list written as the items stream in, one a line (Label Studio's task file)."""
    out.write("[")
    for n, item in enumerate(items):
        out.write(",\n" if n else "\n")
        out.write(json.dumps(item, ensure_ascii=False))
    out.write("\n]\n")


def _label_studio(out: TextIO, results: Iterable[ResultLike], model_version: str) -> None:
    write_json_list(out, (label_studio_task(r, model_version) for r in results))


WRITERS: dict[str, Callable[[TextIO, Iterable[ResultLike], str], None]] = {
    "conll": _conll, "jsonl": _jsonl, "csv": _csv, "label-studio": _label_studio, "entities": _entities_tsv,
}
FORMATS = tuple(WRITERS)


def keep_confident(r: ResultLike, min_score: float) -> ResultLike:
    """The sentence without its entities scored below min_score (or unscored): their tokens
    become O, so tags and entities still agree."""
    kept = [e for e in r.entities if e.score is not None and e.score >= min_score]
    if len(kept) == len(r.entities) or r.tags is None:
        return r._replace(entities=kept)
    tags = list(r.tags)
    for e in r.entities:
        if e not in kept:
            tags[e.start : e.end] = ["O"] * (e.end - e.start)
    return r._replace(tags=tags, entities=kept)


def needs_review(r: ResultLike, max_score: float) -> bool:
    """A sentence holding an entity scored below max_score: worth a person's look."""
    return any(e.score is not None and e.score < max_score for e in r.entities)


def filtered(results: Iterable[ResultLike], min_score: float | None = None,
             max_score: float | None = None) -> Iterator[ResultLike]:
    """``max_score``: only the sentences that need review; then ``min_score`` on entities."""
    for r in results:
        if max_score is not None and not needs_review(r, max_score):
            continue
        yield keep_confident(r, min_score) if min_score is not None else r


def write_results(out: TextIO, results: Iterable[ResultLike], fmt: str, *, model_version: str = "",
                  min_score: float | None = None, max_score: float | None = None) -> None:
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    WRITERS[fmt](out, filtered(results, min_score, max_score), model_version)
