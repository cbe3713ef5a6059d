"""Length-bucketed batches under a token budget, shuffled across buckets each epoch; padding collate."""

from __future__ import annotations

import random
from typing import Optional, Sequence

import numpy as np
import torch

from textrnn.errors import UserError


def make_batches(
    lengths: Sequence[int],
    batch_tokens: Optional[int] = None,
    batch_size: Optional[int] = None,
    shuffle: bool = False,
    seed: int = 0,
) -> list[list[int]]:
    """Group example indexes into batches of similar length.

    Sorted by length (ties broken at random when shuffling), cut so that a batch's padded size
    (examples × longest) stays within `batch_tokens` (or holds `batch_size` examples); the batch
    order is shuffled. Every index appears in exactly one batch.
    """
    rng = random.Random(seed)
    tie = [rng.random() for _ in lengths] if shuffle else range(len(lengths))
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], tie[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = max(longest, lengths[i], 1)
        full = (batch_size is not None and len(cur) >= batch_size) or (
            batch_tokens is not None and batch_size is None and cur and n * (len(cur) + 1) > batch_tokens
        )
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
    """This rank's part of an epoch: every world-th batch, the same count on every rank.

    The batches left over (fewer than `world`) are pooled and dealt out: one more batch per
    rank, or, when the pool holds fewer examples than there are ranks, one example more in some
    ranks' last batch. The shards are disjoint and cover the epoch.
    """
    if world <= 1:
        return batches
    n = len(batches) - len(batches) % world
    mine = batches[rank:n:world]
    pool = [i for b in batches[n:] for i in b]
    if len(pool) >= world:
        return mine + [pool[rank::world]]
    if pool and not mine:
        raise UserError(f"{len(pool)} training examples cannot be shared by {world} processes")
    extra = pool[rank::world]
    return mine[:-1] + [mine[-1] + extra] if extra else mine


def pad(seqs: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id arrays into [B, T] padded with pad_id, and their lengths [B]."""
    n = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), int(n.max()) if len(seqs) else 0), pad_id, dtype=np.int64)
    if len(seqs):
        out[np.arange(out.shape[1])[None, :] < n[:, None]] = np.concatenate(seqs)  # row-major fill
    return torch.from_numpy(out), torch.from_numpy(n)


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """Host -> device copy; to a GPU from pinned (page-locked) memory, without blocking the host."""
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def pad_fraction(lengths: Sequence[int], batches: list[list[int]]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / padded if padded else 0.0
