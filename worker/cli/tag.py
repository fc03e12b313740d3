"""bin/tag: tag a file (or stdin) and write `token<TAB>TAG` lines, a blank line between sentences."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TextIO

from model.corpus import FORMATS, read_sentences
from model.defaults import CUDA_BATCH_SIZE, CUDA_MAX_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS

from ..registry import resolve_model_dir
from .common import add_device_option, positive_int, run

READ_AHEAD = 20_000  # sentences read and tagged at a time: memory stays flat on huge inputs


def write_conll(out: TextIO, tokens: Sequence[str], tags: Sequence[str]) -> None:
    """The one output format of bin/tag (and bin/results --format conll)."""
    out.write("".join(f"{tok}\t{tag}\n" for tok, tag in zip(tokens, tags)))
    out.write("\n")


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file that appears only once complete: a bad line later in the input
    leaves no partial output behind."""
    if not path:
        yield sys.stdout
        return
    final = Path(path)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            yield f
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)


def _blocks(it: Iterator, size: int) -> Iterator[list]:
    while block := list(islice(it, size)):
        yield block


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bin/tag", description=__doc__)
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("--model", help="model directory (default: $NERQ_MODEL, else the promoted version, "
                   "else var/models/current)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text: one query per line; bio/conll: gold tags are ignored; jsonl")
    p.add_argument("-o", "--output", help="output file (default stdout)")
    add_device_option(p)
    p.add_argument("--batch-size", type=positive_int,
                   help=f"sentences per batch (default {DEFAULT_BATCH_SIZE} on CPU, {CUDA_BATCH_SIZE} on CUDA)")
    p.add_argument("--max-tokens", type=positive_int,
                   help=f"padded tokens per batch (default {DEFAULT_MAX_TOKENS} on CPU, {CUDA_MAX_TOKENS} on CUDA)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from model import Tagger  # torch loads here, not for --help or bin/results

    tagger = Tagger.load(resolve_model_dir(args.model), args.device, batch_size=args.batch_size, max_tokens=args.max_tokens)
    sentences = read_sentences(args.input, args.format)
    with open_output(args.output) as out:
        for block in _blocks(sentences, READ_AHEAD):
            tokens = [s.tokens for s in block]
            for toks, tags in zip(tokens, tagger.tag(tokens)):
                write_conll(out, toks, tags)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/tag"))
