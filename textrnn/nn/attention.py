"""Attention over encoder outputs: dot | general (Luong) | bahdanau (additive); padding masked out.

Every kind works on a whole block of queries at once ([B, T, H]: all decoder steps of a
teacher-forced batch, or one step with T = 1), so training attends with one bmm. The keys are
projected once per source batch (`keys`), not once per decoder step.
"""

from __future__ import annotations

import torch
from torch import nn

from textrnn.registry import get, register


class Attention(nn.Module):
    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory [B, S, D] -> keys [B, S, K] (what `scores` compares queries with)."""
        return memory

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query, keys, memory, mask):
        """query [B, T, H], keys [B, S, K], memory [B, S, D], mask [B, S] (True = real token)
        -> context [B, T, D], weights [B, T, S] (each row sums to 1 over the real tokens)."""
        s = self.scores(query, keys).float()  # [B, T, S]
        w = s.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1).to(memory.dtype)
        return torch.bmm(w, memory), w


@register("attention", "dot")
class Dot(Attention):
    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int = 0):
        super().__init__()
        if query_dim != memory_dim:
            raise ValueError(
                f"dot attention needs decoder hidden ({query_dim}) == encoder output size ({memory_dim}); "
                f"use attention: general"
            )

    def scores(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))  # [B, T, H] x [B, H, S] -> [B, T, S]


@register("attention", "general")
class General(Dot):
    """score = q W m; W applied to the memory once (keys [B, S, H])."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int = 0):
        nn.Module.__init__(self)
        self.proj = nn.Linear(memory_dim, query_dim, bias=False)

    def keys(self, memory):
        return self.proj(memory)  # [B, S, H]


@register("attention", "bahdanau")
class Bahdanau(Attention):
    """score = v · tanh(W_q q + W_k m)."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int = 0):
        super().__init__()
        a = attn_dim or query_dim
        self.q = nn.Linear(query_dim, a, bias=False)
        self.k = nn.Linear(memory_dim, a)
        self.v = nn.Linear(a, 1, bias=False)

    def keys(self, memory):
        return self.k(memory)  # [B, S, A]

    def scores(self, query, keys):
        q = self.q(query)  # [B, T, A]
        return self.v(torch.tanh(q[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)  # [B, T, S]


def build(kind: str, query_dim: int, memory_dim: int, attn_dim: int = 0) -> Attention:
    return get("attention", kind)(query_dim, memory_dim, attn_dim)
