"""Full softmax against the adaptive softmax for a language model, trained alternately in one process.

    python benchmarks/adaptive_softmax.py pipelines/wikitext2.yaml [--steps 40] [--rounds 3]

Both models share the pipeline's data, sizes and optimizer; only `model.softmax` differs. Prints
JSON: training tokens/s of each and their ratio (the perplexity cost needs equal-budget training
runs: see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from textrnn import config
from textrnn.tasks.base import build_task
from textrnn.trainer import make_optimizer, seed_everything


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
    variants = {}
    task = build_task(base)
    task.prepare({"train": task.read_splits()["train"]}, None, resume=False)
    for name in ("full", "adaptive"):
        m = base.model.model_copy(update={"softmax": name})
        task.m = m
        model = task.build_model()
        variants[name] = (model, make_optimizer(model.parameters(), base.train.optimizer), m)
    windows = task.batches("train", shuffle=False)

    def run(name, start, n):
        model, opt, m = variants[name]
        task.m = m
        model.train()
        task._state, tokens, t0 = None, 0, time.perf_counter()
        for k in range(start, start + n):
            b = task.collate("train", windows[k % len(windows)], "cpu")
            loss, ntok = task.loss(model, b)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), base.train.clip)
            opt.step()
            tokens += ntok
        return tokens, time.perf_counter() - t0

    for name in variants:
        run(name, 0, 3)  # warm-up
    tot = {n: [0, 0.0] for n in variants}
    for r in range(a.rounds):
        for name in variants:
            n, dt = run(name, 3 + r * a.steps, a.steps)
            tot[name][0] += n
            tot[name][1] += dt
    tps = {k: n / dt for k, (n, dt) in tot.items()}
    print(
        json.dumps(
            {
                "pipeline": base.name,
                "threads": torch.get_num_threads(),
                "vocabulary": len(task.vocab),
                "parameters": {k: sum(p.numel() for p in v[0].parameters()) for k, v in variants.items()},
                "tokens_per_s": tps,
                "speedup": tps["adaptive"] / tps["full"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
