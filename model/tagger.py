"""Inference: ``Tagger.load(path).tag(sentences)``. Imports nothing from training."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import torch

from .batching import Batch, Encoded, collate, encode, plan_batches
from .checkpoint import load_model_dir, read_temperature
from .defaults import CPU_STEP_COST, CUDA_BATCH_SIZE, CUDA_MAX_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS
from .devices import resolve_device
from .forward_backward import Potentials, crf_potentials
from .inference import FusedBiLSTM, auto_cpu_precision, cpu_emissions, resolve_precision, slow_precision
from .marginals import SpanIndex, crf_probabilities_at, index_spans, per_sentence, softmax_probabilities_at
from .network import BiLSTMTagger, decode, ids_to_tags
from .spans import Span, bio_spans
from .threads import batch_threads, map_in_threads
from .vocab import Vocab

log = logging.getLogger(__name__)

SpansOf = Callable[[int, list[str]], list[Span]]  # (input position, its tags) -> spans to score
R = TypeVar("R")
Finish = Callable[[Batch, torch.Tensor, torch.Tensor], R]  # (batch, emissions, tag ids) -> a batch's result


class Tagger:
    def __init__(
        self,
        model: BiLSTMTagger,
        vocab: Vocab,
        *,
        path: str | Path | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        cache_chars: bool = True,
        precision: str = "auto",
        temperature: float = 1.0,
    ) -> None:
        """``cache_chars=False`` for a model still being trained: no per-vocabulary caches (they
        would go stale), the training network itself in fp32. ``precision``: auto, fp32, bf16 or
        int8 (CPU), chosen for this device by :func:`model.inference.resolve_precision`;
        ``self.precision`` says which one runs. Batch budgets default by device.
        ``temperature`` scales span scores only (model.calibration fits it), never tags."""
        self.model = model.eval()
        self.vocab = vocab
        self.path = Path(path) if path else None
        self.temperature = temperature
        cuda = self.device.type == "cuda"
        self.batch_size = batch_size or (CUDA_BATCH_SIZE if cuda else DEFAULT_BATCH_SIZE)
        self.max_tokens = max_tokens or (CUDA_MAX_TOKENS if cuda else DEFAULT_MAX_TOKENS)
        self.precision = resolve_precision(precision, self.device) if cache_chars else "fp32"
        self._emissions: torch.nn.Module = model
        if cache_chars:
            word_chars = torch.from_numpy(encode(vocab, [vocab.words]).sentence(0)[1].copy()).to(self.device)
            if cuda:  # cuDNN's fused LSTM; the per-vocabulary table pays off on CPU
                model.cache_char_features(word_chars)
            else:
                self._emissions = cpu_emissions(model, word_chars, self.precision)
        # The step loop's batches trade padding against steps; oneDNN's fused LSTM and CUDA keep
        # full batches (model.inference.FusedBiLSTM says why; CUDA unmeasured).
        self.step_cost = None if cuda or isinstance(self._emissions, FusedBiLSTM) else CPU_STEP_COST

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        *,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        precision: str = "auto",
    ) -> Tagger:
        model, vocab = load_model_dir(path, resolve_device(device))
        tagger = cls(model, vocab, path=path, batch_size=batch_size, max_tokens=max_tokens, precision=precision,
                     temperature=read_temperature(path))
        log.info("model %s on %s, precision %s%s", path, tagger.device, tagger.precision,
                 " (auto)" if precision == "auto" else "")
        slow = slow_precision(tagger.precision) if tagger.device.type == "cpu" else None
        if slow:
            log.warning("precision %s is not native on this CPU (%s); auto (--precision, NERQ_PRECISION) picks %s here",
                        tagger.precision, slow, auto_cpu_precision())
        return tagger

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, sentences: Sequence[Sequence[str]]) -> Encoded:
        return encode(self.vocab, sentences)

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 on CUDA runs the training network under autocast; on CPU cpu_emissions' network does it."""
        if self.device.type == "cuda" and self.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward(self, batch: Batch) -> torch.Tensor:
        """Emissions [B, T, K] fp32 on the model's device, without waiting."""
        with self._autocast():
            return self._emissions(batch.words, batch.chars, batch.lengths).float()

    def map_batches(
        self, encoded: Encoded, batch_size: int | None, max_tokens: int | None, finish: Finish[R],
    ) -> Iterator[R]:
        """``finish(batch, emissions, tag ids)`` of each batch, in plan order. On CPU, as many
        batches run at once as torch has threads (model.threads); on CUDA, one thread or one
        batch, a batch is decoded once the next one's forward pass is queued, so a GPU computes
        while the host waits on a decoding's results."""
        plan = plan_batches(
            encoded.lengths.tolist(), batch_size or self.batch_size, max_tokens or self.max_tokens,
            step_cost=self.step_cost,
        )
        self.model.eval()  # the model may be shared with a training loop that left it in train mode
        threads = min(batch_threads(self.device), len(plan))  # one batch alone keeps all threads
        if threads > 1:
            yield from map_in_threads(lambda indices: self._run_batch(encoded, indices, finish), plan, threads)
        else:
            yield from self._pipelined(encoded, plan, finish)

    def _queue_batch(self, encoded: Encoded, indices: list[int]) -> tuple[Batch, torch.Tensor]:
        batch = collate(encoded, indices).to(self.device)
        return batch, self._forward(batch)

    def _decoded(self, queued: tuple[Batch, torch.Tensor], finish: Finish[R]) -> R:
        batch, emissions = queued
        return finish(batch, emissions, decode(self.model, emissions, batch.mask))

    def _run_batch(self, encoded: Encoded, indices: list[int], finish: Finish[R]) -> R:
        with torch.inference_mode():  # per thread: the mode is thread-local
            return self._decoded(self._queue_batch(encoded, indices), finish)

    def _pipelined(self, encoded: Encoded, plan: list[list[int]], finish: Finish[R]) -> Iterator[R]:
        queued: list[tuple[Batch, torch.Tensor]] = []
        with torch.inference_mode():
            for indices in plan:
                queued.append(self._queue_batch(encoded, indices))
                if len(queued) > 1:
                    yield self._decoded(queued.pop(0), finish)
            for batch_and_emissions in queued:
                yield self._decoded(batch_and_emissions, finish)

    def _tags(self, batch: Batch, ids: torch.Tensor) -> list[list[str]]:
        return ids_to_tags(ids, batch.lengths.tolist(), self.vocab.tags)

    def iter_tagged(
        self,
        encoded: Encoded,
        batch_size: int | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[tuple[list[int], list[list[str]]]]:
        """(input positions, their tags) one batch at a time, for callers that check in between
        (cancellation, progress) or never hold all results."""
        yield from self.map_batches(encoded, batch_size, max_tokens,
                                      lambda batch, _, ids: (batch.indices, self._tags(batch, ids)))

    def iter_scored(
        self,
        encoded: Encoded,
        spans_of: SpansOf | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[tuple[list[int], list[list[str]], list[list[float]]]]:
        """As iter_tagged (the same tags), with the probability of each span that
        ``spans_of(position, tags)`` names (default: the tags' own entities), computed from
        the emissions of the same network pass. ``spans_of`` may run on several threads at once."""
        spans_of = spans_of or (lambda _, tags: bio_spans(tags))

        def scored(batch: Batch, emissions: torch.Tensor, ids: torch.Tensor) -> tuple[list[int], list, list]:
            tags = self._tags(batch, ids)
            spans = [spans_of(i, t) for i, t in zip(batch.indices, tags)]
            idx = index_spans(spans, self.vocab.tags, emissions.device)
            if not len(idx.row):
                return batch.indices, tags, [[] for _ in spans]
            return batch.indices, tags, per_sentence(self.span_scores_at(emissions, batch.mask, idx), spans)

        yield from self.map_batches(encoded, batch_size, max_tokens, scored)

    def span_scores_at(self, emissions: torch.Tensor, mask: torch.Tensor, idx: SpanIndex) -> torch.Tensor:
        """[N]: the marginal probability of each indexed span (at least one; CRF forward-backward,
        or softmax without a CRF), with the model's calibration temperature: potentials divided by it."""
        t = self.temperature
        if self.model.crf is None:
            return softmax_probabilities_at(emissions / t, mask, idx)
        return crf_probabilities_at(emissions / t, mask, self.potentials(), idx)

    def potentials(self) -> Potentials:
        """The CRF's potentials divided by the calibration temperature (emissions are divided
        by it too). Without a CRF, zeros: tokens are then independent, each its own softmax."""
        t = self.temperature
        if self.model.crf is None:
            k = len(self.vocab.tags)
            return Potentials(torch.zeros(k, k, device=self.device), *torch.zeros(2, k, device=self.device))
        return Potentials(*(x / t for x in crf_potentials(self.model.crf)))

    def tag(
        self,
        sentences: Sequence[Sequence[str]],
        batch_size: int | None = None,
        max_tokens: int | None = None,
    ) -> list[list[str]]:
        """Tags for each token list, in input order; empty sentences get empty tag lists."""
        out: list[list[str]] = [[] for _ in sentences]
        nonempty = [i for i, s in enumerate(sentences) if len(s)]
        encoded = self.encode([sentences[i] for i in nonempty])
        for indices, tags in self.iter_tagged(encoded, batch_size, max_tokens):
            for i, t in zip(indices, tags):
                out[nonempty[i]] = t
        return out
