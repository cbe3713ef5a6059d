"""Seq2seq speed: training target tokens/s, then greedy and beam decoding sentences/s.

    python benchmarks/translate_speed.py pipelines/multi30k-de-en.yaml [--steps 300] [--run RUN]
        [--test SRC_FILE] [--set key=value ...]

Trains `--steps` steps of the pipeline's model (the trainer's step, textrnn.training.step: clipping,
optimizer, `train.precision`) and reports target tokens/s; then decodes the test source file
(default: the pipeline's test split) greedily, with beam 5, and with a plain hand-written greedy
loop over the same weights (the in-process baseline), with that model or with a trained run
directory (`--run`).
Add `--quantize` to decode with int8 weights. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from textrnn import config, rundir
from textrnn.data import parallel
from textrnn.tasks.base import build_task
from textrnn.tasks.seq2seq import search_cfg
from textrnn.tools import bench
from textrnn.training.step import Step
from textrnn.training.trainer import seed_everything


def train_steps(task, model, cfg, steps: int) -> float:
    """Target tokens/s over `steps` training steps, after 5 untimed ones."""
    batches = task.batches("train", shuffle=True, seed=1)
    total = cfg.train.epochs * len(batches)
    step = Step.build(model, task.loss, cfg.train, torch.device("cpu"), task.higher_is_better, total)
    collate = lambda idx: task.collate("train", idx, "cpu")  # noqa: E731
    bench.run_steps(step, collate, batches, 0, 5)
    tokens, seconds = bench.run_steps(step, collate, batches, 5, steps)
    return tokens / seconds


def decode(task, model, texts, cfg, beam: int) -> dict:
    s = search_cfg(cfg, beam=beam, n_best=1)
    t0 = time.perf_counter()
    hyps = task.translate(model, texts, "cpu", s)
    dt = time.perf_counter() - t0
    return {
        "sentences_per_s": len(texts) / dt,
        "seconds": dt,
        "mean_output_words": sum(len(h[0][0].split()) for h in hyps) / len(hyps),
        "hyps": [h[0][0] for h in hyps],
    }


@torch.no_grad()
def plain_greedy(task, model, texts, cfg, batch: int = 128) -> dict:
    """The loop a hand-written model runs: batches of 128 in input order, every row stepped until all
    have ended or the length limit, no sorting, no removal of finished rows. Same weights."""
    from textrnn.data import batching

    t0 = time.perf_counter()
    ids, _ = task.encode_side(texts, False)
    v, out = task.vocab_tgt, []
    for k in range(0, len(ids), batch):
        x, lengths = batching.pad([a if len(a) else [v.unk] for a in ids[k : k + batch]], task.vocab.pad)
        state, mem = model.start(x, lengths)
        y = torch.full((x.size(0),), v.bos)
        toks, done = [], torch.zeros(x.size(0), dtype=torch.bool)
        for _ in range(int(lengths.max() * 1.5) + 10):
            logp, state, _ = model.step(y, state, mem)
            y = logp.argmax(-1)
            toks.append(y)
            done |= y == v.eos
            if done.all():
                break
        for row in torch.stack(toks, 1).tolist():
            out.append(task.detok(row[: row.index(v.eos)] if v.eos in row else row))
    dt = time.perf_counter() - t0
    return {"sentences_per_s": len(texts) / dt, "seconds": dt, "hyps": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--run", help="decode with this trained run directory instead")
    ap.add_argument("--test", help="source sentences to decode (default: the pipeline's test split)")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--quantize", action="store_true", help="int8 dynamic quantization (CPU)")
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    seed_everything(cfg.train.seed)
    out = {"pipeline": cfg.name, "threads": torch.get_num_threads()}
    if a.run:
        _, cfg = rundir.open_run(a.run)
        task = build_task(cfg)
        task.load(rundir.Path(a.run))
        model = task.build_model()
        rundir.load_weights(model, rundir.Path(a.run) / "model.safetensors")
    else:
        task = build_task(cfg)
        t0 = time.perf_counter()
        splits = task.read_splits()
        task.prepare({"train": splits["train"]}, None, resume=False)
        out["prepare_seconds"] = time.perf_counter() - t0
        model = task.build_model()
        out["parameters"] = sum(p.numel() for p in model.parameters())
        out["steps"] = a.steps
        out["train_target_tokens_per_s"] = train_steps(task, model, cfg, a.steps)
    model.eval()
    if a.quantize:
        from textrnn.training.precision import quantize_int8

        model = quantize_int8(model)
        out["quantized"] = True
    texts = parallel.read_lines(a.test) if a.test else parallel.read(cfg.data.test).src
    refs = None if a.test else parallel.read(cfg.data.test).tgt
    runs = [
        ("beam1", lambda: decode(task, model, texts, cfg, 1)),
        ("beam5", lambda: decode(task, model, texts, cfg, 5)),
        ("plain_greedy", lambda: plain_greedy(task, model, texts, cfg)),
    ]
    for name, fn in runs:
        r = fn()
        if refs:
            import sacrebleu

            r["bleu"] = sacrebleu.corpus_bleu(r["hyps"], [refs]).score
        del r["hyps"]
        out[name] = r
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
