"""Which of a job's sentences are worth a person's review (bin/review): every tagged sentence
scored by a strategy, the highest first, each token list once.

Strategies (a higher score: more worth a look; per word, as errors are counted per token):

- ``expected-errors``: the entities the model expects to be wrong (1 - each one's score) and,
  weighted ``MISS_WEIGHT``, those it expects to have missed (the CRF's expected entity count
  less the found entities' scores), per word. The best on the test queries
  (bench/bench_review.py);
- ``sequence``: -log P(best tag sequence) per word, from the CRF (model.uncertainty): it also
  finds the sentences where the model found nothing, but should have;
- ``lowest-score``: the least certain entity's doubt (1 - its score), per token;
- ``unseen-words``: the share of its words the model has no vector for;
- ``random``: the baseline, seeded.

The strategies that read the model (``NEEDS_MODEL``) need each sentence's doubt: the job's
model version run again over its sentences (worker.results.review_job); the others need the
stored results alone. Pure functions: no database, no model.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple, TextIO

from .errors import InvalidRequest
from .exports import ResultLike, jsonl_object, label_studio_task, write_conll, write_json_list

if TYPE_CHECKING:
    from model.uncertainty import SentenceDoubt

# The model misses more entities than it expects to (2164 against 1853 on the test queries)
# while its wrong entities match their scores (896 against 902): misses weigh more. 1.5 picks
# more errors than 1 on each half of the test queries (bench/bench_review.py).
MISS_WEIGHT = 1.5


class Candidate(NamedTuple):
    """A sentence and, for the strategies that read the model, its doubt (else None)."""

    result: ResultLike
    doubt: SentenceDoubt | None


class Pick(NamedTuple):
    idx: int
    score: float


Scorer = Callable[[Candidate], float]


def _scores(r: ResultLike) -> list[float]:
    return [e.score for e in r.entities if e.score is not None]


def _doubt(c: Candidate) -> SentenceDoubt:
    assert c.doubt is not None, "a strategy of NEEDS_MODEL was given no doubts"
    return c.doubt


def lowest_score(c: Candidate) -> float:
    """1 - the least certain entity's score, per token; 0 without entities."""
    scores = _scores(c.result)
    return (1.0 - min(scores)) / len(c.result.tokens) if scores else 0.0


def unseen_words(c: Candidate) -> float:
    return _doubt(c).unseen


def sequence(c: Candidate) -> float:
    return _doubt(c).surprise


def expected_errors(c: Candidate) -> float:
    """Expected wrong entities, plus MISS_WEIGHT times the expected missed ones, per word."""
    doubt, scores = _doubt(c), _scores(c.result)
    wrong = len(scores) - sum(scores)
    missed = max(doubt.expected_entities - sum(scores), 0.0)
    return (wrong + MISS_WEIGHT * missed) / max(doubt.words, 1)


SCORERS: dict[str, Scorer] = {
    "expected-errors": expected_errors, "sequence": sequence, "lowest-score": lowest_score,
    "unseen-words": unseen_words,
}
STRATEGIES = (*SCORERS, "random")
NEEDS_MODEL = frozenset({"expected-errors", "sequence", "unseen-words"})


def scorer(strategy: str, seed: int) -> Scorer:
    """The strategy's score; random draws one a sentence, the same ones for the same seed."""
    if strategy == "random":
        rng = random.Random(seed)
        return lambda _: rng.random()
    return SCORERS[strategy]


def in_a_dataset(r: ResultLike) -> bool:
    """Whether a person has the sentence already (skipped)."""
    return False  # No-op until the datasets table exists (issue 39, another section).


def token_key(tokens: Iterable[str]) -> bytes:
    """A token list as 16 bytes: a job's worth of them is held while ranking, not its tokens."""
    return hashlib.blake2b(json.dumps(list(tokens)).encode(), digest_size=16).digest()


def top_distinct(scored: Iterable[tuple[float, int, bytes]], count: int) -> list[Pick]:
    """The ``count`` best (score, idx, token_key), highest score first (ties: input order),
    each token list once."""
    seen: set[bytes] = set()
    picks: list[Pick] = []
    for score, idx, key in sorted(scored, key=lambda s: (-s[0], s[1])):
        if len(picks) == count:
            break
        if key not in seen:
            seen.add(key)
            picks.append(Pick(idx, score))
    return picks


def check_count(count: int) -> None:
    """A review of no sentences is a mistake worth one line (bin/review: error: ...)."""
    if count < 1:
        raise InvalidRequest(f"--count must be at least 1, not {count}")


def select(candidates: Iterable[Candidate], strategy: str, count: int, *, seed: int = 0,
           skip: Callable[[ResultLike], bool] = in_a_dataset) -> list[Pick]:
    """The tagged sentences worth a review, best first; those ``skip`` names are left out."""
    check_count(count)
    score = scorer(strategy, seed)
    return top_distinct(((score(c), c.result.idx, token_key(c.result.tokens)) for c in candidates
                         if c.result.tags is not None and not skip(c.result)), count)


Picked = list[tuple[ResultLike, Pick]]


def picked_results(results: Iterable[ResultLike], picks: list[Pick]) -> Picked:
    """The picked sentences out of the job's stream, in pick order."""
    rank = {p.idx: k for k, p in enumerate(picks)}
    chosen = sorted((rank[r.idx], r) for r in results if r.idx in rank)
    return [(r, picks[k]) for k, r in chosen]


def review_task(r: ResultLike, pick: Pick, job_id: int, model_version: str) -> dict:
    """bin/results' Label Studio task, its data also naming the job and the selection score."""
    task = label_studio_task(r, model_version)
    task["data"].update(job_id=job_id, selection_score=pick.score)
    return task


def _label_studio(out: TextIO, picked: Picked, job_id: int, model_version: str) -> None:
    write_json_list(out, (review_task(r, p, job_id, model_version) for r, p in picked))


def _jsonl(out: TextIO, picked: Picked, job_id: int, model_version: str) -> None:
    for r, p in picked:
        out.write(json.dumps({**jsonl_object(r), "selection_score": p.score}, ensure_ascii=False) + "\n")


def _conll(out: TextIO, picked: Picked, job_id: int, model_version: str) -> None:
    for r, _ in picked:
        write_conll(out, r.tokens, r.tags or [])


WRITERS: dict[str, Callable[[TextIO, Picked, int, str], None]] = {
    "label-studio": _label_studio, "jsonl": _jsonl, "conll": _conll,
}
FORMATS = tuple(WRITERS)


def write_review(out: TextIO, picked: Picked, fmt: str, job_id: int, model_version: str) -> None:
    """The picked sentences, in pick order, in one of FORMATS."""
    WRITERS[fmt](out, picked, job_id, model_version)
