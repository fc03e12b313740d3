"""CPU inference without the work the LSTM does not need once the weights are fixed.

A first-layer LSTM's input half, ``W_ih · [word; chars] + b``, depends only on the word, so it
is computed once per vocabulary word into a table (unknown words still run the char CNN). What
is left per token is the recurrent half, run here step by step for both directions at once:
the backward direction reads each sentence reversed within its own length, so padding always
comes after a sentence's last token and never reaches its states, whatever the batch holds.
:class:`FusedBiLSTM`, bf16 where the CPU has it, keeps no table: oneDNN's fused LSTM kernel
computes both halves per token, and still reads the backward direction the same way.

Precisions: ``fp32``; ``bf16`` (oneDNN's fused LSTM where bf16 is native, :func:`fused_bf16`;
elsewhere the recurrent matrix product in bfloat16, states and sums in fp32); ``int8`` (the
recurrent product as int8 x int8 -> int32 with ``torch._int_mm``: ``h`` lies in (-1, 1), so it
quantizes with a fixed scale and no per-step statistics).
"""

from __future__ import annotations

import torch
from torch import nn

from .defaults import PRECISION_CHOICES as PRECISIONS
from .network import BiLSTMTagger
from .reversal import reverse_time, reversed_positions
from .torch_private import AMX, AVX512_BF16, CPU_PROBES, INT_MM, MKLDNN_BF16, VNNI, private, probe
from .vocab import UNK_ID

_H_SCALE = 127.0  # h = o * tanh(c) is in (-1, 1)


def auto_cpu_precision() -> str:
    """What ``auto`` runs on this CPU: the fastest precision measured within 0.1 test F1 of fp32
    on each kind of CPU (docs/benchmarks.md#auto-precision-by-cpu), where this torch can run it."""
    if probe(AMX):
        return runnable("bf16")
    if probe(AVX512_BF16):
        return runnable("int8" if probe(VNNI) else "bf16")
    return "fp32"


def slow_precision(precision: str) -> str | None:
    """Why ``precision`` runs far slower than fp32 on this CPU (an explicit choice is still
    honoured, so a fleet's setting works on every node), or None: ``torch._int_mm`` without
    AVX-512 VNNI and bf16 without AVX512-BF16 or AMX are not native
    (docs/benchmarks.md#auto-precision-by-cpu)."""
    if precision == "int8" and not probe(VNNI):
        return "no AVX-512 VNNI; int8 ran 15x slower than fp32 on such a CPU"
    if precision == "bf16" and not (probe(AVX512_BF16) or probe(AMX)):
        return "no AVX512-BF16 or AMX; bf16 ran 1.7-13x slower than fp32 on such CPUs"
    return None


# The private torch functions each CPU precision's path calls (model.torch_private).
NEEDS = {"fp32": (), "bf16": (*CPU_PROBES, MKLDNN_BF16), "int8": (*CPU_PROBES, INT_MM)}


def runnable(precision: str) -> str:
    """``precision`` on CPU, or fp32 where this torch lacks a private function its path needs."""
    return precision if all(private(name) is not None for name in NEEDS[precision]) else "fp32"


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision to run: ``auto`` is :func:`auto_cpu_precision` on CPU, fp32 on CUDA."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        if name == "int8":
            raise ValueError("precision int8 is CPU-only; use fp32 or bf16 on CUDA")
        return "fp32" if name == "auto" else name
    return auto_cpu_precision() if name == "auto" else runnable(name)


def _gate_order(weight: torch.Tensor) -> torch.Tensor:
    """PyTorch keeps gates as (i, f, g, o); (i, f, o, 2g) lets one sigmoid cover all four, as
    tanh(x) = 2 sigmoid(2x) - 1 (:func:`recur`). Doubling is exact in every precision."""
    i, f, g, o = weight.chunk(4, dim=0)
    return torch.cat([i, f, o, 2 * g], dim=0)


class RecurrentProduct:
    """``h @ W_hh^T`` for both directions ([2, B, H] -> [2, B, 4H] fp32) in one precision."""

    def __init__(self, w_hh: torch.Tensor, precision: str) -> None:  # w_hh: [2, 4H, H]
        self.precision = precision
        if precision == "int8":
            self.int_mm = private(INT_MM)
            scale = w_hh.abs().amax(dim=2, keepdim=True).clamp_min(1e-12) / 127.0  # [2, 4H, 1]
            self.weight = (w_hh / scale).round().to(torch.int8).transpose(1, 2).contiguous()
            self.scale = (scale.squeeze(2) / _H_SCALE).unsqueeze(1)  # [2, 1, 4H]
        else:
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            self.weight = w_hh.transpose(1, 2).to(dtype).contiguous()  # [2, H, 4H]

    def add_to(self, gates: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``gates += h @ W_hh^T``, in place."""
        if self.precision == "fp32":
            return gates.baddbmm_(h, self.weight)
        if self.precision == "bf16":
            return gates.add_(torch.bmm(h.to(torch.bfloat16), self.weight))
        q = (h * _H_SCALE).round_().to(torch.int8)
        # Each direction's product goes straight into one int32 buffer (addcmul_ still casts it
        # to fp32 inside): faster than stacking them (docs/benchmarks.md#int8-products).
        acc = gates.new_empty(gates.shape, dtype=torch.int32)
        for d in range(2):
            self.int_mm(q[d], self.weight[d], out=acc[d])
        return gates.addcmul_(acc, self.scale)


def recur(gates: torch.Tensor, product: RecurrentProduct) -> torch.Tensor:
    """LSTM states [T, 2, B, H] from input gates [T, 2, B, 4H] (order i, f, o, g, with g's
    pre-activation doubled; overwritten), zero start. tanh(x) is computed as 2 sigmoid(2x) - 1:
    torch's CPU tanh takes several times as long as its sigmoid, so a step's two tanh cost more
    than its matrix product (docs/benchmarks.md#the-step-loops-tanh). Activations run in place."""
    t_max, _, b, four_h = gates.shape
    hidden = four_h // 4
    h = gates.new_zeros(2, b, hidden)
    c = gates.new_zeros(2, b, hidden)
    squashed = torch.empty_like(c)  # sigmoid(2c)
    out = gates.new_empty(t_max, 2, b, hidden)
    for t in range(t_max):
        i, f, o, s = product.add_to(gates[t], h).sigmoid_().split(hidden, dim=-1)  # s = sigmoid(2g)
        c.mul_(f).addcmul_(i, s, value=2).sub_(i)  # f c + i tanh(g)
        torch.mul(c, 2, out=squashed).sigmoid_()
        h = torch.addcmul(o, o, squashed, value=2, out=out[t]).sub_(o, alpha=2)  # o tanh(c)
    return out


class FastBiLSTM(nn.Module):
    """Emission scores equal to ``model(words, chars, lengths)`` in eval mode, for fixed weights."""

    def __init__(self, model: BiLSTMTagger, word_chars: torch.Tensor, precision: str) -> None:
        super().__init__()
        self.model = model
        self.precision = precision
        lstm = model.lstm
        self.layers = [self._layer_weights(lstm, k, precision) for k in range(lstm.num_layers)]
        model.cache_char_features(word_chars)
        with torch.no_grad():
            self.table = self._input_gates(word_inputs(model), 0).flatten(0, 1)  # [2V, 4H]: forward, backward

    @staticmethod
    def _layer_weights(lstm: nn.LSTM, k: int, precision: str) -> tuple[torch.Tensor, torch.Tensor, RecurrentProduct]:
        """(W_ih [2, 4H, in], bias [2, 4H], recurrent product) of layer k, gates reordered."""
        get = lambda name, d: _gate_order(getattr(lstm, f"{name}_l{k}{'_reverse' if d else ''}").detach())  # noqa: E731
        w_ih = torch.stack([get("weight_ih", d) for d in range(2)])
        bias = torch.stack([get("bias_ih", d) + get("bias_hh", d) for d in range(2)])
        w_hh = torch.stack([get("weight_hh", d) for d in range(2)])
        return w_ih, bias, RecurrentProduct(w_hh, precision)

    def _input_gates(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """[..., in] -> [2, ..., 4H]: both directions' input halves."""
        w_ih, bias, _ = self.layers[layer]
        flat = x.reshape(-1, x.shape[-1])
        gates = torch.stack([torch.addmm(bias[d], flat, w_ih[d].t()) for d in range(2)])
        return gates.view(2, *x.shape[:-1], -1)

    def _first_gates(self, words: torch.Tensor, chars: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
        """[T, 2, B, 4H]: table rows, the backward direction in reversed order, unknowns filled in."""
        n_words = self.table.shape[0] // 2
        rows = torch.stack([words.t(), words.gather(1, rev).t() + n_words], dim=1)  # [T, 2, B]
        gates = nn.functional.embedding(rows, self.table)  # faster than index_select on CPU
        bs, ts = (words == UNK_ID).nonzero(as_tuple=True)
        if len(bs):
            unk = self._input_gates(unknown_inputs(self.model, chars[bs, ts], len(bs)), 0)  # [2, n, 4H]
            gates[ts, 0, bs] = unk[0]
            gates[rev[bs, ts], 1, bs] = unk[1]
        return gates

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Emission scores [B, T, n_tags]."""
        rev = reversed_positions(lengths, words.shape[1])
        gates = self._first_gates(words, chars, rev)
        for layer, (_, _, product) in enumerate(self.layers):
            if layer:
                x = self._input_gates(outputs, layer)  # noqa: F821 - the previous layer's
                gates = torch.stack([x[0], reverse_time(x[1], rev)], dim=1)
            states = recur(gates, product)
            if layer + 1 < len(self.layers):
                outputs = torch.cat([states[:, 0], reverse_time(states[:, 1], rev)], dim=2)  # [T, B, 2H]
        return emit(self.model, states, rev).transpose(0, 1)


class FusedBiLSTM(nn.Module):
    """bf16 emission scores through oneDNN's LSTM kernel (torch's ``nn.LSTM`` in bfloat16 on CPU):
    a step's matrix products and gate arithmetic run fused, where :class:`FastBiLSTM` dispatches a
    dozen ops a step. Inputs, weights and the states handed on are bf16. Each direction is a
    one-way LSTM; the backward one reads each sentence reversed within its own length, as in
    FastBiLSTM, so padding never reaches a sentence's states. It beats the step loop in bf16
    only, and its batches are filled in turn (the Tagger's ``step_cost`` None), as that ran
    faster than cutting them at least estimated cost (docs/benchmarks.md#the-fused-bf16-lstm)."""

    def __init__(self, model: BiLSTMTagger, word_chars: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        model.cache_char_features(word_chars)
        with torch.no_grad():
            self.inputs = word_inputs(model).to(torch.bfloat16)  # [V, in]
        lstm = model.lstm
        self.directions = nn.ModuleList(
            nn.ModuleList(_one_way(lstm, k, d) for d in range(2)) for k in range(lstm.num_layers))

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Emission scores [B, T, n_tags], fp32."""
        rev = reversed_positions(lengths, words.shape[1])
        x = nn.functional.embedding(words.t(), self.inputs)  # [T, B, in]
        bs, ts = (words == UNK_ID).nonzero(as_tuple=True)
        if len(bs):
            x[ts, bs] = unknown_inputs(self.model, chars[bs, ts], len(bs)).to(x.dtype)
        for layer, (forward, backward) in enumerate(self.directions):
            if layer:  # the previous layer's states, both in order
                x = torch.cat([states[:, 0], reverse_time(states[:, 1], rev)], dim=2)  # noqa: F821
            states = torch.stack([forward(x)[0], backward(reverse_time(x, rev))[0]], dim=1)  # [T, 2, B, H]
        return emit(self.model, states.float(), rev).transpose(0, 1)


def _one_way(lstm: nn.LSTM, layer: int, direction: int) -> nn.LSTM:
    """One direction (1: backward) of one layer of ``lstm`` as a one-way bf16 LSTM."""
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    one = nn.LSTM(lstm.input_size if layer == 0 else 2 * lstm.hidden_size, lstm.hidden_size)
    one.load_state_dict({f"{name}_l0": getattr(lstm, name + suffix).detach()
                         for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    return one.eval().to(torch.bfloat16)


def fused_bf16() -> bool:
    """Whether bf16 runs oneDNN's fused LSTM on this CPU: where bf16 is native (AMX or
    AVX512-BF16) and torch's oneDNN has bf16 kernels. Elsewhere bf16 stays in the step loop,
    the path measured there (docs/benchmarks.md#the-fused-bf16-lstm)."""
    return slow_precision("bf16") is None and probe(MKLDNN_BF16)


def cpu_emissions(model: BiLSTMTagger, word_chars: torch.Tensor, precision: str) -> nn.Module:
    """The CPU emission network for ``precision``: :class:`FusedBiLSTM` for bf16 where
    :func:`fused_bf16`, else the step loop (:class:`FastBiLSTM`)."""
    if precision == "bf16" and fused_bf16():
        return FusedBiLSTM(model, word_chars)
    return FastBiLSTM(model, word_chars, precision)


def word_inputs(model: BiLSTMTagger) -> torch.Tensor:
    """[V, in]: every vocabulary word's LSTM input (embedding, cached char features)."""
    parts = [model.word_embed.weight]
    if model.char_table is not None:
        parts.append(model.char_table)
    return torch.cat(parts, dim=1)


def unknown_inputs(model: BiLSTMTagger, chars: torch.Tensor, n: int) -> torch.Tensor:
    """[n, in] inputs of n unknown tokens (char ids [n, C])."""
    parts = [model.word_embed.weight[UNK_ID].expand(n, -1)]
    if model.chars is not None:
        parts.append(model.chars(chars.unsqueeze(0)).squeeze(0))
    return torch.cat(parts, dim=1)


def emit(model: BiLSTMTagger, states: torch.Tensor, rev: torch.Tensor) -> torch.Tensor:
    """[T, B, n_tags] from states [T, 2, B, H] (the backward direction in reversed order): the output
    layer applied to each direction's half of its weights, the backward one put back in order
    afterwards: a reversal of n_tags columns, not of 2H."""
    forward_half, backward_half = model.emit.weight.chunk(2, dim=1)
    backward = torch.matmul(states[:, 1], backward_half.t())
    forward = torch.addmm(model.emit.bias, states[:, 0].flatten(0, 1), forward_half.t()).view_as(backward)
    return forward.add_(reverse_time(backward, rev))
