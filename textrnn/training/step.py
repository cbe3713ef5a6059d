"""One training step: forward under autocast, loss, backward (twice under train.adversarial), unscale,
clip, optimizer, scheduler.

The trainer, `textrnn bench` and the benchmarks all run this step, built from `train:` with
`Step.build`; its optimizer, per-batch schedule and gradient scaler are what `last.pt` keeps
besides the model (`state_dict` / `load_state_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union

import torch
from torch import nn

from textrnn import config
from textrnn.training import precision
from textrnn.training.adversarial import Perturbation

LossFn = Callable[[nn.Module, dict], tuple[torch.Tensor, int]]  # (model, batch) -> (mean loss [], tokens)
Schedule = Union[torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau]


def layer_groups(model: nn.Module, t: config.Train) -> list[dict[str, Any]]:
    """The optimizer's parameter groups under train.discriminative / train.unfreeze: the model's layer
    groups bottom to top (its `layer_groups()`; one group for a model without them), each parameter in
    the lowest group naming it; group k of n trains at lr / discriminative ** (n - 1 - k) and keeps its
    index as "layer" (train.unfreeze freezes by it)."""
    own: Any = getattr(model, "layer_groups", None)  # Classifier, LanguageModel, Seq2Seq define it
    groups = own() if own is not None else [list(model.parameters())]
    seen: set[int] = set()
    out = []
    for g in groups:
        out.append([p for p in g if id(p) not in seen])
        seen.update(id(p) for p in g)
    out[-1] += [p for p in model.parameters() if id(p) not in seen]  # anything no group names trains on top
    n, factor = len(out), t.discriminative or 1.0
    return [{"params": g, "lr": t.optimizer.lr / factor ** (n - 1 - k), "layer": k} for k, g in enumerate(out)]


def make_optimizer(params, o: config.Optimizer) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW, fused (one vectorized kernel per tensor) where PyTorch has it: on CPU
    the default per-tensor Adam took 28 ms a step for 5 M parameters, the fused one 3.6 ms.
    `params`: parameters, or parameter groups (dicts, as layer_groups gives them); parameters that
    need no gradient (a frozen pretrained embedding) are left out, and so is a group left empty."""
    items = list(params)
    groups = items if items and isinstance(items[0], dict) else [{"params": items}]
    groups = [dict(g, params=[p for p in g["params"] if p.requires_grad]) for g in groups]
    params = [g for g in groups if g["params"]]
    devices = {p.device.type for g in params for p in g["params"]}
    fast = {"fused": True} if len(devices) == 1 and devices <= {"cpu", "cuda"} else {}

    def build(**kw) -> torch.optim.Optimizer:
        if o.name == "sgd":
            return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, **kw)
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        return cls(params, lr=o.lr, weight_decay=o.weight_decay, **kw)

    try:
        return build(**fast)
    except (RuntimeError, ValueError, TypeError):  # an older torch or a device without fused kernels
        return build()


def make_schedule(
    opt: torch.optim.Optimizer, s: config.Schedule, higher_is_better: bool, total_steps: int
) -> tuple[Optional[Schedule], bool]:
    """Returns (scheduler, stepped_per_batch): plateau steps per epoch on the valid metric, linear per batch."""
    if s.kind == "plateau":
        mode: Literal["min", "max"] = "max" if higher_is_better else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=s.factor, patience=s.patience), False
    if s.kind == "linear":
        warm = max(s.warmup_steps, 0)

        def f(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        return torch.optim.lr_scheduler.LambdaLR(opt, f), True
    if s.kind == "slanted":
        return torch.optim.lr_scheduler.LambdaLR(opt, slanted(total_steps, s.cut_frac, s.ratio)), True
    return None, False


def slanted(total_steps: int, cut_frac: float, ratio: float) -> Callable[[int], float]:
    """Howard & Ruder's slanted triangular rate as a multiple of lr at step t (0 = the first step):
    (1 + p (ratio - 1)) / ratio, p rising linearly from 0 to 1 over the first cut = floor(T cut_frac)
    steps and falling linearly back to 0 at step T."""
    cut = max(1, int(total_steps * cut_frac))
    fall = max(1.0, cut * (1 / cut_frac - 1))

    def f(t: int) -> float:
        p = t / cut if t < cut else 1 - (t - cut) / fall
        return (1 + min(1.0, max(0.0, p)) * (ratio - 1)) / ratio

    return f


@dataclass
class Step:
    """`step(batch)` trains `model` on one collated batch and returns (loss [] detached, tokens)."""

    model: nn.Module  # what trains: the model, or its DistributedDataParallel wrapper
    loss: LossFn  # a task's `loss`
    opt: torch.optim.Optimizer
    device: torch.device
    dtype: Optional[torch.dtype] = None  # autocast dtype; None = float32
    clip: float = 0.0  # max gradient norm; 0 = no clipping
    sched: Optional[Schedule] = None
    per_batch: bool = False  # sched steps after every batch (else the caller steps it, e.g. per epoch)
    layers: int = 1  # the optimizer's layer groups (param_groups' "layer" 0 … layers-1; train.unfreeze)
    perturb: Optional[Perturbation] = None  # train.adversarial: also train on the adversarial batch
    scaler: torch.amp.GradScaler = field(init=False)  # enabled for fp16 only

    def __post_init__(self) -> None:
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    @classmethod
    def build(
        cls,
        model: nn.Module,
        loss: LossFn,
        t: config.Train,
        device: torch.device,
        higher_is_better: bool = False,
        total_steps: int = 0,
    ) -> Step:
        """The step that `train:` describes: its optimizer, schedule (over `total_steps`), precision, clip."""
        by_layer = t.unfreeze != "none" or (t.discriminative or 1.0) != 1.0
        groups = layer_groups(model, t) if by_layer else [{"params": list(model.parameters()), "layer": 0}]
        opt = make_optimizer(groups if by_layer else groups[0]["params"], t.optimizer)
        sched, per_batch = make_schedule(opt, t.schedule, higher_is_better, total_steps)
        dtype = precision.resolve(t.precision, device)
        perturb = Perturbation(model, t.adversarial) if t.adversarial else None
        return cls(model, loss, opt, device, dtype, t.clip, sched, per_batch, len(groups), perturb)

    def __call__(self, batch: dict) -> tuple[torch.Tensor, int]:
        self.model.train()
        if self.perturb is None:
            loss, ntok = self._backward(batch)
        else:  # also the same batch moved along the loss's gradient (train.adversarial): both losses train
            try:
                self.perturb.capture()
                loss, ntok = self._backward(batch)
                self.perturb.apply()
                self._backward(batch, accumulate=True)
            finally:
                self.perturb.off()
        if self.clip > 0:
            self.scaler.unscale_(self.opt)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.per_batch and self.sched is not None:
            self.sched.step()
        return loss.detach(), ntok

    def _backward(self, batch: dict, accumulate: bool = False) -> tuple[torch.Tensor, int]:
        """Forward under autocast and backward: the gradients are the batch's (or added to those there)."""
        with precision.autocast(self.device, self.dtype):
            loss, ntok = self.loss(self.model, batch)
        if not accumulate:
            self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return loss, ntok

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, schedule and scaler state, under the keys `last.pt` has always used."""
        return {
            "optim": self.opt.state_dict(),
            "sched": self.sched.state_dict() if self.sched else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.opt.load_state_dict(d["optim"])
        if self.sched and d.get("sched"):
            self.sched.load_state_dict(d["sched"])
        if self.scaler.is_enabled() and d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
