"""The feed-forward half of a residual block, as the min-cell paper's models put after each cell.

    x + Dropout(W_2 GELU(W_1 LayerNorm(x)))      W_1: F -> mult·F, W_2: mult·F -> F

Feng et al. 2024 (arXiv 2410.01201) build their models from blocks of a residual cell and a
residual MLP (the Transformer's and Mamba's layout; 4 wide in their language models). The MLP
reads one token's features at a time: it adds per-token non-linear capacity on top of what the
recurrence mixed across time, which a min cell's linear state update lacks
(`model.encoder.mlp: mult`, docs/min-cells.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from textrnn.nn.dropout import Dropout


class MLPBlock(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, mult * dim)
        self.down = nn.Linear(mult * dim, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., F] -> [..., F]."""
        return x + self.drop(self.down(F.gelu(self.up(self.norm(x)))))
