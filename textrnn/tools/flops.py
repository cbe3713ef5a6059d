"""Model FLOPs from layer sizes, counted with forward hooks, and the machine's GEMM rate on the same shapes.

Every matrix product of a forward pass is recorded as (kind, shape, count): nn.Linear,
recurrent layers (the input projection over all steps plus one [B, H] x [H, G*H] product per
step, per layer and direction), and attention's two batched products. 2 FLOPs per
multiply-add; training costs 3x the forward pass. minGRU / minLSTM layers have no recurrent
product: their projection is an nn.Linear (counted as such) and their recurrence an elementwise
scan, recorded as ("scan", (T, B, H)) at 3 FLOPs an element (h + z (v - h)). `gemm_seconds`
times a float32 matmul (or the scan) of each recorded shape, so FLOPs / time is the rate the
hardware gives this model's shapes.
"""

from __future__ import annotations

import time
from collections import Counter

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


class Recorder:
    """Forward hooks on a model that count its matrix products while active."""

    def __init__(self, model: nn.Module):
        from textrnn.nn.attention import Attention
        from textrnn.nn.mincells import MinLayer
        from textrnn.nn.padded_encoder import PaddedEncoder

        self.shapes: Counter = Counter()  # (kind, dims) -> times run
        self.handles = []
        for m in model.modules():
            if isinstance(m, nn.Linear):
                self.handles.append(m.register_forward_hook(self._linear))
            elif isinstance(m, nn.RNNBase):
                self.handles.append(m.register_forward_hook(self._rnn))
            elif isinstance(m, Attention):
                self.handles.append(m.register_forward_hook(self._attention))
            elif isinstance(m, PaddedEncoder):  # its packed path calls the fused op, not its submodules
                self.handles.append(m.register_forward_hook(self._packed_encoder))
            elif isinstance(m, MinLayer):
                self.handles.append(m.register_forward_hook(self._scan))

    def _linear(self, m, inputs, out):
        x = inputs[0]
        self.shapes[("mm", (x.numel() // m.in_features, m.in_features, m.out_features))] += 1

    def _rnn(self, m, inputs, out):
        x = inputs[0]
        if isinstance(x, PackedSequence):
            steps, rows = len(x.batch_sizes), x.data.size(0)
        else:
            B, T = (x.size(0), x.size(1)) if m.batch_first else (x.size(1), x.size(0))
            steps, rows = T, B * T
        G, H, D = GATES.get(type(m).__name__, 1), m.hidden_size, 2 if m.bidirectional else 1
        self._recurrent(rows, steps, m.input_size, G, H, D, m.num_layers)

    def _recurrent(self, rows: int, steps: int, inp: int, G: int, H: int, D: int, layers: int) -> None:
        batch = max(1, rows // max(steps, 1))
        for layer in range(layers):
            self.shapes[("mm", (rows, inp if layer == 0 else H * D, G * H))] += D  # input projection, all steps
            self.shapes[("mm", (batch, H, G * H))] += D * steps  # recurrent product, one per step

    def _scan(self, m, inputs, out):
        B, T = inputs[0].shape[:2]  # x [B, T, I]
        self.shapes[("scan", (T, B, m.hidden_size))] += 1

    def _packed_encoder(self, m, inputs, out):
        x, lengths = inputs[0], inputs[1]
        if m.one_loop(x):
            # both directions of a min layer in one product and one loop: counted as two of each
            B, T = x.shape[:2]
            for f in m.fwd:
                layer = f.layers[0]
                self.shapes[("mm", (B * T, layer.proj.in_features, layer.proj.out_features))] += 2
                self.shapes[("scan", (T, B, layer.hidden_size))] += 2
        if m.cfg.impl == "packed":
            G, D = GATES[m.cfg.cell.upper()], 2 if m.bwd is not None else 1
            self._recurrent(int(lengths.sum()), int(lengths.max()), x.size(-1), G, m.cfg.hidden, D, m.cfg.layers)

    def _attention(self, m, inputs, out):
        q, keys, memory = inputs[0], inputs[1], inputs[2]
        B, T, S = q.size(0), q.size(1), keys.size(1)
        if keys.size(-1) == q.size(-1):  # dot / general scores: [T, H] x [H, S]
            self.shapes[("bmm", (B, T, q.size(-1), S))] += 1
        self.shapes[("bmm", (B, T, S, memory.size(-1)))] += 1  # context: [T, S] x [S, D]

    def clear(self) -> None:
        self.shapes.clear()

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def forward_flops(self) -> int:
        return sum(count * flops(kind, dims) for (kind, dims), count in self.shapes.items())


def flops(kind: str, dims: tuple) -> int:
    if kind == "scan":
        T, B, H = dims
        return 3 * T * B * H
    if kind == "mm":
        M, K, N = dims
        return 2 * M * K * N
    B, M, K, N = dims
    return 2 * B * M * K * N


def _time_one(kind: str, dims: tuple, min_seconds: float = 0.02) -> float:
    if kind == "scan":
        from textrnn.nn.mincells import loop_scan

        T, B, H = dims
        P = torch.randn(B, T, 2 * H)  # a minGRU layer's projections: gate, candidate
        op = lambda: loop_scan(P, "mingru")  # noqa: E731
    elif kind == "mm":
        M, K, N = dims
        a, b = torch.randn(M, K), torch.randn(K, N)
        op = lambda: torch.mm(a, b)  # noqa: E731
    else:
        B, M, K, N = dims
        a, b = torch.randn(B, M, K), torch.randn(B, K, N)
        op = lambda: torch.bmm(a, b)  # noqa: E731
    op()
    n, t0 = 0, time.perf_counter()
    while True:
        op()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds and n >= 3:
            return dt / n


def gemm_seconds(shapes: Counter) -> float:
    """Seconds that float32 matmuls of the recorded shapes take on this machine (each run as often as recorded)."""
    return sum(count * _time_one(kind, dims) for (kind, dims), count in shapes.items())
