"""Training speed of one pipeline across encoder paths and precisions, in one process.

    python benchmarks/device_matrix.py pipelines/sst2.yaml --device cuda [--steps 200] [--set k=v ...]
    python benchmarks/device_matrix.py pipelines/sst2.yaml --device cpu --threads 2 --precisions fp32,bf16

For each variant (encoder path packed | padded, precision fp32 | bf16 | fp16, and on CUDA the
first path's bf16 run again without the prefetch thread, with and without pinned host memory)
it times the trainer's step (textrnn.training.step: forward, backward, clip, optimizer) on the pipeline's
own bucketed batches, as `textrnn bench` does, after preparing the data once per encoder path.
Prints JSON: every variant's real tokens/s, and the ratios packed / padded per precision and each
precision / fp32 per path.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from textrnn import config
from textrnn.device import pick_device
from textrnn.tools import bench


def unpinned(task, device: torch.device):
    """A collate without pinned memory: the task's own on the host, then plain non-blocking copies of
    the tensors that its collate puts on `device` (lengths stay on the host)."""
    probe = task.collate("train", task.batches("train", shuffle=False)[0], device)
    moved = {k for k, v in probe.items() if torch.is_tensor(v) and v.device.type == device.type}

    def collate(idx: list[int]) -> dict:
        b = task.collate("train", idx, "cpu")
        return {k: v.to(device, non_blocking=True) if k in moved else v for k, v in b.items()}

    return collate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--precisions", default="fp32,bf16,fp16")
    ap.add_argument("--impls", default="padded,packed")
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    base = config.load(a.pipeline, a.set)
    has_encoder = getattr(base.model, "encoder", None) is not None
    impls = a.impls.split(",") if has_encoder else ["-"]
    variants = [(i, p, True, None) for i in impls for p in a.precisions.split(",")]
    if dev.type == "cuda":  # the best path's bf16 run without the background thread, with and without pinning
        variants += [(impls[0], "bf16", True, False), (impls[0], "bf16", False, False)]
    rows, tasks = [], {}  # tasks: encoder path -> the task prepared with it (the same data)
    for impl, prec, pin, ahead in variants:
        sets = a.set + [f"train.precision={prec}"] + ([f"model.encoder.impl={impl}"] if has_encoder else [])
        cfg = config.load(a.pipeline, sets)
        if impl not in tasks:
            tasks[impl] = bench.prepared_task(cfg)
        task = tasks[impl]
        r = bench.training(cfg, a.steps, dev, task=task, prefetch=ahead, collate=None if pin else unpinned(task, dev))
        ahead = dev.type == "cuda" if ahead is None else ahead
        row = {
            "impl": impl,
            "precision": prec,
            "pinned": pin,
            "prefetch": ahead,
            "tokens_per_s": round(r["tokens_per_s"]),
            "achieved_gflops": round(r["achieved_gflops"], 1),
            "pad_fraction": round(r["pad_fraction"], 4),
        }
        if dev.type == "cuda":
            row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
            torch.cuda.reset_peak_memory_stats()
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    default = [r for r in rows if r["pinned"] and r["prefetch"] == (dev.type == "cuda")]
    tps = {(r["impl"], r["precision"]): r["tokens_per_s"] for r in default}
    ratios = {}
    for (impl, prec), v in tps.items():
        if impl == "packed" and ("padded", prec) in tps:  # the ratio the issue asks for
            ratios[f"packed/padded {prec}"] = round(v / tps[("padded", prec)], 2)
        if prec != "fp32" and (impl, "fp32") in tps:
            ratios[f"{prec}/fp32 {impl}"] = round(v / tps[(impl, "fp32")], 2)
    extra = {(r["pinned"], r["prefetch"]): r["tokens_per_s"] for r in rows if r not in default}
    if extra:
        best = tps[(impls[0], "bf16")]
        ratios[f"prefetch+pinned / plain copies, {impls[0]} bf16"] = round(best / extra[(False, False)], 2)
        ratios[f"pinned / unpinned without prefetch, {impls[0]} bf16"] = round(
            extra[(True, False)] / extra[(False, False)], 2
        )
    print(
        json.dumps(
            {
                "pipeline": base.name,
                "device": str(dev),
                "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
                "cpu": torch.backends.cpu.get_cpu_capability(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "steps": a.steps,
                "variants": rows,
                "ratios": ratios,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
