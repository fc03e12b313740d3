"""bin/tag: tag a file (or stdin) and write `token<TAB>TAG` lines, a blank line between sentences
(or, with --output-format, any format bin/results writes: entities with scores and offsets)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from model.corpus import FORMATS, Sentence, read_sentences
from model.defaults import CUDA_BATCH_SIZE, CUDA_MAX_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS

from ..exports import FORMATS as OUTPUT_FORMATS
from ..exports import Result, write_results
from .common import (add_device_option, add_precision_option, add_verbose_option, open_output, positive_int, run,
                     setup_logging)

if TYPE_CHECKING:
    from model import Tagger

READ_AHEAD = 20_000  # sentences read and tagged at a time: memory stays flat on huge inputs


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
    p.add_argument("--output-format", choices=OUTPUT_FORMATS, default="conll",
                   help="conll (default), or one of bin/results's formats")
    p.add_argument("-o", "--output", help="output file (default stdout)")
    add_device_option(p)
    add_precision_option(p)
    p.add_argument("--batch-size", type=positive_int,
                   help=f"most sentences per batch (default {DEFAULT_BATCH_SIZE} on CPU, {CUDA_BATCH_SIZE} on CUDA)")
    p.add_argument("--max-tokens", type=positive_int,
                   help=f"most padded tokens per batch (default {DEFAULT_MAX_TOKENS} on CPU, {CUDA_MAX_TOKENS} on CUDA)")
    add_verbose_option(p)
    return p


def tagged(tagger: Tagger, sentences: Iterator[Sentence]) -> Iterator[Result]:
    """Each sentence's tags and scored entities in input order, READ_AHEAD sentences at a time."""
    from model.chunk_tagging import tag_sentences  # torch, which main has loaded already

    done = 0
    for block in _blocks(sentences, READ_AHEAD):
        tagged = tag_sentences(tagger, [s.tokens for s in block], [s.text for s in block])
        for i, (s, tags, entities) in enumerate(zip(block, tagged.tag_lists(), tagged.entities())):
            yield Result(done + i, s.tokens, s.text, tags, entities)
        done += len(block)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    from model import Tagger  # torch loads here, not for --help or bin/results

    from ..registry import freeze_long_lived, resolve_model_dir  # SQLAlchemy, pydantic: not for --help

    model_dir = resolve_model_dir(args.model)
    tagger = Tagger.load(model_dir, args.device, batch_size=args.batch_size, max_tokens=args.max_tokens,
                         precision=args.precision)
    freeze_long_lived()
    sentences = read_sentences(args.input, args.format)
    with open_output(args.output) as out:
        write_results(out, tagged(tagger, sentences), args.output_format, model_version=Path(model_dir).resolve().name)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, "bin/tag"))
