"""Picking the next token from logits: greedy (temperature 0), temperature, top-k, top-p (nucleus)."""

from __future__ import annotations

import math
from typing import Optional

import torch

from textrnn.errors import UserError


def check(temperature: float, top_k: int, top_p: float) -> None:
    """One-line errors for settings that cannot be sampled with."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise UserError(f"--temperature {temperature}: must be 0 (greedy) or more")
    if not isinstance(top_k, int) or top_k < 0:
        raise UserError(f"--top-k {top_k}: must be 0 (off) or more")
    if not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):  # nan fails the comparison too
        raise UserError(f"--top-p {top_p}: must be in (0, 1]")


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """logits [N, V] -> logits [N, V] with -inf outside the top k and outside the top-p nucleus."""
    logits = logits.clone()
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # [N, 1]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # [N, V]
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # probability mass of the tokens ranked above
        drop = before > top_p  # keeps the smallest prefix reaching top_p (always the first token)
        logits.scatter_(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


def pick(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """logits [N, V] -> token ids [N]: argmax at temperature 0, else a sample from the filtered softmax."""
    logits = logits.float()
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)  # [N, V]
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


def generator(seed: Optional[int]) -> torch.Generator:
    """A CPU generator: seeded for reproducible text, from the OS otherwise."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g
