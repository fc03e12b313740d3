"""The tagger network: word embeddings + char CNN -> BiLSTM -> emissions (-> CRF).

``forward`` returns emission scores only; :func:`loss` and :func:`decode` turn them into a
training objective or tag ids, with the CRF when the model has one and softmax otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .crf import CRF
from .forward_backward import crf_potentials
from .span_decoding import threshold_spans
from .vocab import PAD_ID, UNK_ID


@dataclass
class ModelConfig:
    n_words: int
    n_chars: int
    tags: list[str]
    word_dim: int = 100
    char_dim: int = 30  # 0: no character features
    char_filters: int = 100
    char_kernel: int = 3
    hidden: int = 200  # per direction
    layers: int = 1
    dropout: float = 0.5
    crf: bool = True
    span_threshold: float | None = None  # decode the spans more likely than this; None: Viterbi

    def __post_init__(self) -> None:
        if self.span_threshold is not None and not 0.0 < self.span_threshold < 1.0:
            raise ValueError(f"span_threshold must lie between 0 and 1, not {self.span_threshold}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


class CharCNN(nn.Module):
    """Max-pooled convolution over each word's characters; pad positions never win the max,
    so a word's features do not depend on how wide its batch's char tensor is."""

    def __init__(self, n_chars: int, dim: int, filters: int, kernel: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, dim, padding_idx=PAD_ID)
        self.conv = nn.Conv1d(dim, filters, kernel, padding=kernel // 2)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        b, t, c = chars.shape
        flat = chars.view(b * t, c)
        k = self.conv.kernel_size[0]
        # The convolution as one matrix product over all character windows: on CPU this is
        # several times faster than conv1d over many short sequences, with the same weights.
        x = nn.functional.pad(self.embed(flat), (0, 0, k // 2, k - 1 - k // 2))  # [b*t, c+k-1, dim]
        windows = x.unfold(1, k, 1)  # [b*t, c, dim, k]
        weight = self.conv.weight.reshape(self.conv.out_channels, -1)  # [filters, dim*k]
        x = torch.addmm(self.conv.bias, windows.reshape(b * t * c, -1), weight.t()).view(b * t, c, -1)
        x = x.masked_fill((flat == PAD_ID).unsqueeze(2), float("-inf")).amax(dim=1)
        return x.masked_fill(torch.isinf(x), 0.0).view(b, t, -1)


class BiLSTMTagger(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.word_embed = nn.Embedding(config.n_words, config.word_dim, padding_idx=PAD_ID)
        nn.init.normal_(self.word_embed.weight, std=config.word_dim**-0.5)
        with torch.no_grad():
            self.word_embed.weight[PAD_ID].zero_()
        in_dim = config.word_dim
        self.chars: CharCNN | None = None
        if config.char_dim:
            self.chars = CharCNN(config.n_chars, config.char_dim, config.char_filters, config.char_kernel)
            in_dim += config.char_filters
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            in_dim,
            config.hidden,
            num_layers=config.layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.emit = nn.Linear(2 * config.hidden, len(config.tags))
        self.crf = CRF(config.tags) if config.crf else None
        self.char_table: torch.Tensor | None = None

    def train(self, mode: bool = True) -> BiLSTMTagger:
        if mode:
            self.char_table = None  # the weights are about to change
        return super().train(mode)

    @torch.no_grad()
    def cache_char_features(self, word_chars: torch.Tensor) -> None:
        """Precompute char features of every vocabulary word ([n_words, C] char ids, rows for
        <PAD>/<UNK> ignored) for inference; then only unknown words run the char CNN.
        Call again after the weights change; training never uses the cache."""
        if self.chars is not None:
            self.char_table = self.chars(word_chars.unsqueeze(0)).squeeze(0)

    def _char_features(self, words: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        assert self.chars is not None
        if self.training or self.char_table is None:
            return self.chars(chars)
        features = self.char_table[words]
        unknown = words == UNK_ID
        if unknown.any():
            features[unknown] = self.chars(chars[unknown].unsqueeze(0)).squeeze(0)
        return features

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Emission scores [B, T, n_tags]."""
        x = self.word_embed(words)
        if self.chars is not None:
            x = torch.cat([x, self._char_features(words, chars)], dim=2)
        x = self.dropout(x)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=words.shape[1])
        return self.emit(self.dropout(out))


def loss(model: BiLSTMTagger, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean CRF negative log-likelihood per sentence, or masked token cross-entropy without a CRF."""
    if model.crf is not None:
        return model.crf.nll(emissions, tags, mask).mean()
    return nn.functional.cross_entropy(emissions[mask], tags[mask])


def decode(model: BiLSTMTagger, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Tag ids [B, T] (0 past each sentence's end). With a CRF: the spans more likely than the
    model's span threshold (model.span_decoding), or the Viterbi sequence when it has none;
    without a CRF, each token's most likely tag."""
    threshold = model.config.span_threshold
    if model.crf is not None and threshold is not None:
        return threshold_spans(emissions, mask, crf_potentials(model.crf), model.config.tags, threshold)
    if model.crf is not None:
        return model.crf.viterbi(emissions, mask)
    return emissions.argmax(dim=2) * mask


def ids_to_tags(ids: torch.Tensor, lengths: Sequence[int], tags: Sequence[str]) -> list[list[str]]:
    rows = ids.tolist()
    return [[tags[i] for i in row[:n]] for row, n in zip(rows, lengths)]
