"""Fitting one network: the epoch loop (word dropout, gradient clipping, a moving average of the
weights) with early stopping on dev F1. model.train builds the recipe around it: the dev split,
the teachers, the choices made on dev and the refit."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .batching import Batch, Encoded, encode, iter_batches
from .corpus import Sentence
from .distillation import SoftTargets, batch_targets
from .embeddings import embedding_dim, fill_embeddings
from .evaluation import evaluate
from .network import BiLSTMTagger, ModelConfig, loss
from .tagger import Tagger
from .train_config import TrainConfig
from .vocab import UNK_ID, Vocab


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)



def _clip(model: torch.nn.Module, cfg: TrainConfig) -> None:
    params = [p for p in model.parameters() if p.grad is not None]
    if cfg.clip_per_tensor:
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], cfg.clip)
    else:
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)


def _drop_words(batch: Batch, rate: float, device: torch.device) -> torch.Tensor:
    """Word dropout: each real token is shown as <UNK> with probability ``rate``."""
    if not rate:
        return batch.words
    drop = (torch.rand(batch.words.shape, device=device) < rate) & batch.mask
    return batch.words.masked_fill(drop, UNK_ID)


def _batch_loss(model: BiLSTMTagger, batch: Batch, cfg: TrainConfig, device: torch.device,
                soft: Sequence[SoftTargets] | None) -> torch.Tensor:
    """The training loss of one batch: against the gold tags, or mixed with the teachers' targets."""
    emissions = model(_drop_words(batch, cfg.word_dropout, device), batch.chars, batch.lengths)
    if soft is None:
        return loss(model, emissions, batch.tags, batch.mask)
    targets = batch_targets(soft, batch, cfg.distill_weight)
    return model.crf.soft_nll(emissions, targets.tags, targets.pairs, batch.mask).mean()


def train_epoch(
    model: BiLSTMTagger,
    averaged: AveragedModel | None,
    optimizer: torch.optim.Optimizer,
    encoded: Encoded,
    cfg: TrainConfig,
    rng: random.Random,
    device: torch.device,
    desc: str,
    soft: Sequence[SoftTargets] | None = None,
) -> float:
    model.train()
    total, count = 0.0, 0
    batches = iter_batches(encoded, cfg.batch_size, rng=rng)
    n_batches = -(-len(encoded) // cfg.batch_size)
    with tqdm(batches, total=n_batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None, mininterval=1.0) as bar:
        for batch in bar:
            value = _batch_loss(model, batch.to(device), cfg, device, soft)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            _clip(model, cfg)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            total += value.item()
            count += 1
            bar.set_postfix(loss=f"{total / count:.3f}")
    return total / max(count, 1)


def _new_model(cfg: TrainConfig, vocab: Vocab, device: torch.device) -> BiLSTMTagger:
    """A freshly initialised network sized for ``vocab``, with pretrained vectors if configured."""
    model_cfg = ModelConfig(
        n_words=len(vocab.words), n_chars=len(vocab.chars), tags=vocab.tags,
        word_dim=embedding_dim(cfg.embeddings) if cfg.embeddings else cfg.word_dim,
        char_dim=cfg.char_dim, char_filters=cfg.char_filters, hidden=cfg.hidden, layers=cfg.layers,
        dropout=cfg.dropout, crf=cfg.crf,
    )
    model = BiLSTMTagger(model_cfg)
    if cfg.embeddings:
        found = fill_embeddings(cfg.embeddings, model.word_embed.weight, vocab)
        print(f"pretrained vectors for {found} of {len(vocab.words)} words", flush=True)
    return model.to(device)


def _weight_average(model: BiLSTMTagger, cfg: TrainConfig) -> AveragedModel | None:
    """An exponential moving average of the weights (what gets evaluated and saved), if configured."""
    if not cfg.ema_decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


class _EarlyStopping:
    """Scores every epoch on the dev set and keeps a copy of the best epoch's weights."""

    def __init__(self, module: BiLSTMTagger, vocab: Vocab, dev_set: Sequence[Sentence], patience: int) -> None:
        self.module, self.dev_set, self.patience = module, dev_set, patience
        self.tagger = Tagger(module, vocab, cache_chars=False)
        self.best_f1, self.best_epoch, self.best_state = -1.0, 0, None

    def score(self, epoch: int) -> dict:
        """{"dev_f1": F1} for this epoch, {} without a dev set."""
        if not self.dev_set:
            return {}
        f1 = evaluate(self.tagger, self.dev_set)["default"]["f1"]
        if f1 > self.best_f1:
            self.best_f1, self.best_epoch = f1, epoch
            self.best_state = copy.deepcopy(self.module.state_dict())
        return {"dev_f1": f1}

    def should_stop(self, epoch: int) -> bool:
        if self.dev_set and epoch - self.best_epoch >= self.patience:
            print(f"early stop: no better dev F1 for {self.patience} epochs", flush=True)
            return True
        return False

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)


def _print_epoch(row: dict, epochs: int, best: bool) -> None:
    dev_text = f"  dev F1 {row['dev_f1']:6.2f}" if "dev_f1" in row else ""
    note = "  *best" if best else ""
    print(f"epoch {row['epoch']:>2}/{epochs}  loss {row['loss']:8.3f}{dev_text}{note}  ({row['seconds']:.0f}s)",
          flush=True)


def fit(cfg: TrainConfig, vocab: Vocab, sentences: Sequence[Sentence], device: torch.device, epochs: int,
        dev_set: Sequence[Sentence] = (), soft: Sequence[SoftTargets] | None = None
        ) -> tuple[BiLSTMTagger, list[dict], int]:
    """Train a fresh model for up to ``epochs``; with a dev set, stop early and keep the best
    epoch's weights; with ``soft``, the teachers' targets of each sentence, distil them.
    Returns (model with the kept weights, per-epoch history, kept epoch)."""
    seed_everything(cfg.seed)
    model = _new_model(cfg, vocab, device)
    encoded = encode(vocab, [s.tokens for s in sentences], [s.tags for s in sentences])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=1.0 / cfg.lr_decay)
    averaged = _weight_average(model, cfg)
    final = averaged.module if averaged is not None else model  # the weights that get saved
    stopping = _EarlyStopping(final, vocab, dev_set, cfg.patience)
    rng = random.Random(cfg.seed)
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        mean_loss = train_epoch(model, averaged, optimizer, encoded, cfg, rng, device, f"epoch {epoch}/{epochs}", soft)
        scheduler.step()
        row = {"epoch": epoch, "loss": mean_loss, **stopping.score(epoch)}
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        _print_epoch(row, epochs, stopping.best_epoch == epoch)
        if stopping.should_stop(epoch):
            break
    stopping.restore_best()
    return final, history, stopping.best_epoch or epochs
