"""Length-bucketed batches under a token budget, shuffled across buckets each epoch; padding collate."""

from __future__ import annotations

import random
from typing import Optional, Sequence

import numpy as np
import torch


def make_batches(lengths: Sequence[int], batch_tokens: Optional[int] = None, batch_size: Optional[int] = None,
                 shuffle: bool = False, seed: int = 0) -> list[list[int]]:
    """Group example indexes into batches of similar length.

    Sorted by length (ties broken at random when shuffling), cut so that a batch's padded size
    (examples × longest) stays within `batch_tokens` (or holds `batch_size` examples); the batch
    order is shuffled. Every index appears in exactly one batch.
    """
    rng = random.Random(seed)
    tie = [rng.random() for _ in lengths] if shuffle else range(len(lengths))
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], tie[i]))
    batches, cur, longest = [], [], 0
    for i in order:
        n = max(longest, lengths[i], 1)
        full = (batch_size is not None and len(cur) >= batch_size) or (
            batch_tokens is not None and batch_size is None and cur and n * (len(cur) + 1) > batch_tokens)
        if full:
            batches.append(cur)
            cur, n = [], max(lengths[i], 1)
        cur.append(i)
        longest = n
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's part of an epoch: every world-th batch (equal counts on every rank)."""
    n = len(batches) - len(batches) % world if len(batches) >= world else len(batches)
    return batches[rank:n:world]


def pad(seqs: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id arrays into [B, T] padded with pad_id, and their lengths [B]."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), pad_id, dtype=torch.long)
    for row, s in enumerate(seqs):
        out[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def pad_fraction(lengths: Sequence[int], batches: list[list[int]]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / padded if padded else 0.0
