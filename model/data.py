"""Where the MIT Movie trivia10k13 corpus lives, and fetching it when it is nowhere local."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.request
from http.client import HTTPException
from pathlib import Path

from .corpus import CorpusFormatError, read_corpus

log = logging.getLogger(__name__)

CORPUS_DIRNAME = "mit_movie_trivia"
TRAIN_FILE = "trivia10k13train.bio"
TEST_FILE = "trivia10k13test.bio"
CORPUS_URL = "https://groups.csail.mit.edu/sls/downloads/movie/"
REPO_ROOT = Path(__file__).resolve().parent.parent


class CorpusNotFound(FileNotFoundError):
    pass


def _candidates(data_dir: str | Path | None) -> list[Path]:
    explicit = data_dir or os.environ.get("NERQ_DATA_DIR")
    if explicit:
        return [Path(explicit)]
    return [Path("data"), REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]


def _corpus_in(directory: Path) -> Path | None:
    for sub in (directory / CORPUS_DIRNAME, directory):
        if (sub / TRAIN_FILE).is_file() and (sub / TEST_FILE).is_file():
            return sub
    return None


def download_corpus(dest: Path, base_url: str | None = None, timeout: float = 30.0) -> Path:
    """Fetch both files into ``dest/mit_movie_trivia``; each file appears whole or not at all."""
    base = (base_url or os.environ.get("NERQ_CORPUS_URL") or CORPUS_URL).rstrip("/") + "/"
    target = dest / CORPUS_DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    for name in (TRAIN_FILE, TEST_FILE):
        if (target / name).is_file():
            continue
        url = base + name
        log.info("downloading %s", url)
        tmp = target / f".{name}.part"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
            read_corpus(tmp)  # an error page or a cut-off transfer is not the corpus
            os.replace(tmp, target / name)
        except (OSError, HTTPException, CorpusFormatError) as exc:
            raise CorpusNotFound(
                f"could not download {url} ({exc}); put the corpus under ./data/{CORPUS_DIRNAME}/ "
                "or point --data-dir / NERQ_DATA_DIR at it"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    return target


def find_corpus(data_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """The directory that holds the train and test files.

    Order: the explicit option or NERQ_DATA_DIR, ./data, the repository's data/, ../shared/data,
    and last a download into ./data. An explicit directory that lacks the files is an error,
    never silently replaced by another copy.
    """
    candidates = _candidates(data_dir)
    for directory in candidates:
        found = _corpus_in(directory)
        if found:
            return found
    if data_dir or os.environ.get("NERQ_DATA_DIR"):
        raise CorpusNotFound(f"{candidates[0]}: no {TRAIN_FILE} and {TEST_FILE} there")
    if not download:
        raise CorpusNotFound("corpus not found in " + ", ".join(map(str, candidates)))
    return download_corpus(Path("data"))


def default_test_file(data_dir: str | Path | None = None) -> Path:
    return find_corpus(data_dir) / TEST_FILE


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
