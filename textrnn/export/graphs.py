"""The torch modules that become ONNX graphs: flat tensors in, flat tensors out, one per graph file.

Each task's `graphs(model, task)` returns Graphs with named, shaped ports (a str in a shape is a
dynamic axis, an int a fixed size) and `cases(graphs, task, batch, length, gen)` the inputs the
export check feeds both PyTorch and onnxruntime. A recurrent state is `h` [L, B, H] (and `c` for
an LSTM): it goes in by that name and comes back as `h_new` (`c_new`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Port:
    name: str
    shape: tuple  # ints (fixed sizes) and str (dynamic axes: batch, length, src_length)
    dtype: str  # int64 | float32 | bool


@dataclass
class Graph:
    file: str  # model.onnx | encoder.onnx | decoder.onnx
    module: nn.Module  # forward(*inputs) -> tuple of outputs, in port order
    inputs: list[Port]
    outputs: list[Port]


def _state_ports(L: int, H: int, lstm: bool, suffix: str = "") -> list[Port]:
    return [Port(n + suffix, (L, "batch", H), "float32") for n in (("h", "c") if lstm else ("h",))]


def _ids(V: int, B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(4, V, (B, T), generator=gen)  # [B, T]: real tokens (ids 0-3 are the specials)


def _padded(V: int, pad: int, B: int, T: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids [B, T] padded after random lengths [B] (row 0 full length)."""
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = T
    ids = _ids(V, B, T, gen).masked_fill(torch.arange(T)[None, :] >= lengths[:, None], pad)
    return ids, lengths


# -- classify: ids, lengths -> probs
class ClassifierGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths):  # ids [B, T], lengths [B] -> probs [B, C]
        return self.model(ids, lengths).float().softmax(-1)


def classifier_graphs(model, task) -> list[Graph]:
    ins = [Port("ids", ("batch", "length"), "int64"), Port("lengths", ("batch",), "int64")]
    return [Graph("model.onnx", ClassifierGraph(model), ins, [Port("probs", ("batch", len(task.labels)), "float32")])]


def classifier_cases(graphs, task, B: int, T: int, gen) -> dict:
    ids, lengths = _padded(len(task.vocab), task.vocab.pad, B, T, gen)
    return {"model.onnx": {"ids": ids, "lengths": lengths}}


# -- lm: ids, state -> log-probabilities of the next token, new state
class LMStep(nn.Module):
    def __init__(self, model: nn.Module, lstm: bool):
        super().__init__()
        self.model, self.lstm = model, lstm

    def forward(self, ids, *state):  # ids [B, T], h [L, B, H] (, c) -> log_probs [B, V], h_new (, c_new)
        scores, new = self.model(ids, tuple(state) if self.lstm else state[0])  # [B, T, V]
        last = scores[:, -1].float()  # the adaptive softmax gives log-probabilities already
        logp = last if self.model.asm is not None else last.log_softmax(-1)
        return (logp, *new) if self.lstm else (logp, new)


def lm_graphs(model, task) -> list[Graph]:
    m = task.m
    lstm = m.cell == "lstm"
    ins = [Port("ids", ("batch", "length"), "int64"), *_state_ports(m.layers, m.hidden, lstm)]
    outs = [Port("log_probs", ("batch", len(task.vocab)), "float32"), *_state_ports(m.layers, m.hidden, lstm, "_new")]
    return [Graph("model.onnx", LMStep(model, lstm), ins, outs)]


def lm_cases(graphs, task, B: int, T: int, gen) -> dict:
    m = task.m
    names = ("h", "c") if m.cell == "lstm" else ("h",)
    state = {n: 0.5 * torch.randn(m.layers, B, m.hidden, generator=gen) for n in names}  # [L, B, H]
    return {"model.onnx": {"ids": _ids(len(task.vocab), B, T, gen), **state}}


# -- translate / chat: encoder (src, lengths -> state, memory) and one decoder step
class EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, src, lengths):  # src [B, S], lengths [B] -> h (, c) (, feed), memory, keys, mask
        (rnn, feed), mem = self.model.start(src, lengths)
        state = rnn if isinstance(rnn, tuple) else (rnn,)
        return (*state, *([] if feed is None else [feed]), mem["memory"], mem["keys"], mem["mask"])


class DecoderStep(nn.Module):
    def __init__(self, model: nn.Module, lstm: bool, feeding: bool):
        super().__init__()
        self.model, self.lstm, self.feeding = model, lstm, feeding

    def forward(self, y, *inputs):
        """y [N], h [L, N, H] (, c) (, feed [N, O]), memory [N, S, D], keys [N, S, K], mask [N, S]
        -> log_probs [N, V], h_new (, c_new) (, feed_new), attention [N, S]."""
        k = 2 if self.lstm else 1
        rnn = tuple(inputs[:k]) if self.lstm else inputs[0]
        feed = inputs[k] if self.feeding else None
        memory, keys, mask = inputs[-3:]
        logp, (rnn, feed), w = self.model.step(y, (rnn, feed), {"memory": memory, "keys": keys, "mask": mask})
        state = rnn if self.lstm else (rnn,)
        return (logp, *state, *([feed] if self.feeding else []), w)


def seq2seq_graphs(model, task) -> list[Graph]:
    dec, d = model.decoder, task.m.decoder
    lstm, feeding = d.cell == "lstm", d.input_feeding
    feed = [Port("feed", ("batch", dec.out_dim), "float32")] if feeding else []
    D = model.encoder.out_dim
    with torch.no_grad():
        K = dec.attn.keys(torch.zeros(1, 1, D)).size(-1)  # the attention's key size (dot: D itself)
    mem = [
        Port("memory", ("batch", "src_length", D), "float32"),
        Port("keys", ("batch", "src_length", K), "float32"),
        Port("mask", ("batch", "src_length"), "bool"),
    ]
    state = _state_ports(d.layers, d.hidden, lstm)
    enc = Graph(
        "encoder.onnx",
        EncoderGraph(model),
        [Port("src", ("batch", "src_length"), "int64"), Port("lengths", ("batch",), "int64")],
        [*state, *feed, *mem],
    )
    step = Graph(
        "decoder.onnx",
        DecoderStep(model, lstm, feeding),
        [Port("y", ("batch",), "int64"), *state, *feed, *mem],
        [
            Port("log_probs", ("batch", len(task.vocab_tgt)), "float32"),
            *_state_ports(d.layers, d.hidden, lstm, "_new"),
            *([Port("feed_new", ("batch", dec.out_dim), "float32")] if feeding else []),
            Port("attention", ("batch", "src_length"), "float32"),
        ],
    )
    return [enc, step]


@torch.no_grad()
def seq2seq_cases(graphs, task, B: int, T: int, gen) -> dict:
    """A padded source batch for the encoder; the decoder step reads what the torch encoder made of it."""
    enc, step = graphs
    src, lengths = _padded(len(task.vocab), task.vocab.pad, B, T, gen)
    outs = dict(zip([p.name for p in enc.outputs], enc.module(src, lengths)))
    y = torch.randint(4, len(task.vocab_tgt), (B,), generator=gen)
    return {
        "encoder.onnx": {"src": src, "lengths": lengths},
        "decoder.onnx": {"y": y, **{p.name: outs[p.name] for p in step.inputs[1:]}},
    }


# task -> (graphs, cases)
BUILDERS = {
    "classify": (classifier_graphs, classifier_cases),
    "lm": (lm_graphs, lm_cases),
    "translate": (seq2seq_graphs, seq2seq_cases),
    "chat": (seq2seq_graphs, seq2seq_cases),
}
