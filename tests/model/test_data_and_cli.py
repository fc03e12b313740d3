from __future__ import annotations

import http.server
import json
import threading
from functools import partial

import pytest

from model import data
from tests.support.procs import run_bin


def test_explicit_dir_and_env_take_precedence(tmp_path, monkeypatch, small_data_dir):
    assert data.find_corpus(small_data_dir) == small_data_dir
    monkeypatch.setenv("NERQ_DATA_DIR", str(small_data_dir))
    assert data.find_corpus() == small_data_dir
    with pytest.raises(data.CorpusNotFound, match="no trivia10k13train.bio"):
        data.find_corpus(tmp_path)


def test_download_from_a_server(tmp_path, monkeypatch, small_data_dir):
    """The download path is real: it fetches over HTTP from a server on loopback."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(small_data_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(data, "REPO_ROOT", tmp_path / "nowhere" / "repo")
        monkeypatch.setenv("NERQ_CORPUS_URL", f"http://127.0.0.1:{server.server_port}/")
        found = data.find_corpus()
    finally:
        server.shutdown()
    assert found.resolve() == (tmp_path / "data" / "mit_movie_trivia").resolve()
    assert (found / data.TEST_FILE).read_bytes() == (small_data_dir / data.TEST_FILE).read_bytes()


def test_download_failure_is_clear_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "REPO_ROOT", tmp_path / "nowhere" / "repo")
    monkeypatch.setenv("NERQ_CORPUS_URL", "http://127.0.0.1:9/no-such-corpus/")
    with pytest.raises(data.CorpusNotFound, match=r"could not download http://127.0.0.1:9/"):
        data.find_corpus()
    assert list((tmp_path / "data" / "mit_movie_trivia").iterdir()) == []


def test_bin_tag_text_and_bio_inputs(tiny_model, tmp_path, test_file):
    queries = tmp_path / "q.txt"
    queries.write_text("steven spielberg shark movie\n\nfunny 1990s comedies\n")
    out = run_bin("tag", "--model", str(tiny_model), str(queries))
    assert out.returncode == 0, out.stderr
    blocks = out.stdout.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == 3
    assert [line.split("\t")[0] for line in blocks[0].splitlines()] == ["steven", "spielberg", "shark", "movie"]
    # stdin, -o, and a labelled input whose gold tags are ignored
    piped = run_bin("tag", "--model", str(tiny_model), "-", input=queries.read_text())
    assert piped.stdout == out.stdout
    target = tmp_path / "tagged.conll"
    bio = run_bin("tag", "--model", str(tiny_model), "--format", "bio", str(test_file), "-o", str(target))
    assert bio.returncode == 0, bio.stderr
    assert target.read_text().count("\n\n") == 1953


def test_bin_tag_failures_are_clear(tiny_model, tmp_path):
    missing = run_bin("tag", "--model", str(tmp_path / "nomodel"), "-", input="jaws\n")
    assert missing.returncode == 2 and "bin/tag: error:" in missing.stderr and "nomodel" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good query\nbad \xff byte\n")
    target = tmp_path / "out.conll"
    res = run_bin("tag", "--model", str(tiny_model), str(bad), "-o", str(target))
    assert res.returncode == 2 and f"{bad}:2: invalid UTF-8" in res.stderr
    assert not target.exists() and list(tmp_path.glob(".out.conll*")) == []
    nofile = run_bin("tag", "--model", str(tiny_model), str(tmp_path / "none.txt"))
    assert nofile.returncode == 2 and "none.txt: no such file" in nofile.stderr


def test_bin_evaluate_json_and_table(tiny_model, test_file):
    res = run_bin("evaluate", "--model", str(tiny_model), "--json")
    assert res.returncode == 0, res.stderr
    scores = json.loads(res.stdout)
    assert scores["n_sentences"] == 1953 and scores["dataset"] == str(test_file)
    saved = json.loads((tiny_model / "metrics.json").read_text())["test"]
    assert scores["default"]["f1"] == pytest.approx(saved["default"]["f1"])
    table = run_bin("evaluate", "--model", str(tiny_model), "--test", str(test_file))
    assert "overall strict" in table.stdout and "Director" in table.stdout


def test_bin_train_writes_model_and_current_link(small_data_dir, tmp_path):
    env = {"CWD": str(tmp_path), "NERQ_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    res = run_bin(
        "train", "--data-dir", str(small_data_dir), "--epochs", "1", "--seed", "3", "--threads", "2", "--no-refit",
        "--no-span-decoding", env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "test F1" in res.stdout and "model written to var/models/" in res.stdout
    current = tmp_path / "var" / "models" / "current"
    assert current.is_symlink() and (current / "model.safetensors").is_file()
    metrics = json.loads((current / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_config"]["refit"] is False and metrics["refit_epochs"] == []  # trained once, as bin/demo does
    assert metrics["decoding"] is None  # --no-span-decoding: Viterbi, no threshold chosen
    assert json.loads((current / "config.json").read_text(encoding="utf-8"))["span_threshold"] is None
    bad = run_bin("train", "--data-dir", str(tmp_path / "nothing"), env=env)
    assert bad.returncode == 2 and "no trivia10k13train.bio" in bad.stderr
