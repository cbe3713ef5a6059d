"""Full softmax against the adaptive softmax for a language model, trained alternately in one process.

    python benchmarks/adaptive_softmax.py pipelines/wikitext2.yaml [--steps 40] [--rounds 3]

Both models share the pipeline's data, sizes and optimizer; only `model.softmax` differs. Each
variant is its own task (the same train split, read once) with its own model and the trainer's
step (textrnn.training.step), so each carries its own hidden state from window to window. Prints JSON:
training tokens/s of each and their ratio (the perplexity cost needs equal-budget training runs:
see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import torch

from textrnn import config
from textrnn.tasks.base import build_task
from textrnn.tools import bench
from textrnn.training.step import Step
from textrnn.training.trainer import seed_everything


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    base = config.load(a.pipeline, a.set)
    torch.set_num_threads(base.train.threads or torch.get_num_threads())
    seed_everything(base.train.seed)
    train = {"train": build_task(base).read_splits()["train"]}
    variants = {}  # name -> (task, step, windows)
    for name in ("full", "adaptive"):
        task = build_task(config.load(a.pipeline, a.set + [f"model.softmax={name}"]))
        task.prepare(train, None, resume=False)
        windows = task.batches("train", shuffle=False)
        step = Step.build(task.build_model(), task.loss, base.train, torch.device("cpu"), task.higher_is_better)
        variants[name] = (task, step, windows)

    def run(name, start, n):
        task, step, windows = variants[name]
        return bench.run_steps(step, lambda idx: task.collate("train", idx, "cpu"), windows, start, n)

    for name in variants:
        run(name, 0, 3)  # warm-up
    tps = bench.alternating({name: partial(run, name) for name in variants}, 3, a.steps, a.rounds)
    print(
        json.dumps(
            {
                "pipeline": base.name,
                "threads": torch.get_num_threads(),
                "vocabulary": len(variants["full"][0].vocab),
                "parameters": {k: sum(p.numel() for p in v[1].model.parameters()) for k, v in variants.items()},
                "tokens_per_s": tps,
                "speedup": tps["adaptive"] / tps["full"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
