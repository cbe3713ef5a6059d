"""Chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?").

A gated cell forgets at a rate its gate biases set. PyTorch's default biases (near zero) make
every unit keep about half its state per step at first, a memory of one or two tokens, which
the cell must learn to stretch. Chrono draws each unit's keep bias as log u, u ~ U(1, N - 1),
and its input bias as -log u, so at initialisation unit k remembers about u_k + 1 steps:
timescales spread from 2 to N tokens, N about the longest dependency the data holds
(`chrono: N` on an encoder, decoder or LM; null keeps PyTorch's initialisation). Measured
(docs/min-cells.md): it lifts minGRU classifiers on IMDB's long reviews and slows a PTB
language model, which predicts from the last few words first.

    LSTM:    b_f = log u, b_i = -log u               (gates i, f, g, o; the b_hh parts zeroed)
    GRU:     b_z = log u                              (h' = (1 - z) n + z h: z keeps)
    minGRU:  b_z = -log u                             (h_t = (1 - z_t) h_{t-1} + z_t h̃_t: z writes)
    minLSTM: b_f = log u, b_i = -log u                (a_t = f_t / (f_t + i_t))

All four then keep a fraction u / (u + 1) of their state per step when the input term is zero.
"""

from __future__ import annotations

import torch
from torch import nn

from textrnn.nn.mincells import MinLayer


def keep_logits(n: int, tmax: int) -> torch.Tensor:
    """[n] draws of log u, u ~ U(1, tmax - 1): each unit's keep-gate bias (torch's generator)."""
    return torch.empty(n).uniform_(1, tmax - 1).log()


@torch.no_grad()
def chrono_init(module: nn.Module, tmax: int) -> None:
    """Set the gate biases of every LSTM, GRU and min layer inside `module` (in place)."""
    if tmax < 2:
        raise ValueError(f"chrono: {tmax} is under 2 (the longest timescale, in steps)")
    for m in module.modules():
        if isinstance(m, (nn.LSTM, nn.GRU)):
            H, lstm = m.hidden_size, isinstance(m, nn.LSTM)
            gates = [0, 1] if lstm else [1]  # the biases chrono sets: LSTM i, f; GRU z
            for name, p in m.named_parameters():
                if not name.startswith("bias_"):
                    continue
                b = p.view(-1, H)  # [4, H] (i, f, g, o) or [3, H] (r, z, n)
                if name.startswith("bias_hh"):
                    b[gates] = 0.0
                    continue
                u = keep_logits(H, tmax).to(b)
                b[1] = u  # LSTM f, GRU z
                if lstm:
                    b[0] = -u  # i
        elif isinstance(m, MinLayer):
            H = m.hidden_size
            b = m.proj.bias.view(-1, H)  # [gates + 1, H]
            u = keep_logits(H, tmax).to(b)
            if m.kind == "mingru":
                b[0] = -u  # z: how much of the candidate enters
            else:
                b[0], b[1] = u, -u  # forget, input
        elif isinstance(m, nn.RNN):
            raise ValueError("chrono: cell rnn has no gates to initialise")
