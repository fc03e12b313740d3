"""Sentences whose entities are known, a stand-in tagger for them, and the chunk writer the
multi-process tests run (importable by spawned children: this directory is on sys.path)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from storage import (
    EntityRow,
    add_sentences,
    create_chunks,
    create_job,
    finish_job_if_complete,
    load_chunk_text,
    save_tagged_chunk,
    session_scope,
)

DIRECTORS = ["steven spielberg", "james cameron", "sofia coppola", "steven spielberg", "ridley scott"]


def sentence(idx: int) -> list[str]:
    """e.g. "show me a movie by james cameron from 1971": a Director and a Year."""
    return ["show", "me", "a", "movie", "by", *DIRECTORS[idx % len(DIRECTORS)].split(), "from", str(1970 + idx % 50)]


def director_score(idx: int) -> float:
    """A Director's score: 0.5 to 0.75 in steps of 1/16 (exact in binary, so sums are too)."""
    return (8 + idx % 5) / 16


YEAR_SCORE = 15 / 16


def fake_tag(idx: int, tokens: list[str]) -> tuple[list[str], list[EntityRow]]:
    """The tags and scored entities a perfect tagger would give sentence(idx)."""
    by, year = tokens.index("by"), len(tokens) - 1
    tags = ["O"] * len(tokens)
    tags[by + 1 : year - 1] = ["B-Director"] + ["I-Director"] * (year - by - 3)
    tags[year] = "B-Year"
    director = " ".join(tokens[by + 1 : year - 1])
    at = len(" ".join(tokens[: by + 1])) + 1  # character offsets in the tokens joined by spaces
    return tags, [
        EntityRow(idx, "Director", by + 1, year - 1, director, director_score(idx), at, at + len(director)),
        EntityRow(idx, "Year", year, year + 1, tokens[year], YEAR_SCORE, at + len(director) + 6,
                  at + len(director) + 6 + len(tokens[year])),
    ]


def tag_chunk(session: Session, job_id: int, start: int, stop: int) -> tuple[dict[int, list[str]], list[EntityRow]]:
    tags: dict[int, list[str]] = {}
    entities: list[EntityRow] = []
    text = load_chunk_text(session, job_id, start, stop)
    for idx, words, tokens in zip(range(start, stop), text.words, text.tokens, strict=True):
        tags[idx], found = fake_tag(idx, tokens if words is None else words.split(" "))
        entities += found
    return tags, entities


def _child(work: Callable[..., Any], barrier: Any, results: Any, *args: Any) -> None:
    """Run work(*args) once every process is ready and report its result, or its exception's
    repr: a failing child fails the test at once instead of at a timeout."""
    try:
        barrier.wait(timeout=60)
        results.put(work(*args))
    except Exception as exc:  # reported to the parent, which fails
        results.put(f"{type(exc).__name__}: {exc}")


def write_chunks(url: str, job_id: int, chunks: list[tuple[int, int, int]]) -> list[str | None]:
    """A worker: write each chunk and try to finish the job in the same transaction; returns
    what finish_job_if_complete said each time."""
    finished = []
    for chunk in chunks:
        with session_scope(url) as session:
            write_chunk(session, job_id, chunk)
            finished.append(finish_job_if_complete(session, job_id))
    return finished


def run_together(work: Callable[..., Any], *arg_lists: tuple[Any, ...]) -> list[Any]:
    """Call work (a module-level function) in one spawned process per argument tuple, all
    released at once; return what each reported, in finishing order."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(arg_lists)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(work, barrier, results, *args)) for args in arg_lists]
    for p in procs:
        p.start()
    reported = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return reported


def make_job(
    session: Session, n: int, chunk_size: int, name: str = "job", queue: str | None = None
) -> tuple[int, list[tuple[int, int, int]]]:
    """A job of n sentence(i), split into chunks: (job id, chunks)."""
    job = create_job(session, name=name, input_path=f"{name}.txt", input_sha256="ab" * 32, input_format="text",
                     queue=queue)
    add_sentences(session, job.id, ((i, sentence(i)) for i in range(n)))
    return job.id, create_chunks(session, job.id, chunk_size)


def write_chunk(session: Session, job_id: int, chunk: tuple[int, int, int]) -> int | None:
    chunk_idx, start, stop = chunk
    return save_tagged_chunk(session, job_id, chunk_idx, *tag_chunk(session, job_id, start, stop))
