"""Speed of storage/'s bulk paths, on a fresh SQLite file and/or a fresh PostgreSQL database:
add_sentences (with the model's words, as bin/submit stores them), then save_tagged_chunk of
every chunk with its entities (one transaction each, tags as JSON and entities as tuples, as
workers pass them), then load_chunk_text of every chunk (as workers read them) and the
exports iter_job_results and iter_job_entities. Sentences and their gold entities come from
the corpus test file, repeated up to --n. Prints one JSON object; rates are medians over
--repeats, and save_vs_add is the sink's rate against add_sentences' (target >= 0.5).

    .venv/bin/python bench/bench_storage.py --n 100000 --db both
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.orm import Session  # noqa: E402

from model.corpus import read_corpus  # noqa: E402
from model.data import default_test_file  # noqa: E402
from model.annotate import plain_words  # noqa: E402
from model.spans import bio_spans  # noqa: E402
from storage import (  # noqa: E402
    add_sentences,
    create_chunks,
    create_job,
    get_engine,
    iter_job_entities,
    iter_job_results,
    json_tag_lists,
    load_chunk_text,
    save_tagged_chunk,
    session_scope,
)
from tests.support.scratch import KINDS, scratch_database  # noqa: E402

Example = tuple[list[str], list[str], list[tuple]]  # tokens, tags, (label, start, end, text, score, char offsets)


TAG_NAMES: list[str] = []  # the tags seen, in order: tags as the ids a model gives


def tag_ids(tags: list[str]) -> list[int]:
    for tag in tags:
        if tag not in TAG_NAMES:
            TAG_NAMES.append(tag)
    return [TAG_NAMES.index(tag) for tag in tags]


def load_examples(path: Path) -> list[Example]:
    examples = []
    for s in read_corpus(path):
        tags = s.tags or []
        spans = []
        for sp in bio_spans(tags):
            at = len(" ".join(s.tokens[: sp.start])) + (sp.start > 0)  # offsets in the tokens joined by spaces
            text = " ".join(s.tokens[sp.start : sp.end])
            spans.append((sp.label, sp.start, sp.end, text, 0.5, at, at + len(text)))
        examples.append((s.tokens, tags, spans))
    return examples


def timed(url: str, work: Callable[..., object], *args: object) -> float:
    """Seconds to run work(session, *args) in its own transaction, commit included."""
    start = time.perf_counter()
    with session_scope(url) as session:
        work(session, *args)
    return time.perf_counter() - start


def read_all(session: Session, job_id: int, n: int) -> None:
    assert sum(1 for _ in iter_job_results(session, job_id)) == n


def read_entities(session: Session, job_id: int, n_entities: int) -> None:
    assert sum(1 for _ in iter_job_entities(session, job_id)) == n_entities


def load_chunks(url: str, job_id: int, chunks: list[tuple[int, int, int]]) -> float:
    """Seconds to read every chunk's sentences, each in its own transaction as a worker does."""
    start = time.perf_counter()
    for _, first, stop in chunks:
        with session_scope(url) as session:
            assert len(load_chunk_text(session, job_id, first, stop).words) == stop - first
    return time.perf_counter() - start


def one_run(url: str, examples: list[Example], n: int, n_entities: int, chunk_size: int) -> dict[str, float]:
    """Seconds for each phase of storing and reading one n-sentence job."""
    with session_scope(url) as s:
        job_id = create_job(s, name="bench", input_path="bench", input_sha256="0" * 64, input_format="bio").id
    sentences = ((i, tokens, None, plain_words(tokens)) for i in range(n) for tokens in [examples[i % len(examples)][0]])
    seconds = {"add_sentences": timed(url, add_sentences, job_id, sentences)}
    with session_scope(url) as s:
        chunks = create_chunks(s, job_id, chunk_size)

    seconds["save_tagged_chunk"] = 0.0
    for chunk_idx, start, stop in chunks:
        rows = [(i, examples[i % len(examples)]) for i in range(start, stop)]
        tags = list(zip(range(start, stop), json_tag_lists(TAG_NAMES, [tag_ids(ex[1]) for _, ex in rows])))
        entities = [(i, *span) for i, ex in rows for span in ex[2]]
        seconds["save_tagged_chunk"] += timed(url, save_tagged_chunk, job_id, chunk_idx, tags, entities)

    seconds["load_chunk_text"] = load_chunks(url, job_id, chunks)
    seconds["iter_job_results"] = timed(url, read_all, job_id, n)
    seconds["iter_job_entities"] = timed(url, read_entities, job_id, n_entities)
    return seconds


def bench(
    kind: str, examples: list[Example], n: int, n_entities: int, chunk_size: int, repeats: int
) -> dict[str, Any]:
    with scratch_database(kind) as url:
        get_engine(url)  # migrate outside the timings
        runs = [one_run(url, examples, n, n_entities, chunk_size) for _ in range(repeats)]
    report: dict[str, Any] = {}
    for phase in runs[0]:
        median = statistics.median(run[phase] for run in runs)
        report[phase] = {"seconds": round(median, 3), "sentences_per_s": round(n / median)}
        if phase in ("save_tagged_chunk", "iter_job_entities"):
            report[phase]["entity_rows_per_s"] = round(n_entities / median)
    report["save_vs_add"] = round(
        report["save_tagged_chunk"]["sentences_per_s"] / report["add_sentences"]["sentences_per_s"], 3
    )
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="sentences in the job")
    p.add_argument("--db", choices=[*KINDS, "both"], default="both")
    p.add_argument("--chunk-size", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--corpus", type=Path, help="BIO file to take sentences from (default: corpus test file)")
    args = p.parse_args()

    examples = load_examples(args.corpus or default_test_file())
    n_entities = sum(len(examples[i % len(examples)][2]) for i in range(args.n))
    result: dict[str, object] = {
        "n_sentences": args.n, "n_entities": n_entities, "chunk_size": args.chunk_size, "repeats": args.repeats,
    }
    for kind in KINDS if args.db == "both" else (args.db,):
        result[kind] = bench(kind, examples, args.n, n_entities, args.chunk_size, args.repeats)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
