"""Pretrained word vectors in GloVe / fastText text format, streamed so only our words are kept."""

from __future__ import annotations

from pathlib import Path

import torch

from .corpus import CorpusFormatError, decoded_lines
from .vocab import Vocab


def _rows(path: str | Path):
    """(line number, word, values) per vector line; a fastText 'count dim' header is skipped."""
    with open(path, "rb") as stream:
        for line_no, text in decoded_lines(stream, str(path)):
            parts = text.rstrip().split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                raise CorpusFormatError(str(path), line_no, "expected a word followed by numbers", text)
            yield line_no, text, parts[0], parts[1:]


def embedding_dim(path: str | Path) -> int:
    try:
        for _, _, _, values in _rows(path):
            return len(values)
    except FileNotFoundError:
        raise CorpusFormatError(str(path), 0, "no such embeddings file") from None
    raise CorpusFormatError(str(path), 0, "no vectors in embeddings file")


def fill_embeddings(path: str | Path, weight: torch.Tensor, vocab: Vocab) -> int:
    """Copy the vectors of vocabulary words into ``weight`` rows; returns how many were found."""
    dim = weight.shape[1]
    found: set[int] = set()
    for line_no, text, word, values in _rows(path):
        if len(values) != dim:
            raise CorpusFormatError(str(path), line_no, f"{len(values)} numbers, expected {dim}", text)
        index = vocab.word_id(word)
        if index <= 1 or index in found:  # <PAD>/<UNK>, or a second casing of a lowercased word
            continue
        try:
            vector = [float(v) for v in values]
        except ValueError:
            raise CorpusFormatError(str(path), line_no, "a value is not a number", text) from None
        with torch.no_grad():
            weight[index] = torch.tensor(vector, dtype=weight.dtype)
        found.add(index)
    return len(found)
