"""`textrnn bench`: training speed against the machine's own GEMM rate, inference speed, peak memory.

All figures come from one process, so their ratios hold on a noisy machine:
* training: real (non-pad) tokens/s over `steps` of the trainer's step (textrnn.training.step) on the
  pipeline's own batches,
  pad fraction, model FLOPs per token (3 x the forward pass's matrix products), the float32
  GEMM rate of the same shapes, and achieved / GEMM = the roofline fraction;
* inference (with a trained run directory): predict sentences/s, translate sentences/s greedy
  and beam 5 (and one sentence at a time), chat reply and `complete` latency p50 / p95;
* peak memory: the process's maximum RSS (and CUDA memory on a GPU).
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from textrnn import config, rundir
from textrnn.data import batching
from textrnn.data.prefetch import prefetch as data_prefetch
from textrnn.device import pick_device
from textrnn.tasks.base import Task, build_model, build_task
from textrnn.tools import flops
from textrnn.training import allocator, precision
from textrnn.training.step import Step
from textrnn.training.trainer import seed_everything


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]


def prepared_task(cfg: config.Pipeline) -> Task:
    """The pipeline's task with its train split read, tokenized and its vocabulary built."""
    seed_everything(cfg.train.seed)
    task = build_task(cfg)
    task.prepare({"train": task.read_splits()["train"]}, None, resume=False)  # type: ignore[arg-type]  # no run dir
    return task


def training(
    cfg: config.Pipeline,
    steps: int,
    device: torch.device,
    warmup: int = 5,
    task: Optional[Task] = None,
    prefetch: Optional[bool] = None,
    collate: Optional[Callable[[list[int]], dict]] = None,
) -> dict:
    """The trainer's step (forward, backward, clip, optimizer, schedule) on the train split's
    bucketed batches; `task` (prepared with `cfg`) saves preparing it again.

    Batches are collated a few steps ahead in a thread on CUDA, as in the trainer (`prefetch`
    overrides that); `collate` (batch indexes -> batch on `device`) replaces the task's own."""
    task = task or prepared_task(cfg)
    seed_everything(cfg.train.seed)
    if device.type == "cpu":
        allocator.pin()  # as the trainer does
    model = build_model(task).to(device)
    batches = task.batches("train", shuffle=True, seed=1)
    step = Step.build(model, task.loss, cfg.train, device, task.selection[1], cfg.train.epochs * len(batches))
    rec = flops.Recorder(model)
    collate = collate or (lambda idx: task.collate("train", idx, device))
    for k in range(warmup):
        step(collate(batches[k % len(batches)]))
    rec.clear()
    timed = [batches[(warmup + k) % len(batches)] for k in range(steps)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    tokens, t0 = 0, time.perf_counter()
    ahead = device.type == "cuda" if prefetch is None else prefetch  # as the trainer does
    for b in data_prefetch(timed, collate, enabled=ahead):
        tokens += step(b)[1]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    rec.close()
    fwd = rec.forward_flops()
    train_flops = 3 * fwd
    out: dict[str, Any] = {
        "steps": steps,
        "real_tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "pad_fraction": batching.pad_fraction(task.lengths("train"), timed),
        "parameters": sum(p.numel() for p in model.parameters()),
        "precision": precision.label(step.dtype),
        "model_flops_per_token": train_flops / max(tokens, 1),
        "achieved_gflops": train_flops / seconds / 1e9,
    }
    if device.type == "cpu":
        gemm = flops.gemm_seconds(rec.shapes)
        out["gemm_gflops"] = fwd / gemm / 1e9  # float32 matmuls of the model's own shapes
        out["roofline_fraction"] = out["achieved_gflops"] / out["gemm_gflops"]
    return out


def run_steps(
    step: Callable[[dict], tuple[Any, int]],
    collate: Callable[[list[int]], dict],
    batches: list[list[int]],
    start: int,
    n: int,
) -> tuple[int, float]:
    """Steps start .. start + n - 1 over `batches` (cycled), collation included: (tokens, seconds).
    Where CUDA is in use, the clock starts and stops with the GPU's queue empty."""
    gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
    if gpu:
        torch.cuda.synchronize()
    tokens, t0 = 0, time.perf_counter()
    for k in range(start, start + n):
        tokens += step(collate(batches[k % len(batches)]))[1]
    if gpu:
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - t0


def alternating(
    runs: dict[str, Callable[[int, int], tuple[int, float]]], start: int, steps: int, rounds: int
) -> dict[str, float]:
    """Tokens/s of each run(first step, steps) over `rounds` rounds of `steps` steps from `start`,
    taking turns so that the machine's noise hits them all alike."""
    tot = {name: [0, 0.0] for name in runs}
    for r in range(rounds):
        for name, run in runs.items():
            n, dt = run(start + r * steps, steps)
            tot[name][0] += n
            tot[name][1] += dt
    return {name: n / dt for name, (n, dt) in tot.items()}


def inference(run: Path, device: torch.device, n: int = 100, prec: str = "fp32") -> dict:
    """Speed of the run's commands on its valid split (never the test split), under `--precision`,
    through the inference layer the commands use."""
    from textrnn import inference as api

    m = api.load(run, device=str(device), precision=prec)
    splits = m.task.read_splits()
    out: dict[str, Any] = {}
    if isinstance(m, api.Classifier):
        texts = splits["valid"].texts
        t0 = time.perf_counter()
        m.predict_proba(texts)
        out["predict_sentences_per_s"] = len(texts) / (time.perf_counter() - t0)
    elif isinstance(m, api.Chatbot):
        times = []
        for ctx in splits["valid"].src[:n]:
            t0 = time.perf_counter()
            m.reply(ctx.split("\n"))
            times.append(time.perf_counter() - t0)
        out |= {"chat_reply_p50_s": statistics.median(times), "chat_reply_p95_s": _pct(times, 0.95)}
    elif isinstance(m, api.Translator):
        texts = splits["valid"].src
        for beam in (1, 5):
            s = m.settings(beam=beam, n_best=1)
            t0 = time.perf_counter()
            m.translate_nbest(texts, s)
            out[f"translate_beam{beam}_sentences_per_s"] = len(texts) / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for t in texts[:n]:
                m.translate_nbest([t], s)
            out[f"translate_beam{beam}_one_at_a_time_sentences_per_s"] = min(n, len(texts)) / (time.perf_counter() - t0)
        out["batched_over_one_at_a_time_beam5"] = (
            out["translate_beam5_sentences_per_s"] / out["translate_beam5_one_at_a_time_sentences_per_s"]
        )
    elif isinstance(m, api.LanguageModel):
        times = []
        for line in [t for t in splits["valid"].texts if len(t.split()) > 3][:n]:
            prompt = " ".join(line.split()[: len(line.split()) // 2])
            t0 = time.perf_counter()
            m.complete(prompt, k=5)
            times.append(time.perf_counter() - t0)
        out |= {"complete_p50_s": statistics.median(times), "complete_p95_s": _pct(times, 0.95)}
    return out


def bench(
    cfg: config.Pipeline, steps: int, run: Optional[str], device: str = "auto", inference_precision: str = "fp32"
) -> dict:
    dev = pick_device(device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    out: dict[str, Any] = {
        "pipeline": cfg.name,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "training": training(cfg, steps, dev),
    }
    if run:
        rundir.open_run(run)
        out["inference"] = inference(Path(run), dev, prec=inference_precision)
        out["inference"]["precision"] = inference_precision
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out
