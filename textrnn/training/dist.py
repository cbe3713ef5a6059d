"""Multi-process training under `torchrun`: rank and world size from its environment, PyTorch's own engine.

`torchrun --nproc-per-node N -m textrnn run PIPELINE` starts N processes; each joins the process
group (gloo on CPU, nccl on CUDA), trains its model wrapped in DistributedDataParallel on its own
shard of every epoch, and rank 0 alone writes the run directory and prints. Without torchrun
(WORLD_SIZE unset) everything here is a no-op.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def backend() -> str:
    return dist.get_backend() if active() else "none"


def barrier() -> None:
    if active():
        dist.barrier()


def init(device: torch.device) -> None:
    """Join the process group when started by torchrun (once per process)."""
    if world() > 1 and not active():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the model when training with several processes."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, broadcast_buffers=False)


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself (methods other than forward live there, not on the DDP wrapper)."""
    return getattr(model, "module", model)


def broadcast(obj: Any) -> Any:
    """Rank 0's value of `obj` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when it is True on any rank (a stop request, a time budget)."""
    if not active():
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def total(n: float) -> float:
    """Sum of a number over the ranks."""
    if not active():
        return n
    t = torch.tensor([float(n)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def weights_equal(model: nn.Module) -> bool:
    """Whether every rank holds exactly the same parameters (a SHA-256 of their bytes)."""
    if not active():
        return True
    import hashlib

    h = hashlib.sha256()
    for p in unwrap(model).parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    mine = h.hexdigest()
    every = [None] * world()
    dist.all_gather_object(every, mine)
    return all(e == every[0] for e in every)


def finish() -> None:
    if active():
        dist.barrier()
        dist.destroy_process_group()
