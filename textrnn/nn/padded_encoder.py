"""(Bi)RNN encoder over padded batches that computes exactly what packed sequences compute, on fused kernels.

On CPU a PackedSequence makes PyTorch step through time with small ops; a padded batch goes
through one fused (oneDNN) call per layer and direction. The backward direction reads each
sequence reversed within its own length (padding stays at the end), so no direction ever sees
padding before a real token: outputs and final states equal those of packed sequences.
"""

from __future__ import annotations

import torch
from torch import nn

from textrnn.config import Encoder as EncCfg
from textrnn.nn.dropout import Dropout
from textrnn.nn import encoder as _cells  # noqa: F401  (registers the cells)
from textrnn.registry import get


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
        cell = get("cell", cfg.cell)
        dims = [input_dim] + [cfg.hidden * D] * (cfg.layers - 1)
        self.fwd = nn.ModuleList(cell(d, cfg.hidden, batch_first=True) for d in dims)
        self.bwd = nn.ModuleList(cell(d, cfg.hidden, batch_first=True) for d in dims) if cfg.bidirectional else None
        self.drop = Dropout(cfg.dropout)
        self.out_dim = cfg.hidden * D

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x [B, T, E], lengths [B] -> outputs [B, T, D*H] (zeros past each length), h_n [L*D, B, H].

        h_n holds each sequence's state at its own last real step (layer-major, forward then
        backward, like nn.LSTM's h_n); the cell state is not returned.
        """
        B, T = x.shape[:2]
        mask = (torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
        last = (lengths.to(x.device) - 1).clamp(min=0)[:, None, None].expand(-1, 1, self.cfg.hidden)  # [B, 1, H]
        finals = []
        for i, f in enumerate(self.fwd):
            if i:
                x = self.drop(x)
            out_f, _ = f(x)  # [B, T, H]
            finals.append(out_f.gather(1, last)[:, 0])
            outs = [out_f]
            if self.bwd is not None:
                out_b, _ = self.bwd[i](reverse_within(x, lengths))
                finals.append(out_b.gather(1, last)[:, 0])
                outs.append(reverse_within(out_b, lengths))
            x = torch.cat(outs, -1) * mask  # [B, T, D*H]
        return self.drop(x), torch.stack(finals)
