"""Every query in docs/sql.md, run exactly as written, on the databases it is written for."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from storage_fakes import YEAR_SCORE, director_score, make_job, sentence, write_chunk

from storage import claim_chunk, mark_chunk_failed, record_evaluation, register_model_version

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
QUERY = re.compile(r"```sql\n-- (\w+)(?:, (SQLite|PostgreSQL))?\n(.*?)```", re.S)
QUERIES: dict[str, dict[str, str]] = {}  # name -> {"sqlite", "postgresql" or "" (both): the block as written}
for match in QUERY.finditer(DOC.read_text(encoding="utf-8")):
    QUERIES.setdefault(match[1], {})[(match[2] or "").lower()] = match[0].removeprefix("```sql\n").removesuffix("```")

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
F1 = {"Director": [70.0, 75.0, 80.0], "Year": [90.0, 91.0, 92.0]}


def load_examples(session: Session) -> dict[str, Any]:
    """Job "a": 10 sentences, chunk 0 tagged and chunk 1 failed; job "b": 5 sentences, all
    tagged; three evaluation runs, one day apart."""
    a, chunks_a = make_job(session, 10, 5, name="a")
    claim_chunk(session, a, 0)
    write_chunk(session, a, chunks_a[0])
    mark_chunk_failed(session, a, 1, "boom")
    b, chunks_b = make_job(session, 5, 5, name="b")
    write_chunk(session, b, chunks_b[0])
    model = register_model_version(session, name="m", path="p", sha256="9" * 64, config={}).id
    for day in range(3):
        record_evaluation(
            session, model_version_id=model, dataset="test.bio", dataset_sha256="8" * 64,
            started_at=T0 + timedelta(days=day), finished_at=T0 + timedelta(days=day, minutes=1),
            n_sentences=100, precision=1.0, recall=1.0, f1=1.0, trigger="scheduled",
            per_label={label: {"precision": 0, "recall": 0, "f1": f1s[day], "support": 9} for label, f1s in F1.items()},
        )
    return {"a": a, "b": b, "model": model}


def expected(name: str, ids: dict[str, Any]) -> tuple[dict[str, Any], list[tuple]]:
    """(parameters, rows) for each documented query, from the examples' known contents."""
    def director(i: int) -> str:
        return " ".join(sentence(i)[5:7])

    return {
        "directors_across_jobs": ({}, [(ids[job], job, i, director(i)) for job in "ab" for i in range(5)]),
        "top_directors": (
            {"job_id": ids["a"]},
            [("steven spielberg", 2), ("james cameron", 1), ("ridley scott", 1), ("sofia coppola", 1)],
        ),
        "job_progress": ({"job_id": ids["a"]}, [("a", "running", 10, 5, 5, 50.0)]),
        "job_chunks": ({"job_id": ids["a"]}, [("done", 1, 5), ("failed", 1, 5)]),
        "entities_in_context": (
            {"job_id": ids["b"]},
            [
                (i, label, span, sentence(i))
                for i in range(5)
                for label, span in (("Director", director(i)), ("Year", str(1970 + i)))
            ],
        ),
        "confident_entities": (
            {"job_id": ids["b"], "min_score": 0.6},
            [(i, "Year", str(1970 + i), YEAR_SCORE) for i in range(5)]
            + [(i, "Director", director(i), director_score(i)) for i in (4, 3, 2)],
        ),
        "least_confident_sentences": ({"job_id": ids["b"]}, [(i, director_score(i), 2) for i in range(5)]),
        "mean_confidence_per_label": (
            {"job_id": ids["b"]},
            [("Director", 5, sum(map(director_score, range(5))) / 5), ("Year", 5, YEAR_SCORE)],
        ),
        "director_f1_over_time": ({}, [(ids["model"], f1) for f1 in F1["Director"]]),
        "f1_over_time_per_label": ({}, [(label, f1) for label, values in F1.items() for f1 in values]),
    }[name]


def normalized(row: Any) -> tuple:
    """JSON arrays come back as text from SQLite, as lists from PostgreSQL; numbers as Decimal
    or float; timestamps as text or datetime: compare values, and leave out timestamps."""
    values = []
    for value in row:
        if isinstance(value, str) and value.startswith("["):
            value = json.loads(value)
        elif isinstance(value, datetime) or (isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d ", value)):
            continue
        elif not isinstance(value, (str, int, list)):
            value = float(value)
        values.append(value)
    return tuple(values)


def test_the_doc_has_each_kind_of_query() -> None:
    assert {name: sorted(blocks) for name, blocks in QUERIES.items()} == {
        "directors_across_jobs": [""], "top_directors": [""], "job_progress": [""], "job_chunks": [""],
        "entities_in_context": [""], "confident_entities": [""], "least_confident_sentences": [""],
        "mean_confidence_per_label": [""],
        "director_f1_over_time": ["postgresql", "sqlite"], "f1_over_time_per_label": ["postgresql", "sqlite"],
    }


@pytest.mark.parametrize("name", QUERIES)
def test_documented_query(session: Session, kind: str, name: str) -> None:
    sql = QUERIES[name].get(kind) or QUERIES[name][""]
    params, rows = expected(name, load_examples(session))
    got = [normalized(row) for row in session.execute(text(sql), params)]
    assert got == [normalized(row) for row in rows]
