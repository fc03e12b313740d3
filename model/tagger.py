"""Inference: ``Tagger.load(path).tag(sentences)``. Imports nothing from training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from .batching import Batch, Encoded, collate, encode, plan_batches
from .checkpoint import load_model_dir
from .defaults import CUDA_BATCH_SIZE, CUDA_MAX_TOKENS, DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS
from .devices import resolve_device
from .inference import FastBiLSTM, resolve_precision
from .network import BiLSTMTagger, decode, ids_to_tags
from .vocab import Vocab


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
    ) -> None:
        """``cache_chars=False`` for a model still being trained: no per-vocabulary caches (they
        would go stale), the training network itself in fp32. ``precision``: auto, fp32, bf16 or
        int8 (CPU), chosen for this device by :func:`model.inference.resolve_precision`;
        ``self.precision`` says which one runs. Batch budgets default by device."""
        self.model = model.eval()
        self.vocab = vocab
        self.path = Path(path) if path else None
        cuda = self.device.type == "cuda"
        self.batch_size = batch_size or (CUDA_BATCH_SIZE if cuda else DEFAULT_BATCH_SIZE)
        self.max_tokens = max_tokens or (CUDA_MAX_TOKENS if cuda else DEFAULT_MAX_TOKENS)
        self.precision = resolve_precision(precision, self.device) if cache_chars else "fp32"
        self._emissions: torch.nn.Module = model
        if cache_chars:
            word_chars = torch.from_numpy(encode(vocab, vocab.words).chars).to(self.device)
            if cuda:  # cuDNN's fused LSTM; the per-vocabulary table pays off on CPU
                model.cache_char_features(word_chars)
            else:
                self._emissions = FastBiLSTM(model, word_chars, self.precision)

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
        return cls(model, vocab, path=path, batch_size=batch_size, max_tokens=max_tokens, precision=precision)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Encoded]:
        return [encode(self.vocab, tokens) for tokens in sentences]

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 on CUDA runs the training network under autocast; on CPU FastBiLSTM does it."""
        if self.device.type == "cuda" and self.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _decode(self, batch: Batch) -> torch.Tensor:
        """Tag ids [B, T] on the model's device, without waiting for them."""
        with self._autocast():
            emissions = self._emissions(batch.words, batch.chars, batch.lengths)
        return decode(self.model, emissions.float(), batch.mask)

    def iter_tagged(
        self,
        encoded: Sequence[Encoded],
        batch_size: int | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[tuple[list[int], list[list[str]]]]:
        """(input positions, their tags) one batch at a time, for callers that check in between
        (cancellation, progress) or never hold all results. A batch's tags are read back after
        the next batch is queued, so a GPU never waits for the host in between."""
        plan = plan_batches(
            [len(e) for e in encoded], batch_size or self.batch_size, max_tokens or self.max_tokens
        )
        self.model.eval()  # the model may be shared with a training loop that left it in train mode
        queued: list[tuple[list[int], torch.Tensor, list[int]]] = []
        with torch.inference_mode():
            for indices in plan:
                batch = collate(encoded, indices).to(self.device)
                queued.append((indices, self._decode(batch), batch.lengths.tolist()))
                if len(queued) > 1:
                    yield self._read_back(*queued.pop(0))
            for item in queued:
                yield self._read_back(*item)

    def _read_back(self, indices: list[int], ids: torch.Tensor, lengths: list[int]) -> tuple[list[int], list[list[str]]]:
        return indices, ids_to_tags(ids, lengths, self.vocab.tags)

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
