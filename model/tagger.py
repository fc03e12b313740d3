"""Inference: ``Tagger.load(path).tag(sentences)``. Imports nothing from training."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from .batching import Encoded, collate, encode, plan_batches
from .checkpoint import load_model_dir
from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS
from .devices import resolve_device
from .network import BiLSTMTagger, decode, ids_to_tags
from .vocab import Vocab


class Tagger:
    def __init__(
        self,
        model: BiLSTMTagger,
        vocab: Vocab,
        *,
        path: str | Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache_chars: bool = True,
    ) -> None:
        """``cache_chars=False`` for a model still being trained (the cache would go stale)."""
        self.model = model.eval()
        self.vocab = vocab
        if cache_chars:
            word_chars = torch.from_numpy(encode(vocab, vocab.words).chars).to(self.device)
            model.cache_char_features(word_chars)
        self.path = Path(path) if path else None
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> Tagger:
        model, vocab = load_model_dir(path, resolve_device(device))
        return cls(model, vocab, path=path, batch_size=batch_size, max_tokens=max_tokens)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[Encoded]:
        return [encode(self.vocab, tokens) for tokens in sentences]

    def iter_tagged(
        self,
        encoded: Sequence[Encoded],
        batch_size: int | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[tuple[list[int], list[list[str]]]]:
        """(input positions, their tags) one batch at a time, for callers that check in between
        (cancellation, progress) or never hold all results."""
        plan = plan_batches(
            [len(e) for e in encoded], batch_size or self.batch_size, max_tokens or self.max_tokens
        )
        self.model.eval()  # the model may be shared with a training loop that left it in train mode
        with torch.inference_mode():
            for indices in plan:
                batch = collate(encoded, indices).to(self.device)
                ids = decode(self.model, self.model(batch.words, batch.chars, batch.lengths), batch.mask)
                yield indices, ids_to_tags(ids, batch.lengths.tolist(), self.vocab.tags)

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
