"""bin/results on a cancelled job says that the job was cancelled, not that chunks failed."""

from __future__ import annotations

from pathlib import Path

import storage
from tests.support.procs import run_bin


def test_results_of_a_cancelled_job_say_so(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'nerq.db'}"
    with storage.session_scope(url) as session:
        job = storage.create_job(session, name="j", input_path="in.txt", input_sha256="0" * 64, input_format="text")
        storage.add_sentences(session, job.id, [(0, ["who", "directed", "jaws"]), (1, ["funny", "movies"])])
        storage.create_chunks(session, job.id, 1)
        assert storage.cancel_job(session, job.id)
    res = run_bin("results", str(job.id), env={"NERQ_DATABASE_URL": url})
    assert res.returncode == 1, res.stderr
    assert res.stdout == "who\t-\ndirected\t-\njaws\t-\n\nfunny\t-\nmovies\t-\n\n"
    assert res.stderr == (f"bin/results: warning: 2 sentences have no tags (job {job.id} was cancelled before "
                          "they were tagged): idx 0, 1\n")
