"""Training speed of the recurrent cells on a pipeline's own data: LSTM beside minGRU / minLSTM.

    python benchmarks/cells_speed.py pipelines/imdb.yaml [--cells lstm mingru minlstm mingru@2] [--steps 20]
        [--rounds 3] [--equal-params] [--device cpu|cuda] [--set key=value ...]

A cell written CELL@N runs with N layers (the pipeline's own count otherwise); CELL[@N],key=value,...
also applies those overrides (e.g. `minlstm@2,model.decoder.cell=minlstm,model.decoder.layers=2` for
a seq2seq pipeline's decoder).

Every cell trains with the trainer's step (textrnn.training.step: forward, loss, backward, clip,
optimizer) on the same bucketed train batches at the pipeline's sizes, in this one process;
the cells take turns for `--rounds` rounds and each reports its median round, so the ratios
hold on a shared, noisy machine. `--equal-params` also runs each min cell with the hidden size
that gives it the LSTM model's parameter count. `--bound` (a classifier with a one-layer
bidirectional encoder) also runs minGRU with its recurrence removed: the encoder's one projection,
the mask and the dropout, no scan. No min-cell implementation at these sizes can beat that row;
its ratio to the LSTM bounds what a faster scan could give. `--torch-steps` also runs each min cell
with its time steps as one PyTorch call each (`mincells.use_stepper("torch")`), beside the default
(numba's compiled loops when numba is installed: `textrnn[fast]`). `--torch-masks` also runs every
cell with torch's 16-bit dropout masks (`dropout.use_masks("torch")`) beside the compiled ones.
`--device cuda` runs the same on a GPU (cuDNN's LSTM against the min cells' log-space scan; the
clock waits for the GPU (bench.run_steps); batches are collated on the CPU and copied, not ahead). Prints
JSON: real (non-pad) tokens/s per cell and its ratio to the first cell.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from textrnn import config
from textrnn.nn import dropout, mincells
from textrnn.tasks.base import Task, build_model
from textrnn.tools import bench
from textrnn.training import allocator
from textrnn.training.step import Step

BOUND = "mingru without its recurrence (the bound)"


class NoRecurrence(nn.Module):
    """A one-layer bidirectional minGRU encoder minus the scan: x [B, T, E] -> the candidates' projection
    [B, T, 2H] (masked, dropped out) and zero final states [2, B, H]; the same products as the real one."""

    def __init__(self, enc: nn.Module):
        super().__init__()
        self.enc = enc

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        enc = self.enc
        mask, _ = enc._mask_last(x, lengths)  # [B, T, 1]
        f, b = (m.layers[0] for m in (enc.fwd[0], enc.bwd[0]))
        P = F.linear(*mincells._fold([f, b], x))  # [B, T, 4H]: gates, then candidates
        H2 = P.size(2) // 2
        return enc.drop(P[..., H2:] * mask), x.new_zeros(2, x.size(0), H2 // 2)


def cell_key(cfg: config.Pipeline) -> str:
    """Where the pipeline names its cell: model.encoder.cell (classify, translate, chat) or model.cell (lm)."""
    return "model.encoder.cell" if hasattr(cfg.model, "encoder") else "model.cell"


def hidden_key(cfg: config.Pipeline) -> str:
    return "model.encoder.hidden" if hasattr(cfg.model, "encoder") else "model.hidden"


def cell_sets(cfg: config.Pipeline, spec: str) -> list[str]:
    """CELL, CELL@N (N layers), then any ,key=value overrides -> the pipeline overrides that build it."""
    head, *extra = spec.split(",")
    cell, _, layers = head.partition("@")
    layers_key = "model.encoder.layers" if hasattr(cfg.model, "encoder") else "model.layers"
    return [f"{cell_key(cfg)}={cell}"] + ([f"{layers_key}={int(layers)}"] if layers else []) + extra


def variant(task: Task, pipeline: str, sets: list[str], device: str | torch.device = "cpu"):
    """(task, model, step) for the pipeline with `sets` applied: a shallow copy of the prepared task
    (its data shared, its own settings and carried LM state), a fresh model on `device` and its step."""
    cfg = config.load(pipeline, sets)
    task = copy.copy(task)
    task.cfg = cfg
    torch.manual_seed(cfg.train.seed)
    dev = torch.device(device)
    model = build_model(task).to(dev)
    return task, model, Step.build(model, task.loss, cfg.train, dev, task.selection[1], 10**6)


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def equal_hidden(task: Task, pipeline: str, sets: list[str], cell: str, target: int) -> int:
    """The hidden size at which `cell`'s model has about `target` parameters (bisection)."""
    lo, hi = 1, 8192
    while lo < hi:
        mid = (lo + hi) // 2
        _, model, _ = variant(task, pipeline, sets + [f"{cell_key(task.cfg)}={cell}", f"{hidden_key(task.cfg)}={mid}"])
        lo, hi = (mid + 1, hi) if params(model) < target else (lo, mid)
    return lo


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--cells", nargs="+", default=["lstm", "mingru", "minlstm"])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per cell per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--equal-params", action="store_true")
    ap.add_argument("--bound", action="store_true", help="also minGRU with its recurrence removed (classify)")
    ap.add_argument("--torch-steps", action="store_true", help="also each min cell with PyTorch's per-step calls")
    ap.add_argument("--torch-masks", action="store_true", help="also each cell with torch's 16-bit dropout masks")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("cells_speed.py: --device cuda, but torch sees no CUDA GPU")
    device = torch.device(a.device)
    # as the trainer does on a CPU (TEXTRNN_MALLOC=default: glibc's own thresholds)
    malloc = allocator.pin() if device.type == "cpu" else None
    cfg = config.load(a.pipeline, a.set)
    task = bench.prepared_task(cfg)
    batches = task.batches("train", shuffle=True, seed=1)
    # name -> (pipeline overrides, min cells' stepper, dropout masks)
    runs: dict[str, tuple[list[str], str, str]] = {c: (a.set + cell_sets(cfg, c), "auto", "auto") for c in a.cells}
    if a.equal_params:
        _, base, _ = variant(task, a.pipeline, runs[a.cells[0]][0])
        for c in a.cells[1:]:
            cell = c.split(",")[0].partition("@")[0]
            h = equal_hidden(task, a.pipeline, a.set + cell_sets(cfg, c)[1:], cell, params(base))
            sets = a.set + cell_sets(cfg, c) + [f"{hidden_key(cfg)}={h}"]
            runs[f"{c} (hidden {h}, equal parameters)"] = (sets, "auto", "auto")
    if a.torch_steps:
        for name in [n for n in runs if n.startswith("min")]:
            runs[f"{name} (torch steps)"] = (runs[name][0], "torch", "auto")
    if a.torch_masks:
        for name in list(runs):
            sets, stepper, _ = runs[name]
            runs[f"{name} (torch masks)"] = (sets, stepper, "torch")
    if a.bound:
        runs[BOUND] = (a.set + cell_sets(cfg, "mingru@1"), "auto", "auto")
    built = {name: variant(task, a.pipeline, sets, device) for name, (sets, _, _) in runs.items()}
    if a.bound:
        model = built[BOUND][1]
        model.encoder = NoRecurrence(model.encoder)  # type: ignore[assignment]
    speeds: dict[str, list[float]] = {name: [] for name in built}
    for r in range(a.rounds):
        for name, (t, model, step) in built.items():
            collate = lambda idx: t.collate("train", idx, device)  # noqa: E731
            _, stepper, masks = runs[name]
            with mincells.use_stepper(stepper), dropout.use_masks(masks):
                if r == 0:
                    bench.run_steps(step, collate, batches, 0, 3)  # warm-up
                tokens, seconds = bench.run_steps(step, collate, batches, 3 + r * a.steps, a.steps)
            speeds[name].append(tokens / seconds)
    first = statistics.median(speeds[a.cells[0]])
    out = {
        "pipeline": cfg.name,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "numba": mincells.scan_kernels.available(),
        "malloc_pinned": malloc is not None,
        "steps_per_round": a.steps,
        "rounds": a.rounds,
        "cells": {
            name: {
                "parameters": params(built[name][1]),
                "tokens_per_s": round(statistics.median(s)),
                "rounds_tokens_per_s": [round(x) for x in s],
                f"vs_{a.cells[0]}": round(statistics.median(s) / first, 2),
            }
            for name, s in speeds.items()
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
