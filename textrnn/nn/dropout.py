"""Dropout whose masks cost less on a CPU than nn.Dropout's (same semantics: each element kept with
probability 1 - p and scaled by 1 / (1 - p) in training; identity in eval).

* With numba (`textrnn[fast]`), float32 / float64: a counter-based draw per element (splitmix64 of a
  key and the element's index, `scan_kernels.dropout`), computed and applied in one parallel pass.
  The key is one draw from torch's generator, so torch.manual_seed fixes the masks (and a resumed
  run's restored generator draws them again); the mask is never stored: the backward draws it again
  from the key. p is rounded to a multiple of 2^-32.
* Otherwise: a mask from 16-bit random numbers, about 2.4x faster than one from torch.rand (one
  32-bit draw per element), itself about twice as fast as nn.Dropout's bernoulli_. PyTorch's CPU
  generator (mt19937) is serial and makes one draw per element of any dtype: an int64 tensor of
  full-range draws gives four independent 16-bit numbers per draw. p is rounded to a multiple of
  1/65536 (0.3 drops with probability 0.300003) and the scale taken from that rounded p, so the
  expectation is exact.

The two give different masks for one seed: a run is reproducible with the same install, as with any
change of torch's kernels. On other devices it is nn.functional.dropout.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from textrnn.nn import scan_kernels
from textrnn.nn.switches import switched

LEVELS = 1 << 16  # the torch mask compares 16-bit numbers: p in steps of 1/65536
HASH_LEVELS = 1 << 32  # the compiled mask compares 32-bit numbers
MASKS = ("auto", "torch")
_masks = ["auto"]  # which CPU masks Dropout draws; set with `use_masks`


def use_masks(masks: str) -> contextlib.AbstractContextManager[None]:
    """Draw CPU dropout masks with `masks` inside the block: auto (the compiled masks where numba is
    installed, else torch's) or torch (the 16-bit masks from torch's generator). Benchmarks and tests."""
    return switched(_masks, "masks", masks, MASKS)


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """x [*] -> a float mask [*] of x's dtype: 1 / (1 - p') with probability 1 - p', else 0 (p' = p
    rounded to 1/65536). Four 16-bit lanes from each 64-bit draw of torch's CPU generator."""
    drop = min(round(p * LEVELS), LEVELS - 1)
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # full-range draws
    lanes = bits.view(torch.int16)[:n].view(x.shape)  # uniform on [-32768, 32767]
    return (lanes >= drop - LEVELS // 2).to(x.dtype).mul_(LEVELS / (LEVELS - drop))


class _Hashed(torch.autograd.Function):
    """x [*] -> x with the counter-based mask of `key` applied (scan_kernels.dropout); backward: the
    same mask on the gradient, drawn again."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, key: int, drop: int, scale: float):
        ctx.mask = key, drop, scale
        return scan_kernels.dropout(x, key, drop, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return scan_kernels.dropout(grad, *ctx.mask), None, None, None


def hashed_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of a CPU float32 / float64 x through the compiled counter-based mask (numba)."""
    drop = min(round(p * HASH_LEVELS), HASH_LEVELS - 1)
    key = int(torch.empty((), dtype=torch.int64).random_())  # one draw of torch's generator: [0, 2^63)
    return _Hashed.apply(x, key, drop, HASH_LEVELS / (HASH_LEVELS - drop))


class Dropout(nn.Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        if _masks[0] == "auto" and x.dtype in (torch.float32, torch.float64) and scan_kernels.available():
            return hashed_dropout(x, self.p)
        return x * keep_mask(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
