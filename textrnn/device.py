"""Which torch device to run on: cpu, cuda, mps or auto (cuda, then mps, then cpu); one GPU per torchrun rank."""

from __future__ import annotations

import torch

from textrnn.errors import UserError
from textrnn.training import dist

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str) -> torch.device:
    """The device for `name`; a one-line error when it is unknown or not available here."""
    if name not in DEVICES:
        raise UserError(f"device {name!r}: use cpu, cuda, mps or auto")
    if name in ("auto", "cuda") and torch.cuda.is_available() and dist.world() > 1:
        n = torch.cuda.device_count()
        if dist.local_rank() >= n:
            raise UserError(
                f"torchrun: local rank {dist.local_rank()} needs a GPU of its own but this node has {n}; "
                f"use --nproc-per-node {n}, or --set train.device=cpu (gloo)"
            )
        return torch.device("cuda", dist.local_rank())  # one GPU per torchrun process
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: no MPS device is available")
    return torch.device(name)
