"""Attentional RNN decoder (Luong): RNN → attention → tanh(W [h; context]) → output layer.

Without input feeding the teacher-forced pass is ONE fused RNN call over all target steps
followed by batched attention (the fast path on CPU). With input feeding the previous
attentional vector is fed back with each input token, which forces a step-by-step loop.
The decoder starts from the encoder's final states through a learned bridge.
"""

from __future__ import annotations

import torch
from torch import nn

from textrnn.nn import attention
from textrnn.nn.cells import CELLS
from textrnn.nn.chrono import chrono_init
from textrnn.nn.dropout import Dropout
from textrnn.nn.embedding import Embedding


def select_state(state, idx: torch.Tensor):
    """Rows `idx` of a decoder state (rnn state with batch on dim 1, feed [N, O] or None)."""
    rnn, feed = state
    rnn = tuple(s.index_select(1, idx) for s in rnn) if isinstance(rnn, tuple) else rnn.index_select(1, idx)
    return rnn, None if feed is None else feed.index_select(0, idx)


class Decoder(nn.Module):
    def __init__(self, embed: Embedding, emb_dim: int, memory_dim: int, enc_state_dim: int, cfg, vocab_size: int):
        """cfg: cell, hidden, layers, dropout, attention, attn_dim, input_feeding, bridge, tie_output."""
        super().__init__()
        self.cfg, self.embed = cfg, embed
        H, L = cfg.hidden, cfg.layers
        self.out_dim = emb_dim if cfg.tie_output else H  # size of the attentional vector h~
        in_dim = emb_dim + (self.out_dim if cfg.input_feeding else 0)
        self.rnn = CELLS[cfg.cell](in_dim, H, num_layers=L, dropout=cfg.dropout if L > 1 else 0.0, batch_first=True)
        if cfg.chrono is not None:
            chrono_init(self.rnn, cfg.chrono)
        self.attn = attention.build(cfg.attention, H, memory_dim, cfg.attn_dim)
        self.combine = nn.Linear(H + memory_dim, self.out_dim)
        self.drop = Dropout(cfg.dropout)
        self.out = nn.Linear(self.out_dim, vocab_size)
        if cfg.tie_output:
            self.out.weight = embed.weight
        self.is_lstm = cfg.cell == "lstm"
        if cfg.bridge:
            self.bridge_h = nn.Linear(enc_state_dim, L * H)
            self.bridge_c = nn.Linear(enc_state_dim, L * H) if self.is_lstm else None

    def init_state(self, enc_h: torch.Tensor):
        """Encoder top-layer final hidden states [B, D*He] -> decoder state (an LSTM's c bridged from them too)."""
        B, H, L = enc_h.size(0), self.cfg.hidden, self.cfg.layers
        if self.cfg.bridge:
            h = torch.tanh(self.bridge_h(enc_h)).view(B, L, H).transpose(0, 1).contiguous()  # [L, B, H]
            c = None
            if self.bridge_c is not None:  # an LSTM decoder
                c = self.bridge_c(enc_h).view(B, L, H).transpose(0, 1).contiguous()
        else:
            h = enc_h.new_zeros(L, B, H)
            c = torch.zeros_like(h) if self.is_lstm else None
        feed = enc_h.new_zeros(B, self.out_dim) if self.cfg.input_feeding else None
        return ((h, c) if self.is_lstm else h), feed

    def _attend(self, out, mem):
        """RNN outputs [B, T, H] -> attentional vectors h~ [B, T, O], weights [B, T, S]."""
        ctx, w = self.attn(out, mem["keys"], mem["memory"], mem["mask"])  # [B, T, D], [B, T, S]
        return torch.tanh(self.combine(torch.cat([out, ctx], -1))), w

    def forward(self, tgt_in: torch.Tensor, state, mem: dict):
        """Teacher forcing. tgt_in [B, T] (<bos> y1 … y_{T-1}) -> h~ [B, T, O] (dropout applied), weights [B, T, S]."""
        x = self.embed(tgt_in)  # [B, T, E]
        if not self.cfg.input_feeding:
            out, _ = self.rnn(x, state[0])  # [B, T, H]: one fused call over all steps
            hh, w = self._attend(self.drop(out), mem)
            return self.drop(hh), w
        rnn, feed = state
        hs, ws = [], []
        for t in range(x.size(1)):
            out, rnn = self.rnn(torch.cat([x[:, t : t + 1], feed[:, None]], -1), rnn)  # [B, 1, H]
            hh, w = self._attend(self.drop(out), mem)  # [B, 1, O], [B, 1, S]
            feed = hh[:, 0]
            hs.append(hh)
            ws.append(w)
        return self.drop(torch.cat(hs, 1)), torch.cat(ws, 1)

    def step(self, y: torch.Tensor, state, mem: dict):
        """One step of decoding: y [N] -> h~ [N, O], new state, weights [N, S]."""
        rnn, feed = state
        x = self.embed(y[:, None])  # [N, 1, E]
        if feed is not None:
            x = torch.cat([x, feed[:, None]], -1)
        out, rnn = self.rnn(x, rnn)  # [N, 1, H]
        hh, w = self._attend(out, mem)
        hh = hh[:, 0]
        return hh, (rnn, hh if feed is not None else None), w[:, 0]
