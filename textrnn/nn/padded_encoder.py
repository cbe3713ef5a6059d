"""(Bi)RNN encoder with two interchangeable paths over the same weights: padded and packed.

* padded (the default): one fused call (oneDNN on a CPU, cuDNN on a GPU) per layer and
  direction over the padded batch. The backward direction reads each sequence reversed within
  its own length (padding stays at the end), so no direction ever sees padding before a real
  token. On a CPU a PackedSequence would make PyTorch step through time with small ops.
* packed (`model.encoder.impl: packed`): one cuDNN call for all layers and directions over a
  PackedSequence. Batches are length-bucketed (under 1 % padding on the shipped corpora), so
  packing saves no work; on an H100 it measured 0.79-1.17x the padded path's speed.

Both give the same outputs and final states, so a model trained on a GPU runs on a CPU as is.

`separate_directions` (padded path only) stacks each direction on its own: layer i of the forward
stack reads the forward layer i-1 alone (H wide, not 2H), and so does the backward stack, which
reads right to left throughout; the top layers' outputs are concatenated (ELMo's layout, what a
bidirectional language model's layers fit).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn.config import SCAN_CELLS
from textrnn.config import Encoder as EncCfg
from textrnn.nn import mincells
from textrnn.nn.cells import CELLS
from textrnn.nn.chrono import chrono_init
from textrnn.nn.dropout import Dropout
from textrnn.nn.mlp import MLPBlock


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, F]: each row's first lengths[b] steps reversed, padding left in place (an involution)."""
    T = x.size(1)
    t = torch.arange(T, device=x.device)[None, :]  # [1, T]
    n = lengths.to(x.device)[:, None]  # [B, 1]
    idx = torch.where(t < n, n - 1 - t, t)  # [B, T]
    return x.gather(1, idx[:, :, None].expand(-1, -1, x.size(2)))


class PaddedEncoder(nn.Module):
    def __init__(self, input_dim: int, cfg: EncCfg):
        super().__init__()
        self.cfg = cfg
        D = 2 if cfg.bidirectional else 1
        cell = CELLS[cfg.cell]
        self.separate = cfg.separate_directions and cfg.bidirectional
        dims = [input_dim] + [cfg.hidden * (1 if self.separate else D)] * (cfg.layers - 1)
        # parallel-scan cells stack as residual blocks: layer i > 0 reads LayerNorm(x), adds x to its output
        self.residual = cfg.cell in SCAN_CELLS

        def layer(i: int, d: int) -> nn.Module:
            return cell(d, cfg.hidden, batch_first=True, **({"norm_input": True} if self.residual and i else {}))

        self.fwd = nn.ModuleList(layer(i, d) for i, d in enumerate(dims))
        self.bwd = nn.ModuleList(layer(i, d) for i, d in enumerate(dims)) if cfg.bidirectional else None
        self.drop = Dropout(cfg.dropout)
        self.out_dim = cfg.hidden * D
        # mlp: each layer's output then goes through a residual MLP block (the min-cell paper's layout)
        self.mlps = nn.ModuleList(MLPBlock(self.out_dim, cfg.mlp, cfg.dropout) for _ in dims) if cfg.mlp else None
        if cfg.chrono is not None:
            chrono_init(self, cfg.chrono)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x [B, T, E], lengths [B] -> outputs [B, T, D*H] (zeros past each length), h_n [L*D, B, H].

        h_n holds each sequence's state at its own last real step (layer-major, forward then
        backward, like nn.LSTM's h_n); the cell state is not returned.
        """
        if self.cfg.impl == "packed":
            return self._packed(x, lengths)
        if self.separate:
            return self._separate(x, lengths)
        mask, last = self._mask_last(x, lengths)
        finals = []
        for i, f in enumerate(self.fwd):
            if i:
                x = self.drop(x)
            if self.one_loop(x):
                assert self.bwd is not None
                y, h_n = mincells.both_directions(f, self.bwd[i], x, mask)  # [B, T, 2H], [2, B, H]
                finals += [h_n[0], h_n[1]]
                x = self.join(i, y, x)  # y is 0 on the padding, and so is x above the first layer
                x = x * mask if self.mlps is not None else x
                continue
            out_f, _ = f(x)  # [B, T, H]
            finals.append(out_f.gather(1, last)[:, 0])
            outs = [out_f]
            if self.bwd is not None:
                out_b, _ = self.bwd[i](reverse_within(x, lengths))
                finals.append(out_b.gather(1, last)[:, 0])
                outs.append(reverse_within(out_b, lengths))
            y = torch.cat(outs, -1)  # [B, T, D*H]
            x = self.join(i, y, x) * mask
        return self.drop(x), torch.stack(finals)

    def join(self, i: int, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Layer i's output y [B, T, D*H] (x [B, T, F]: what it read) -> the next layer's input:
        y, plus x above the first layer of a residual (min-cell) stack, then the MLP block if any."""
        out = y + x if self.residual and i else y
        return self.mlps[i](out) if self.mlps is not None else out

    def one_loop(self, x: torch.Tensor) -> bool:
        """Whether each bidirectional layer runs as one product and one step loop (min cells on the
        loop path, directions not separate): no reversals of input or output."""
        return self.residual and self.bwd is not None and not self.separate and mincells.runs_loop(x)

    def _mask_last(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, E] -> mask [B, T, 1] of real steps, index [B, 1, H] of each row's last real step."""
        T = x.size(1)
        mask = (torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
        last = (lengths.to(x.device) - 1).clamp(min=0)[:, None, None].expand(-1, 1, self.cfg.hidden)  # [B, 1, H]
        return mask, last

    def _separate(self, x: torch.Tensor, lengths: torch.Tensor):
        """separate_directions: two stacks, each reading its own layer below -> [B, T, 2H], h_n [L*2, B, H]."""
        assert self.bwd is not None
        mask, last = self._mask_last(x, lengths)
        xf, xb = x, reverse_within(x, lengths)  # the backward stack reads right to left throughout
        finals = []
        for i, (f, b) in enumerate(zip(self.fwd, self.bwd)):
            if i:
                xf, xb = self.drop(xf), self.drop(xb)
            of, _ = f(xf)  # [B, T, H]
            ob, _ = b(xb)  # [B, T, H], reversed within each length
            finals += [of.gather(1, last)[:, 0], ob.gather(1, last)[:, 0]]
            xf = (of + xf if self.residual and i else of) * mask
            xb = (ob + xb if self.residual and i else ob) * mask
        return self.drop(torch.cat([xf, reverse_within(xb, lengths)], -1)), torch.stack(finals)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters of each layer (both directions, its MLP block), bottom to top (fine-tuning's groups)."""
        mods = [
            [f] + ([self.bwd[i]] if self.bwd is not None else []) + ([self.mlps[i]] if self.mlps is not None else [])
            for i, f in enumerate(self.fwd)
        ]
        return [[p for m in ms for p in m.parameters()] for ms in mods]

    def _flat_weights(self) -> list[torch.Tensor]:
        """nn.LSTM's weight order: per layer, forward then backward, each [w_ih, w_hh, b_ih, b_hh]."""
        mods = [
            m
            for i in range(len(self.fwd))
            for m in ([self.fwd[i], self.bwd[i]] if self.bwd is not None else [self.fwd[i]])
        ]
        return [w for m in mods for w in m._flat_weights]  # type: ignore[union-attr]

    def _packed(self, x: torch.Tensor, lengths: torch.Tensor):
        """One fused call (cuDNN on a GPU) over all layers and directions of a PackedSequence."""
        B, T = x.shape[:2]
        L, D, H = len(self.fwd), 2 if self.bwd is not None else 1, self.cfg.hidden
        p = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h0 = x.new_zeros(L * D, B, H)
        hx = (h0, h0) if self.cfg.cell == "lstm" else h0
        op: Any = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}[self.cfg.cell]
        drop = self.cfg.dropout if self.training and L > 1 else 0.0
        with warnings.catch_warnings():  # the per-layer modules' weights are compacted for cuDNN on each call
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            res = op(p.data, p.batch_sizes, hx, self._flat_weights(), True, L, drop, self.training, D == 2)
        out, _ = pad_packed_sequence(p._replace(data=res[0]), batch_first=True, total_length=T)  # [B, T, D*H]
        h_n = res[1].index_select(1, p.unsorted_indices)  # [L*D, B, H], back in batch order
        return self.drop(out), h_n


def last_hidden(h_n: torch.Tensor, cfg: EncCfg) -> torch.Tensor:
    """The top layer's final hidden state, both directions concatenated: h_n [L*D, B, H] -> [B, D*H]."""
    if cfg.bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
    return h_n[-1]
