"""bin/review: its scores and ranking as pure functions, then every strategy and format on a real
job (raw text submitted, tagged in this process with the tiny model, SQLite), set against what
bin/results exports of the same job, and its one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from model.uncertainty import SentenceDoubt
from storage import EntityRow, SentenceResult
from tests.support.procs import run_bin
from tests.worker.test_cli_errors import one_line_error
from tests.worker.test_exports import export, tag_in_process
from worker.results import review_job
from worker.review import (MISS_WEIGHT, NEEDS_MODEL, STRATEGIES, Candidate, Pick, expected_errors, lowest_score,
                           select, token_key, top_distinct)

COUNT = 40


def sentence(idx: int, tokens: str, scores: list[float], tagged: bool = True) -> SentenceResult:
    words = tokens.split()
    entities = [EntityRow(idx, "Actor", k, k + 1, words[k], s) for k, s in enumerate(scores)]
    return SentenceResult(idx, words, None, ["O"] * len(words) if tagged else None, entities)


def doubt(words: int, expected: float = 0.0, surprise: float = 0.0, unseen: float = 0.0) -> SentenceDoubt:
    return SentenceDoubt(words, unseen, surprise, expected)


def test_lowest_score_is_the_least_certain_entitys_doubt_per_token():
    assert lowest_score(Candidate(sentence(0, "a b c d", [0.9, 0.6]), None)) == pytest.approx(0.4 / 4)
    assert lowest_score(Candidate(sentence(0, "a b", []), None)) == 0.0


def test_expected_errors_count_wrong_and_weighted_missed_entities_per_word():
    c = Candidate(sentence(0, "a b c d", [0.9, 0.6]), doubt(4, expected=2.5))
    wrong, missed = 0.1 + 0.4, 2.5 - 1.5
    assert expected_errors(c) == pytest.approx((wrong + MISS_WEIGHT * missed) / 4)
    found_nothing = Candidate(sentence(1, "a b", []), doubt(2, expected=0.4))
    assert expected_errors(found_nothing) == pytest.approx(MISS_WEIGHT * 0.4 / 2)  # no entity, yet worth a look


def test_top_distinct_ranks_best_first_keeps_input_order_on_ties_and_each_token_list_once():
    a, b = token_key(["a"]), token_key(["b"])
    scored = [(0.5, 0, a), (0.9, 1, b), (0.9, 2, a), (0.5, 3, token_key(["c"])), (0.1, 4, token_key(["d"]))]
    assert top_distinct(scored, 3) == [Pick(1, 0.9), Pick(2, 0.9), Pick(3, 0.5)]
    assert token_key(["a b"]) != token_key(["a", "b"])


def test_select_leaves_out_untagged_and_skipped_sentences():
    candidates = [Candidate(sentence(i, f"w{i} x", [0.1 * i], tagged=i != 2), None) for i in range(5)]
    picks = select(candidates, "lowest-score", 10, skip=lambda r: r.idx == 0)
    assert [p.idx for p in picks] == [1, 3, 4]


def test_seeded_random_picks_are_reproducible():
    candidates = [Candidate(sentence(i, f"w{i}", []), None) for i in range(50)]
    assert select(candidates, "random", 10, seed=7) == select(candidates, "random", 10, seed=7)
    assert select(candidates, "random", 10, seed=7) != select(candidates, "random", 10, seed=8)


@pytest.fixture(scope="module")
def review_queries(tmp_path_factory: pytest.TempPathFactory, test_file: Path) -> Path:
    """150 test queries, 30 of them twice, and a line the model reads no word of."""
    from model.corpus import read_corpus

    lines = [" ".join(s.tokens) for s in read_corpus(test_file)[:150]]
    path = tmp_path_factory.mktemp("review") / "queries.txt"
    path.write_text("".join(line + "\n" for line in [*lines, *lines[:30], "?!"]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def review_db(tmp_path_factory, review_queries, tiny_model) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'review.db'}"
    with pytest.MonkeyPatch.context() as mp:
        yield url, tag_in_process(mp, url, review_queries, tiny_model)


@pytest.fixture
def job(review_db, monkeypatch) -> int:
    monkeypatch.setenv("NERQ_DATABASE_URL", review_db[0])
    return review_db[1]


def reviewed(job_id: int, strategy: str, fmt: str = "jsonl", count: int = COUNT, seed: int = 0) -> str:
    out = io.StringIO()
    review_job(job_id, strategy, count, fmt, out, seed=seed, device="cpu")
    return out.getvalue()


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_picks_n_distinct_sentences_best_first(job, strategy):
    picks = jsonl(reviewed(job, strategy))
    assert len(picks) == COUNT
    assert len({tuple(o["tokens"]) for o in picks}) == COUNT  # so distinct sentences too
    scores = [o["selection_score"] for o in picks]
    assert scores == sorted(scores, reverse=True)
    if strategy in NEEDS_MODEL:
        assert scores[0] > 0


def test_seeded_random_reviews_are_reproducible(job):
    assert reviewed(job, "random", seed=3) == reviewed(job, "random", seed=3) != reviewed(job, "random", seed=4)


def test_jsonl_objects_are_bin_results_objects_plus_the_selection_score(job):
    results = {o["idx"]: o for o in jsonl(export(job, "jsonl"))}
    for o in jsonl(reviewed(job, "expected-errors")):
        score = o.pop("selection_score")
        assert o == results[o["idx"]] and isinstance(score, float)


def test_label_studio_tasks_name_the_job_and_sentence_and_carry_the_predictions(job):
    results = {t["data"]["idx"]: t for t in json.loads(export(job, "label-studio"))}
    picks = jsonl(reviewed(job, "sequence"))
    tasks = json.loads(reviewed(job, "sequence", "label-studio"))
    assert [t["data"]["idx"] for t in tasks] == [o["idx"] for o in picks]
    for task, pick in zip(tasks, picks):
        assert task["data"] == {**results[pick["idx"]]["data"], "job_id": job, "selection_score": pick["selection_score"]}
        assert task["predictions"] == results[pick["idx"]]["predictions"]
    assert any(t["predictions"][0]["result"] for t in tasks)


def test_bin_review_writes_the_picks_as_conll(job, review_db, tmp_path):
    out = tmp_path / "review.conll"
    res = run_bin("review", str(job), "--strategy", "lowest-score", "--count", "5", "--format", "conll",
                  "-o", str(out), env={"NERQ_DATABASE_URL": review_db[0]})
    assert res.returncode == 0, res.stderr
    picks = jsonl(reviewed(job, "lowest-score", count=5))
    assert out.read_text(encoding="utf-8") == "".join(
        "".join(f"{t}\t{g}\n" for t, g in zip(o["tokens"], o["tags"])) + "\n" for o in picks)


@pytest.mark.parametrize(("args", "expected"), [
    (["999", "--strategy", "random", "--count", "5"], "999"),
    (["JOB", "--strategy", "random", "--count", "0"], "--count must be at least 1"),
    (["JOB", "--strategy", "sequence", "--count", "5", "-o", "/nonexistent/dir/out.json"], "/nonexistent/dir"),
])
def test_bad_requests_are_one_line_and_exit_2(job, review_db, tmp_path, args, expected):
    args = [str(job) if a == "JOB" else a for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out.json")]
    res = run_bin("review", *args, env={"NERQ_DATABASE_URL": review_db[0]})
    assert one_line_error(res, expected).startswith("bin/review: error: ")
    assert not (tmp_path / "out.json").exists()
