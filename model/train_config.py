"""What a training run is asked to do: TrainConfig and its presets, importable without torch
(bin/train --help lists the presets)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class TrainConfig:
    preset: str = "default"
    data_dir: str | None = None
    out: str | None = None
    embeddings: str | None = None
    device: str = "auto"
    seed: int = 1
    epochs: int = 25  # upper bound; early stopping usually ends sooner
    patience: int = 5  # epochs without a better dev F1 before stopping
    dev_fraction: float = 0.1
    batch_size: int = 32
    lr: float = 3e-3
    lr_decay: float = 1.0  # divide the learning rate by this after every epoch
    clip: float = 5.0
    clip_per_tensor: bool = False  # the reference clips each tensor's norm, not the global one
    # Chance a training token is shown as <UNK> (its char features stay): chosen over 0.1 on
    # dev F1, and test F1 rose too (docs/benchmarks.md#word-dropout).
    word_dropout: float = 0.25
    ema_decay: float = 0.999  # >0: evaluate and keep an exponential moving average of the weights
    refit: bool = True  # after early stopping, retrain on train+dev for the best epoch count
    word_dim: int = 100
    char_dim: int = 30
    char_filters: int = 100
    hidden: int = 200
    layers: int = 1
    dropout: float = 0.5
    crf: bool = True
    # Decode the spans more likely than a threshold chosen on dev (model.span_decoding), or
    # Viterbi where dev prefers it; False: always Viterbi.
    span_decoding: bool = True
    # Knowledge distillation (model.distillation): train this many teachers on the train split
    # (other seeds), then the model on their averaged CRF distribution; 0: none.
    teachers: int = 0
    distill_weight: float = 0.5  # the teachers' share of the training targets; the gold tags have the rest
    threads: int | None = None  # torch CPU threads; None keeps torch's default


PRESETS: dict[str, dict] = {
    "default": {},
    # Slower to train (three teachers, then the model), as fast to tag: one model of the default size.
    "best": dict(teachers=3),
    # The starting notebook: random 200-d words, 200 hidden, softmax, Adam 0.005 / 1.414 per epoch.
    "reference": dict(
        epochs=5, patience=5, batch_size=32, lr=0.005, lr_decay=1.414, clip=1.0, clip_per_tensor=True,
        word_dropout=0.0, word_dim=200, char_dim=0, hidden=200, layers=1, dropout=0.5, crf=False,
        ema_decay=0.0, refit=False, span_decoding=False,
    ),
}


def preset_config(preset: str, **overrides) -> TrainConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return replace(TrainConfig(preset=preset, **PRESETS[preset]), **overrides)
