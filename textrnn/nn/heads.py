"""Pooling over encoder outputs (padding excluded) and the MLP classifier head."""

from __future__ import annotations

import torch
from torch import nn

from textrnn.nn.dropout import Dropout
from textrnn.registry import register


def mean_over(out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """out [B, T, H], mask [B, T] bool -> the mean over each row's real steps [B, H]."""
    m = mask.unsqueeze(-1).to(out.dtype)
    return (out * m).sum(1) / m.sum(1).clamp(min=1)


def max_over(out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """out [B, T, H], mask [B, T] bool -> the maximum over each row's real steps [B, H].

    Padding is pushed to -inf by adding a [B, T, 1] bias: one pass forward and none backward (the
    gradient of an addition is passed through), where masked_fill copies the tensor both ways."""
    pad = torch.zeros(mask.shape, dtype=out.dtype, device=out.device).masked_fill_(~mask, float("-inf"))  # [B, T]
    return (out + pad.unsqueeze(-1)).max(1).values


@register("pooling", "mean")
class MeanPool(nn.Module):
    def forward(self, out, mask, last):  # out [B, T, H], mask [B, T] bool, last [B, H] -> [B, H], None
        return mean_over(out, mask), None


@register("pooling", "max")
class MaxPool(nn.Module):
    def forward(self, out, mask, last):
        return max_over(out, mask), None


@register("pooling", "last")
class LastPool(nn.Module):
    def forward(self, out, mask, last):
        return last, None


@register("pooling", "concat")
class ConcatPool(nn.Module):
    """ULMFiT's concat pooling: [last state, max, mean] -> [B, 3H] (the head reads 3H)."""

    widen = 3

    def forward(self, out, mask, last):
        return torch.cat([last, max_over(out, mask), mean_over(out, mask)], -1), None


@register("pooling", "attention")
class AttentionPool(nn.Module):
    """Additive self-attention: weights = softmax(v · tanh(W out)) over real steps."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, 1, bias=False)

    def forward(self, out, mask, last):
        scores = self.v(torch.tanh(self.proj(out))).squeeze(-1)  # [B, T]
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # [B, T]
        return torch.bmm(weights.unsqueeze(1), out).squeeze(1), weights  # [B, H], [B, T]


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: list[int], n_out: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [Dropout(dropout), nn.Linear(dim, h), nn.ReLU()]
            dim = h
        layers += [Dropout(dropout), nn.Linear(dim, n_out)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # [B, H] -> [B, n_out]
        return self.net(x)
