"""The CPU inference paths (per-vocabulary input gates and own recurrence; oneDNN's fused bf16
LSTM) against the network."""

from __future__ import annotations

import functools

import pytest
import torch

from model import Tagger, torch_private
from model.corpus import read_corpus
from model.defaults import CPU_STEP_COST
from model.inference import (NEEDS, FastBiLSTM, FusedBiLSTM, auto_cpu_precision, cpu_emissions, fused_bf16,
                             resolve_precision, slow_precision)
from model.network import BiLSTMTagger, ModelConfig
from model.vocab import UNK_ID

# Largest emission difference from the fp32 training network, per precision.
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-3, "int8": 2e-2}


def random_batch(n_words: int, n_chars: int, word_chars: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Padded word ids with unknown words, their char ids, lengths (unsorted) and the mask."""
    lengths = torch.tensor([9, 3, 5, 1, 9, 2, 7])
    b, t = len(lengths), int(lengths.max())
    mask = torch.arange(t)[None] < lengths[:, None]
    words = torch.randint(2, n_words, (b, t))
    words[0, 2] = words[4, 8] = words[1, 0] = UNK_ID
    unknown_chars = torch.randint(2, n_chars, (b, t, word_chars.shape[1]))
    chars = torch.where((words == UNK_ID)[..., None], unknown_chars, word_chars[words])
    return words * mask, chars * mask[..., None], lengths, mask


NETWORKS = {"fp32": lambda m, wc: FastBiLSTM(m, wc, "fp32"), "bf16": lambda m, wc: FastBiLSTM(m, wc, "bf16"),
            "int8": lambda m, wc: FastBiLSTM(m, wc, "int8"), "fused bf16": FusedBiLSTM}


def tiny_network(layers: int, char_dim: int) -> tuple[BiLSTMTagger, torch.Tensor]:
    """A random network (eval mode) and its vocabulary's char ids."""
    torch.manual_seed(0)
    config = ModelConfig(n_words=300, n_chars=40, tags=["O", "B-A", "I-A"], layers=layers, char_dim=char_dim)
    word_chars = torch.randint(2, 40, (300, 6))
    word_chars[:, 4:] = 0
    return BiLSTMTagger(config).eval(), word_chars


@pytest.mark.parametrize("layers,char_dim", [(1, 30), (2, 0)])
@pytest.mark.parametrize("network", NETWORKS)
def test_emissions_match_the_training_network(layers, char_dim, network):
    """Each network on this CPU (the fused one wherever it runs: oneDNN's kernel with AVX-512, torch's
    own bf16 LSTM without) within its precision's rounding, padding and unknown words included."""
    model, word_chars = tiny_network(layers, char_dim)
    words, chars, lengths, mask = random_batch(300, 40, word_chars)
    with torch.inference_mode():
        expected = model(words, chars, lengths)  # no char cache yet: the char CNN on every token
        got = NETWORKS[network](model, word_chars)(words, chars, lengths)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected)[mask].abs().max() < TOLERANCE[network.split()[-1]]


def test_bf16_runs_fused_where_it_is_native():
    model, word_chars = tiny_network(1, 30)
    chosen = {p: type(cpu_emissions(model, word_chars, p)) for p in ("fp32", "bf16", "int8")}
    assert chosen == {"fp32": FastBiLSTM, "bf16": FusedBiLSTM if fused_bf16() else FastBiLSTM, "int8": FastBiLSTM}
    assert fused_bf16() == (torch_private.probe(torch_private.AMX) or torch_private.probe(torch_private.AVX512_BF16))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_the_fused_network_fills_batches_in_turn_the_step_loop_cuts_them_at_least_cost(tiny_model, precision):
    tagger = Tagger.load(tiny_model, "cpu", precision=precision)
    fused = precision == "bf16" and fused_bf16()
    assert tagger.step_cost == (None if fused else CPU_STEP_COST)


@pytest.mark.parametrize("amx,bf16,vnni,expected", [
    (True, True, True, "bf16"),  # Xeon with AMX: bf16 measured fastest, int8 slower
    (False, True, True, "int8"),  # Zen 4: int8 measured fastest
    (False, True, False, "bf16"),
    (False, False, True, "fp32"),  # int8 unmeasured without native bf16
    (False, False, False, "fp32"),  # Zen 3 (AVX2): int8 0.07x and bf16 0.08x fp32
])
def test_auto_precision_by_cpu_features(monkeypatch, amx, bf16, vnni, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    assert resolve_precision("auto", torch.device("cpu")) == expected


def test_precision_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == auto_cpu_precision()
    assert [resolve_precision(p, cpu) for p in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    assert resolve_precision("auto", cuda) == "fp32"
    with pytest.raises(ValueError, match="int8 is CPU-only"):
        resolve_precision("int8", cuda)
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", cpu)


@pytest.mark.parametrize("amx,bf16,vnni,slow", [
    (True, True, True, set()),
    (False, True, True, set()),
    (False, True, False, {"int8"}),
    (False, False, True, {"bf16"}),
    (False, False, False, {"bf16", "int8"}),  # Zen 3 (AVX2)
])
def test_precisions_this_cpu_would_run_slowly(monkeypatch, amx, bf16, vnni, slow):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    assert {p for p in ("fp32", "bf16", "int8") if slow_precision(p)} == slow
    assert slow_precision(auto_cpu_precision()) is None  # auto never picks one


class Without:
    """A torch namespace with one attribute gone, as a release that dropped it would have."""

    def __init__(self, inner: object, name: str) -> None:
        self._inner, self._name = inner, name

    def __getattr__(self, attr: str) -> object:
        if attr == self._name:
            raise AttributeError(attr)
        return getattr(self._inner, attr)


def remove_from_torch(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``torch.<name>`` missing for the test (torch.ops namespaces make any name on demand)."""
    *path, attr = name.split(".")
    if not path:
        monkeypatch.delattr(torch, attr)
        return
    parent = functools.reduce(getattr, path[:-1], torch)
    monkeypatch.setattr(parent, path[-1], Without(getattr(parent, path[-1]), attr))


# Each private function, and the precisions whose path calls it.
PRIVATE = {torch_private.AMX: ("auto", "bf16", "int8"), torch_private.AVX512_BF16: ("auto", "bf16", "int8"),
           torch_private.VNNI: ("auto", "bf16", "int8"), torch_private.MKLDNN_BF16: ("bf16",),
           torch_private.INT_MM: ("int8",)}


@pytest.mark.parametrize("name", PRIVATE)
def test_a_torch_without_a_private_function_tags_in_fp32(monkeypatch, caplog, tiny_model, test_file, name):
    """A torch release that dropped one of them still tags, as the fp32 path does, warned once."""
    sentences = [s.tokens for s in read_corpus(test_file)][:300]
    expected = Tagger.load(tiny_model, "cpu", precision="fp32").tag(sentences)
    monkeypatch.setattr(torch_private, "_warned", set())
    remove_from_torch(monkeypatch, name)
    assert torch_private.private(name) is None
    for precision in PRIVATE[name]:
        tagger = Tagger.load(tiny_model, "cpu", precision=precision)
        assert tagger.precision == "fp32" and resolve_precision(precision, torch.device("cpu")) == "fp32"
        assert tagger.tag(sentences) == expected
    warned = [r.getMessage() for r in caplog.records if r.name == torch_private.__name__]
    assert len(warned) == 1 and f"torch.{name}" in warned[0], warned


def test_the_private_functions_are_found_in_this_torch():
    assert all(torch_private.private(name) is not None for name in PRIVATE)
    assert NEEDS.keys() == {"fp32", "bf16", "int8"} and set(PRIVATE) == {n for names in NEEDS.values() for n in names}
