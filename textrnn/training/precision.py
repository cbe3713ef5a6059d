"""Training precision: fp32, or mixed bf16 / fp16 under autocast, chosen per device.

`train.precision: auto` picks float32 on a CUDA GPU: the shipped models are small enough that
an H100 runs them launch-bound, and AMP's casts made them 6-24 % slower there (`mixed` picks
bf16 where the GPU has it, else fp16 with a gradient scaler). On a CPU `auto` is float32 too:
on an AVX-512 BF16 EPYC, bf16 autocast trained SST-2 1.4x faster but to 82.0 % test against
84.8 % in float32 (same pipeline and seed), so bf16 is a choice (`bf16`, or `mixed`), taken only
where the processor computes it natively (AVX-512 BF16 / AMX, as oneDNN reports). On CPUs
without native bfloat16 a bf16 matrix multiply is emulated and runs tens of times slower than
float32, so asking for it is an error.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

from textrnn.errors import UserError


def cpu_native_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix multiplies natively (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _lstm_works(dtype: torch.dtype) -> bool:
    """A one-step LSTM forward + backward under CPU autocast (oneDNN builds differ in what they support)."""
    try:
        lstm = torch.nn.LSTM(8, 8, batch_first=True)
        with torch.autocast("cpu", dtype=dtype):
            out, _ = lstm(torch.randn(2, 3, 8))
        out.float().sum().backward()
        return True
    except RuntimeError:
        return False


def resolve(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for training on `device` (None = float32)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision in ("auto", "mixed"):
            return (torch.bfloat16 if bf16 else torch.float16) if precision == "mixed" else None
        if precision == "bf16" and not bf16:
            raise UserError("train.precision bf16: this GPU has no bfloat16; use fp16 or auto")
        return torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu":
        if precision == "fp16":
            raise UserError("train.precision fp16: CUDA only; on a CPU use bf16 (where supported) or fp32")
        if precision == "auto":
            return None  # float32: see the module docstring (bf16 cost SST-2 accuracy)
        native = cpu_native_bf16() and _lstm_works(torch.bfloat16)  # probed only when bf16 is asked for
        if precision == "bf16" and not native:
            raise UserError(
                "train.precision bf16: this CPU has no native bfloat16 (AVX-512 BF16 / AMX), "
                "where bf16 runs far slower than fp32; use fp32 or auto"
            )
        return torch.bfloat16 if native else None  # bf16, or mixed (bf16 where native)
    return None  # mps: float32


def for_inference(choice: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of the inference commands' `--precision` (None = float32).

    fp32 (the default) | bf16 | fp16 (CUDA) | auto: bf16 on a CPU that computes it natively, else fp32.
    """
    if choice not in ("fp32", "bf16", "fp16", "auto"):
        raise UserError(f"--precision {choice}: one of fp32, bf16, fp16, auto")
    if choice == "fp32":
        return None
    if choice == "auto":
        native = device.type == "cpu" and cpu_native_bf16() and _lstm_works(torch.bfloat16)
        return torch.bfloat16 if native else None
    try:
        return resolve(choice, device)
    except UserError as e:
        raise UserError(str(e).replace("train.precision", "--precision")) from None


def label(dtype: Optional[torch.dtype]) -> str:
    """The config's name for an autocast dtype: fp32 | bf16 | fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization (torch.ao) of nn.Linear and the recurrent layers, for CPU inference."""
    import warnings

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao (no int8 LSTM there)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model, {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}, dtype=torch.qint8
        )
