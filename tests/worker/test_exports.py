"""Every export format on a real job: raw text submitted, tagged by the chunk task in this
process (embedded SQLite; once on PostgreSQL), exported through the Python API and bin/results,
and checked against the stored results, bin/tag and Label Studio's documented task shape."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from model.spans import bio_spans
from model.tokenizer import tokenize
from tests.support.procs import run_bin
from worker.chunks import run_chunk
from worker.exports import CSV_COLUMNS
from worker.results import export_job
from worker.submit import create_job

TYPED = [
    'Who played Jack in "Titanic" (1997)?',
    "Films directed by Steven Spielberg?",
    "?!",
    'Is "Jaws, the Revenge" a 1980s movie, with Michael Caine?',
    "steven spielberg shark movie",
    "Spider-Man's villain in the U.S. version, don't you know?",
]


def tag_in_process(monkeypatch: pytest.MonkeyPatch, url: str, queries: Path, model: Path) -> int:
    """bin/submit's embedded mode, step by step: store the input, run each chunk's task."""
    monkeypatch.setenv("NERQ_DATABASE_URL", url)
    job_id, chunks = create_job(str(queries), "text", name="typed", model_dir=str(model), chunk_size=7)
    for chunk_idx, _, _ in chunks:
        assert run_chunk(job_id, chunk_idx, "cpu").status == "done"
    return job_id


def export(job_id: int, fmt: str, **options) -> str:
    out = io.StringIO()
    assert export_job(job_id, fmt, out, **options) == []  # every sentence tagged
    return out.getvalue()


@pytest.fixture(scope="module")
def typed_queries(tmp_path_factory: pytest.TempPathFactory, test_file: Path) -> tuple[Path, list[str]]:
    """The issue's examples, then 300 test queries with a capital first letter and a question mark."""
    from model.corpus import read_corpus

    lines = TYPED + [" ".join(s.tokens).capitalize() + "?" for s in read_corpus(test_file)[:300]]
    path = tmp_path_factory.mktemp("typed") / "typed.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path, lines


@pytest.fixture(scope="module")
def sqlite_job(tmp_path_factory, typed_queries, tiny_model) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'exports.db'}"
    with pytest.MonkeyPatch.context() as mp:
        yield url, tag_in_process(mp, url, typed_queries[0], tiny_model)


@pytest.fixture
def job(sqlite_job, monkeypatch) -> int:
    monkeypatch.setenv("NERQ_DATABASE_URL", sqlite_job[0])
    return sqlite_job[1]


def test_jsonl_gives_the_original_text_and_entities_at_its_characters(job, typed_queries):
    lines = typed_queries[1]
    objs = [json.loads(line) for line in export(job, "jsonl").splitlines()]
    assert [o["idx"] for o in objs] == list(range(len(lines))) and [o["text"] for o in objs] == lines
    assert objs[0]["tokens"] == ["Who", "played", "Jack", "in", '"', "Titanic", '"', "(", "1997", ")", "?"]
    assert objs[2]["tags"] == ["O", "O"] and objs[2]["entities"] == []
    for o in objs:
        assert o["tokens"] == [t.text for t in tokenize(o["text"])] and len(o["tags"]) == len(o["tokens"])
        assert [(e["label"], e["start"], e["end"]) for e in o["entities"]] == list(map(tuple, bio_spans(o["tags"])))
        for e in o["entities"]:
            assert o["text"][e["char_start"] : e["char_end"]] == e["text"]
            assert 0.0 <= e["score"] <= 1.0
    assert sum(len(o["entities"]) for o in objs) > 100
    conll = "".join("".join(f"{tok}\t{tag}\n" for tok, tag in zip(o["tokens"], o["tags"])) + "\n" for o in objs)
    assert export(job, "conll") == conll


def test_bin_tag_gives_the_same_tags_offsets_and_scores_as_the_job(job, typed_queries, tiny_model):
    """Chunks of 7 in the worker, bin/tag's own batches: the same tags, offsets and texts, and
    scores that agree to float rounding (the default precision is bf16 on AMX CPUs, whose matrix
    kernels round differently for other batch shapes)."""
    res = run_bin("tag", "--model", str(tiny_model), str(typed_queries[0]), "--output-format", "jsonl")
    assert res.returncode == 0, res.stderr
    ours, theirs = ([json.loads(line) for line in out.splitlines()] for out in (res.stdout, export(job, "jsonl")))
    scores = [[e.pop("score") for e in o["entities"]] for o in ours]
    assert ours == [{**o, "entities": [{k: v for k, v in e.items() if k != "score"} for e in o["entities"]]}
                    for o in theirs]
    assert scores == [[pytest.approx(e["score"], rel=1e-4, abs=1e-12) for e in o["entities"]] for o in theirs]


def test_csv_has_one_row_per_entity_and_survives_commas_and_quotes(job):
    objs = [json.loads(line) for line in export(job, "jsonl").splitlines()]
    rows = list(csv.DictReader(io.StringIO(export(job, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = [(o["idx"], e, o["text"]) for o in objs for e in o["entities"]]
    assert len(rows) == len(expected)
    for row, (idx, e, line) in zip(rows, expected):
        assert int(row["sentence_idx"]) == idx and row["sentence"] == line
        assert row["text"] == e["text"] and float(row["score"]) == e["score"]
        assert (int(row["char_start"]), int(row["char_end"]), row["label"]) == (e["char_start"], e["char_end"], e["label"])
    assert any("," in r["sentence"] and '"' in r["sentence"] for r in rows)


def check_label_studio_task(task: dict) -> None:
    """The documented import shape for pre-annotated text spans: ``data`` holding the text and
    ``predictions`` [{model_version, score, result: [{id, from_name, to_name, type: "labels",
    value: {start, end, text, labels}, score}]}]."""
    assert set(task) == {"data", "predictions"} and isinstance(task["data"]["text"], str)
    for prediction in task["predictions"]:
        assert {"model_version", "result"} <= set(prediction) <= {"model_version", "result", "score"}
        for r in prediction["result"]:
            assert set(r) == {"id", "from_name", "to_name", "type", "value", "score"}
            assert (r["from_name"], r["to_name"], r["type"]) == ("label", "text", "labels")
            value = r["value"]
            assert set(value) == {"start", "end", "text", "labels"} and len(value["labels"]) == 1
            assert task["data"]["text"][value["start"] : value["end"]] == value["text"]
            assert 0.0 <= r["score"] <= 1.0
        if prediction["result"]:
            assert prediction["score"] == min(r["score"] for r in prediction["result"])


def test_label_studio_tasks_have_the_documented_shape(job, typed_queries):
    tasks = json.loads(export(job, "label-studio"))
    assert [t["data"]["text"] for t in tasks] == typed_queries[1]
    for task in tasks:
        check_label_studio_task(task)
    ids = [r["id"] for t in tasks for p in t["predictions"] for r in p["result"]]
    assert len(ids) == len(set(ids)) > 100  # every result item has an id of its own
    assert tasks[0]["predictions"][0]["model_version"].startswith("tiny@")


def test_min_score_drops_unsure_entities_and_their_tags(job):
    full = [json.loads(line) for line in export(job, "jsonl").splitlines()]
    scores = sorted(e["score"] for o in full for e in o["entities"])
    cut = scores[len(scores) // 2]
    kept = [json.loads(line) for line in export(job, "jsonl", min_score=cut).splitlines()]
    assert [o["tokens"] for o in kept] == [o["tokens"] for o in full]
    for before, after in zip(full, kept):
        assert after["entities"] == [e for e in before["entities"] if e["score"] >= cut]
        assert [(e["label"], e["start"], e["end"]) for e in after["entities"]] == list(map(tuple, bio_spans(after["tags"])))
    tsv = export(job, "entities", min_score=cut).splitlines()
    assert tsv[0] == "sentence_idx\tlabel\tstart\tend\ttext"
    assert len(tsv) - 1 == sum(s >= cut for s in scores)


def test_max_score_exports_only_sentences_worth_a_review(job):
    full = [json.loads(line) for line in export(job, "jsonl").splitlines()]
    cut = sorted(e["score"] for o in full for e in o["entities"])[10]
    tasks = json.loads(export(job, "label-studio", max_score=cut))
    unsure = [o["idx"] for o in full if any(e["score"] < cut for e in o["entities"])]
    assert [t["data"]["idx"] for t in tasks] == unsure and 0 < len(unsure) < len(full)


def test_bin_results_writes_each_format_and_refuses_a_bad_threshold(job, sqlite_job, tmp_path):
    env = {"NERQ_DATABASE_URL": sqlite_job[0], "NERQ_BROKER_URL": ""}
    target = tmp_path / "review.json"
    res = run_bin("results", str(job), "--format", "label-studio", "--max-score", "0.99", "-o", str(target), env=env)
    assert res.returncode == 0, res.stderr
    assert target.read_text(encoding="utf-8") == export(job, "label-studio", max_score=0.99)
    bad = run_bin("results", str(job), "--min-score", "1.5", env=env)
    assert bad.returncode == 2 and "probability" in bad.stderr and "Traceback" not in bad.stderr


def test_the_same_job_on_postgresql_exports_the_same(pg_url, typed_queries, tiny_model, job, monkeypatch):
    sqlite_jsonl = export(job, "jsonl")
    pg_job = tag_in_process(monkeypatch, pg_url, typed_queries[0], tiny_model)
    for fmt in ("jsonl", "csv", "conll"):
        monkeypatch.setenv("NERQ_DATABASE_URL", pg_url)
        got = export(pg_job, fmt)
        if fmt == "jsonl":
            assert got == sqlite_jsonl
        assert got.count("\n") > 300
