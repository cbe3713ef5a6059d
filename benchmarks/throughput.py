"""Training throughput of a pipeline's model: bucketed + packed batches vs. unbucketed padded batches.

    python benchmarks/throughput.py pipelines/sst2.yaml [--steps 150] [--set key=value ...]

Both variants run in this one process on the same data, model size and token budget, so their
ratio is meaningful on a noisy machine. Prints JSON: real (non-pad) tokens/s, pad fraction.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from textrnn import config
from textrnn.data import batching
from textrnn.tasks.base import build_task
from textrnn.trainer import make_optimizer, seed_everything


def measure(task, model, opt, batches, steps):
    """Run `steps` training steps over `batches` (cycled); return real tokens/s."""
    model.train()
    tokens, t0 = 0, None
    for k in range(steps + 5):
        if k == 5:  # warm-up steps are not timed
            tokens, t0 = 0, time.perf_counter()
        b = task.collate("train", batches[k % len(batches)], "cpu")
        loss, n = task.loss(model, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += n
    return tokens / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    seed_everything(cfg.train.seed)
    task = build_task(cfg)
    splits = task.read_splits()
    task.prepare(splits, None, resume=False)
    model = task.build_model()
    opt = make_optimizer(model.parameters(), cfg.train.optimizer)
    lengths = task.lengths("train")
    bucketed = task.batches("train", shuffle=True, seed=1)
    # the same number of examples per batch on average, but drawn at random (no length bucketing)
    per_batch = max(1, round(len(lengths) / len(bucketed)))
    idx = list(range(len(lengths)))
    random.Random(1).shuffle(idx)
    unbucketed = [idx[i : i + per_batch] for i in range(0, len(idx), per_batch)]
    out = {"pipeline": cfg.name, "threads": torch.get_num_threads(), "steps": a.steps}
    out["bucketed_tokens_per_s"] = measure(task, model, opt, bucketed, a.steps)
    out["bucketed_pad_fraction"] = batching.pad_fraction(lengths, bucketed)
    out["unbucketed_tokens_per_s"] = measure(task, model, opt, unbucketed, a.steps)
    out["unbucketed_pad_fraction"] = batching.pad_fraction(lengths, unbucketed)
    out["speedup"] = out["bucketed_tokens_per_s"] / out["unbucketed_tokens_per_s"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
