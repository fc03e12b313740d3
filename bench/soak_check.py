"""The soak's checks in SQL: each job complete and exact against the reference tagging, and
the totals of the report (sentences submitted, tagged, lost, duplicated)."""

from __future__ import annotations


def expected_tagging(model: str, device: str, queries: list[list[str]]) -> list[list[str]]:
    import torch

    from model import Tagger

    torch.set_num_threads(1)  # the workers' setting (NERQ_TORCH_THREADS=1)
    return Tagger.load(model, device).tag(queries)


def exactness(url: str, job_id: int, n: int, expected: list[list[str]]) -> dict:
    """Counts of every kind of mismatch between the stored job and the reference tagging,
    computed in SQL against temporary tables of the 1953 expected tag lists and spans."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, and_, func, insert, select

    import storage
    from model.spans import bio_spans
    from storage.schema import Chunk, Entity, Job, JSONDocument, Sentence

    base = len(expected)
    meta = MetaData()
    exp = Table("soak_expected", meta, Column("base_idx", Integer, primary_key=True), Column("tags", JSONDocument),
                Column("n_entities", Integer), prefixes=["TEMPORARY"])
    exp_spans = Table("soak_expected_spans", meta, Column("base_idx", Integer), Column("label", String(64)),
                      Column("start", Integer), Column("end", Integer), prefixes=["TEMPORARY"])
    s, e, c = Sentence.__table__, Entity.__table__, Chunk.__table__
    counts: dict[str, int] = {}
    with storage.get_engine(url).connect() as conn:  # one connection: temporary tables live in it
        meta.create_all(conn)
        conn.execute(insert(exp), [{"base_idx": i, "tags": t, "n_entities": len(bio_spans(t))}
                                   for i, t in enumerate(expected)])
        conn.execute(insert(exp_spans), [{"base_idx": i, "label": sp.label, "start": sp.start, "end": sp.end}
                                         for i, t in enumerate(expected) for sp in bio_spans(t)])

        def scalar(stmt) -> int:  # noqa: ANN001
            return int(conn.execute(stmt).scalar_one() or 0)

        job = conn.execute(select(Job.status, Job.n_sentences, Job.n_done, Job.n_failed).where(Job.id == job_id)).one()
        mine = s.c.job_id == job_id
        per_sentence = s.join(exp, exp.c.base_idx == s.c.idx % base)
        counts["job_not_done"] = int(job.status != "done")
        counts["n_sentences_wrong"] = int(job.n_sentences != n)
        counts["n_done_short"] = n - job.n_done
        counts["n_failed"] = job.n_failed
        in_range = s.c.idx.between(0, n - 1)
        counts["missing_sentences"] = n - scalar(select(func.count()).select_from(s).where(mine, in_range))
        counts["extra_sentences"] = scalar(select(func.count()).select_from(s).where(mine, ~in_range))
        counts["untagged_sentences"] = scalar(select(func.count()).select_from(s).where(mine, s.c.tags.is_(None)))
        counts["wrong_tags"] = scalar(select(func.count()).select_from(per_sentence)
                                      .where(mine, s.c.tags.is_not(None), s.c.tags != exp.c.tags))
        dup = (select(e.c.sentence_idx).where(e.c.job_id == job_id)
               .group_by(e.c.sentence_idx, e.c.start).having(func.count() > 1).subquery())
        counts["duplicate_entities"] = scalar(select(func.count()).select_from(dup))
        per_idx = (select(e.c.sentence_idx, func.count().label("n")).where(e.c.job_id == job_id)
                   .group_by(e.c.sentence_idx).subquery())
        counts["wrong_entity_count"] = scalar(
            select(func.count()).select_from(per_sentence.outerjoin(per_idx, per_idx.c.sentence_idx == s.c.idx))
            .where(mine, func.coalesce(per_idx.c.n, 0) != exp.c.n_entities))
        counts["unexpected_entities"] = scalar(
            select(func.count()).select_from(e.outerjoin(exp_spans, and_(
                exp_spans.c.base_idx == e.c.sentence_idx % base, exp_spans.c.label == e.c.label,
                exp_spans.c.start == e.c.start, exp_spans.c.end == e.c.end)))
            .where(e.c.job_id == job_id, exp_spans.c.base_idx.is_(None)))
        entities = scalar(select(func.count()).select_from(e).where(e.c.job_id == job_id))
        retried = conn.execute(select(func.count().filter(c.c.attempts > 1), func.max(c.c.attempts), func.count(),
                                      func.sum(c.c.sends)).where(c.c.job_id == job_id)).one()
        conn.rollback()  # nothing to keep: the temporary tables go with the connection
    per_query = [len(bio_spans(t)) for t in expected]
    expected_entities = sum(per_query[i % base] for i in range(n))
    return {
        "exact": not any(counts.values()) and entities == expected_entities,
        "mismatches": counts, "entities": entities, "expected_entities": expected_entities,
        "chunks": retried[2], "chunks_retried": retried[0], "max_attempts": retried[1] or 0,
        "chunks_resent": (retried[3] or 0) - retried[2],  # messages beyond bin/submit's one a chunk: the sweeper's
        "lost": counts["missing_sentences"] + counts["untagged_sentences"],
        "duplicated": counts["extra_sentences"] + counts["duplicate_entities"] + max(0, -counts["n_done_short"]),
    }


def totals(n: int, checks: dict[int, dict]) -> dict:
    """The report's sums over the jobs (each of n sentences): a sentence is lost if it has no
    row or no tags; duplicated counts extra rows, entities stored twice and sentences counted twice;
    chunks_resent_by_sweeper, the messages it sent (chunks.sends beyond each chunk's first)."""
    lost = sum(c["lost"] for c in checks.values())
    return {"sentences_submitted": n * len(checks), "sentences_tagged": n * len(checks) - lost,
            "sentences_lost": lost, "duplicated": sum(c["duplicated"] for c in checks.values()),
            "jobs_exact": sum(c["exact"] for c in checks.values()),
            "chunks_resent_by_sweeper": sum(c["chunks_resent"] for c in checks.values())}
