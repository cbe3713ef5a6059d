"""Recurrent encoder (lstm | gru | rnn, uni- or bidirectional) over packed sequences."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn.config import Encoder as EncCfg
from textrnn.nn.dropout import Dropout
from textrnn.registry import get, register

register("cell", "lstm")(nn.LSTM)
register("cell", "gru")(nn.GRU)
register("cell", "rnn")(nn.RNN)


class Encoder(nn.Module):
    def __init__(self, input_dim: int, cfg: EncCfg):
        super().__init__()
        self.cfg = cfg
        self.rnn = get("cell", cfg.cell)(
            input_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = Dropout(cfg.dropout)
        self.out_dim = cfg.hidden * (2 if cfg.bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x [B, T, E], lengths [B] -> outputs [B, T, D*H] (zeros past each length), final state.

        The final state is h_n [L*D, B, H] (for an LSTM the tuple (h_n, c_n)), taken at each
        sequence's own last step because the input is packed.
        """
        T = x.size(1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # [B, T, D*H]
        return self.drop(out), state


def last_hidden(state, cfg: EncCfg) -> torch.Tensor:
    """Top layer's final hidden state, both directions concatenated: [B, D*H]."""
    h = state[0] if isinstance(state, tuple) else state  # [L*D, B, H]
    if cfg.bidirectional:
        return torch.cat([h[-2], h[-1]], dim=-1)
    return h[-1]
