#!/usr/bin/env python3
"""In-process tagging speed on the 1953 test sentences: ours against the reference network.

The reference is the starting notebook's network at the same per-token cost: 200-d word
embeddings, a BiLSTM of 200 per direction, a linear layer and argmax (no CRF, no char
features), batches of 256 sorted by length, packed. Its weights are random: speed does not
depend on their values. ``Tagger.load(path)`` with its defaults and the reference run
interleaved in one process (median of the rounds), so their ratio holds on a noisy machine.
Also printed: per-stage times of our default tagger (encode, forward, decode), for a model that
decodes spans (model.span_decoding) the same weights decoded by Viterbi, interleaved too; batches
cut at least estimated cost (the step loop's default) against filled in turn (the fused LSTM's),
in one call and in chunks of the worker's size; and for each precision its speed, test F1 and
whether its tags depend on the batch size. With ``--baseline DIR``, another model (say the default preset's, against
``--preset best``'s) runs in the same rounds at its own defaults, and the ratio is printed.

    bin/_python bench/bench_tagger.py --model var/models/current [--rounds 7] [--threads 2] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model import Tagger
from model.batching import collate, plan_batches
from model.corpus import read_corpus
from model.data import default_test_file
from model.defaults import CPU_STEP_COST
from model.evaluation import score
from model.network import decode
from model.vocab import PAD_ID, Vocab
from worker.settings import DEFAULT_CHUNK_SIZE

REFERENCE_BATCH = 256


class ReferenceNet(nn.Module):
    """The notebook's BiLSTM: embeddings -> BiLSTM -> linear; tags by argmax."""

    def __init__(self, n_words: int, n_tags: int, dim: int = 200, hidden: int = 200) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_words, dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(dim, hidden, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, n_tags)

    def forward(self, words: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embed(words), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True)
        return self.out(out).argmax(dim=2)


def reference_tagger(vocab: Vocab) -> Callable[[Sequence[Sequence[str]]], list[list[str]]]:
    """Tags token lists the notebook's way: word ids, sorted batches of 256, one forward each."""
    net = ReferenceNet(len(vocab.words), len(vocab.tags)).eval()

    def tag(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        ids = [[vocab.word_id(t) for t in s] for s in sentences]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[list[str]] = [[] for _ in sentences]
        with torch.inference_mode():
            for start in range(0, len(order), REFERENCE_BATCH):
                rows = order[start : start + REFERENCE_BATCH]
                lengths = torch.tensor([len(ids[i]) for i in rows])
                words = torch.full((len(rows), int(lengths.max())), PAD_ID, dtype=torch.long)
                for r, i in enumerate(rows):
                    words[r, : len(ids[i])] = torch.tensor(ids[i])
                for r, (i, row) in enumerate(zip(rows, net(words, lengths).tolist())):
                    out[i] = [vocab.tags[k] for k in row[: len(ids[i])]]
        return out

    return tag


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stage_seconds(tagger: Tagger, sentences: list[list[str]]) -> dict[str, float]:
    """One instrumented pass of Tagger.tag's work: encode, collate, forward, decode, to strings."""
    stages = dict.fromkeys(("encode", "collate", "forward", "decode", "to_tags"), 0.0)
    t0 = time.perf_counter()
    encoded = tagger.encode(sentences)
    stages["encode"] = time.perf_counter() - t0
    with torch.inference_mode():
        for indices in plan_batches([len(e) for e in encoded], tagger.batch_size, tagger.max_tokens,
                                    step_cost=tagger.step_cost):
            marks = [time.perf_counter()]
            batch = collate(encoded, indices)
            marks.append(time.perf_counter())
            emissions = tagger._emissions(batch.words, batch.chars, batch.lengths)
            marks.append(time.perf_counter())
            ids = decode(tagger.model, emissions, batch.mask)
            marks.append(time.perf_counter())
            [[tagger.vocab.tags[i] for i in row] for row in ids.tolist()]
            marks.append(time.perf_counter())
            for name, a, b in zip(("collate", "forward", "decode", "to_tags"), marks, marks[1:]):
                stages[name] += b - a
    return stages


def batch_invariant(tagger: Tagger, sentences: list[list[str]], reference: list[list[str]]) -> bool:
    return all(tagger.tag(sentences, batch_size=b, max_tokens=10**6) == reference for b in (1, 7, 1953))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="var/models/current")
    p.add_argument("--test", help="labelled file to take sentences from (default: corpus test)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--baseline", help="another model directory, timed in the same rounds")
    p.add_argument("--no-invariance", action="store_true", help="skip the batch-size invariance check")
    return p.parse_args()


def interleaved(taggers: dict, sentences: list[list[str]], ours: Tagger, rounds: int) -> tuple[dict, list]:
    """Median-ready timings: every tagger once per round, in turn, so load hits them alike; each
    round starts one tagger further on, so none always runs right after the same one (on a Zen 3,
    a tagger right after the slow emulated precisions ran up to 1.3x slower than its twin)."""
    for tag in taggers.values():
        tag(sentences)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in taggers}
    stages: list[dict[str, float]] = []
    names = list(taggers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(seconds(lambda: taggers[name](sentences)))
        stages.append(stage_seconds(ours, sentences))
    return times, stages


def precision_rows(precisions: dict, speed: dict, sentences: list, gold: list, invariance: bool) -> dict:
    rows = {}
    for name, tagger in precisions.items():
        tags = tagger.tag(sentences)
        rows[name] = {
            "sentences_per_s": speed[f"precision_{name}"],
            "test_f1": round(score(gold, tags)["default"]["f1"], 2),
            "batch_invariant": batch_invariant(tagger, sentences, tags) if invariance else None,
        }
    return rows


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    corpus = read_corpus(args.test or default_test_file())
    sentences, gold = [s.tokens for s in corpus], [s.tags for s in corpus]
    ours = Tagger.load(args.model, "cpu")
    taggers = {"ours": ours.tag, "reference": reference_tagger(ours.vocab)}
    precisions = {p: Tagger.load(args.model, "cpu", precision=p) for p in ("fp32", "bf16", "int8")}
    taggers |= {f"precision_{name}": t.tag for name, t in precisions.items()}
    viterbi = None
    if ours.model.config.span_threshold is not None:
        viterbi = Tagger.load(args.model, "cpu")
        viterbi.model.config.span_threshold = None
        taggers["viterbi"] = viterbi.tag
    if args.baseline:
        taggers["baseline"] = Tagger.load(args.baseline, "cpu").tag
    plans = {"least_cost": CPU_STEP_COST, "filled_in_turn": None}  # the default is one of them
    for plan, step_cost in plans.items():
        planned = Tagger.load(args.model, "cpu")
        planned.step_cost = step_cost
        taggers |= {plan: planned.tag, f"chunks_{plan}": in_chunks(planned.tag)}
    times, stages = interleaved(taggers, sentences, ours, args.rounds)
    speed = {name: round(len(sentences) / statistics.median(ts), 1) for name, ts in times.items()}
    print(json.dumps({
        "model": str(args.model), "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "sentences": len(sentences), "tokens": sum(map(len, sentences)), "rounds": args.rounds,
        "default_precision": ours.precision, "batch_size": ours.batch_size, "max_tokens": ours.max_tokens,
        "sentences_per_s": {"ours": speed["ours"], "reference": speed["reference"]},
        "ratio_ours_vs_reference": round(speed["ours"] / speed["reference"], 2),
        "stage_seconds": {k: round(statistics.median(s[k] for s in stages), 4) for k in stages[0]},
        "decoding": decoding_row(ours, viterbi, speed, sentences, gold),
        "batching": batching_row(speed, ours.step_cost),
        "baseline": args.baseline and {"model": args.baseline, "sentences_per_s": speed["baseline"],
                                       "ratio_ours_vs_baseline": round(speed["ours"] / speed["baseline"], 3)},
        "precisions": precision_rows(precisions, speed, sentences, gold, not args.no_invariance),
    }, indent=2))


def in_chunks(tag: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[list[list[str]]], list[list[str]]]:
    """Tagging as a worker does: one call per chunk of the default chunk size."""
    return lambda sentences: [t for i in range(0, len(sentences), DEFAULT_CHUNK_SIZE)
                              for t in tag(sentences[i : i + DEFAULT_CHUNK_SIZE])]


def batching_row(speed: dict, default_step_cost: float | None) -> dict:
    """Batches cut at least estimated cost (the step loop's default) against filled in turn (the
    fused LSTM's), for the sentences in one call and in the worker's chunks."""
    return {"chunk_size": DEFAULT_CHUNK_SIZE,
            "default": "least_cost" if default_step_cost is not None else "filled_in_turn"} | {
        where: {"least_cost": speed[least], "filled_in_turn": speed[filled],
                "ratio": round(speed[least] / speed[filled], 3)}
        for where, least, filled in (("one_call", "least_cost", "filled_in_turn"),
                                     ("chunks", "chunks_least_cost", "chunks_filled_in_turn"))
    }


def decoding_row(ours: Tagger, viterbi: Tagger | None, speed: dict, sentences: list, gold: list) -> dict:
    """The model's span decoding against Viterbi on the same weights: speed and test F1."""
    row: dict = {"span_threshold": ours.model.config.span_threshold}
    if viterbi is not None:
        row |= {"viterbi_sentences_per_s": speed["viterbi"],
                "ratio_vs_viterbi": round(speed["ours"] / speed["viterbi"], 3),
                "test_f1": round(score(gold, ours.tag(sentences))["default"]["f1"], 2),
                "viterbi_test_f1": round(score(gold, viterbi.tag(sentences))["default"]["f1"], 2)}
    return row


if __name__ == "__main__":
    main()
