"""Training throughput of a pipeline's model: bucketed + packed batches vs. unbucketed padded batches.

    python benchmarks/throughput.py pipelines/sst2.yaml [--steps 150] [--set key=value ...]

Both variants run the trainer's step (textrnn.training.step: clipping, `train.precision`) in this one
process on the same data, model size and token budget, so their ratio is meaningful on a noisy
machine. Prints JSON: real (non-pad) tokens/s, pad fraction.
"""

from __future__ import annotations

import argparse
import json
import random

import torch

from textrnn import config
from textrnn.data import batching
from textrnn.tools import bench
from textrnn.training import precision
from textrnn.training.step import Step


def measure(task, step: Step, batches: list[list[int]], steps: int) -> float:
    """Run `steps` training steps over `batches` (cycled), after 5 untimed ones; return real tokens/s."""
    collate = lambda idx: task.collate("train", idx, "cpu")  # noqa: E731
    bench.run_steps(step, collate, batches, 0, 5)
    tokens, seconds = bench.run_steps(step, collate, batches, 5, steps)
    return tokens / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    task = bench.prepared_task(cfg)
    lengths = task.lengths("train")
    bucketed = task.batches("train", shuffle=True, seed=1)
    model, cpu = task.build_model(), torch.device("cpu")
    step = Step.build(model, task.loss, cfg.train, cpu, task.higher_is_better, cfg.train.epochs * len(bucketed))
    # the same number of examples per batch on average, but drawn at random (no length bucketing)
    per_batch = max(1, round(len(lengths) / len(bucketed)))
    idx = list(range(len(lengths)))
    random.Random(1).shuffle(idx)
    unbucketed = [idx[i : i + per_batch] for i in range(0, len(idx), per_batch)]
    out = {"pipeline": cfg.name, "threads": torch.get_num_threads(), "steps": a.steps}
    out["precision"] = precision.label(step.dtype)
    out["bucketed_tokens_per_s"] = measure(task, step, bucketed, a.steps)
    out["bucketed_pad_fraction"] = batching.pad_fraction(lengths, bucketed)
    out["unbucketed_tokens_per_s"] = measure(task, step, unbucketed, a.steps)
    out["unbucketed_pad_fraction"] = batching.pad_fraction(lengths, unbucketed)
    out["speedup"] = out["bucketed_tokens_per_s"] / out["unbucketed_tokens_per_s"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
