"""Training speed of a bidirectional language model against the unidirectional one, in one process.

    python benchmarks/bilm_speed.py pipelines/imdb-lm.yaml [--steps 20] [--rounds 3] [--set key=value ...]

Both variants are the pipeline with `model.bidirectional` true and false: the same train split
(read and tokenized once), the same windows, sizes and optimizer, each with its own model, carried
state and the trainer's step (textrnn.training.step, built by cells_speed.variant). They take turns for
`--rounds` rounds of `--steps` steps (bench.alternating), so the machine's noise hits both alike.
Prints JSON: text tokens/s of each (a bidirectional step predicts every token twice, once per
direction: `predictions_per_s`), parameters, and the ratio bidirectional / unidirectional.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import torch
from cells_speed import params, variant

from textrnn import config
from textrnn.tools import bench


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    if cfg.task != "lm":
        raise SystemExit(f"{a.pipeline}: a language-model pipeline (task: lm) is needed, not task: {cfg.task}")
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    task = bench.prepared_task(cfg)
    windows = task.batches("train", shuffle=False)
    built = {
        name: variant(task, a.pipeline, a.set + [f"model.bidirectional={bi}"])
        for name, bi in (("unidirectional", "false"), ("bidirectional", "true"))
    }

    def run(name: str, start: int, n: int) -> tuple[int, float]:
        t, _, step = built[name]
        return bench.run_steps(step, lambda idx: t.collate("train", idx, "cpu"), windows, start, n)

    for name in built:
        run(name, 0, 3)  # warm-up
    tps = bench.alternating({name: partial(run, name) for name in built}, 3, a.steps, a.rounds)
    out = {
        "pipeline": cfg.name,
        "threads": torch.get_num_threads(),
        "steps_per_round": a.steps,
        "rounds": a.rounds,
        "train_tokens": int(sum(task.lengths("train"))),
        "variants": {
            name: {
                "parameters": params(built[name][1]),
                "tokens_per_s": round(tps[name]),
                "predictions_per_s": round(tps[name] * (2 if name == "bidirectional" else 1)),
            }
            for name in built
        },
        "bidirectional_vs_unidirectional": round(tps["bidirectional"] / tps["unidirectional"], 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
