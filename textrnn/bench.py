"""`textrnn bench`: training speed against the machine's own GEMM rate, inference speed, peak memory.

All figures come from one process, so their ratios hold on a noisy machine:
* training: real (non-pad) tokens/s over `steps` trainer steps on the pipeline's own batches,
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
from typing import Optional

import torch

from textrnn import config, flops, precision, rundir
from textrnn.data import batching
from textrnn.data.prefetch import prefetch as data_prefetch
from textrnn.device import pick_device
from textrnn.tasks.base import build_model, build_task
from textrnn.trainer import make_optimizer, seed_everything


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]


def prepared_task(cfg: config.Pipeline):
    """The pipeline's task with its train split read, tokenized and its vocabulary built."""
    seed_everything(cfg.train.seed)
    task = build_task(cfg)
    task.prepare({"train": task.read_splits()["train"]}, None, resume=False)
    return task


def training(
    cfg: config.Pipeline, steps: int, device: torch.device, warmup: int = 5, task=None, prefetch: Optional[bool] = None
) -> dict:
    """Trainer steps (forward, backward, clip, optimizer) on the train split's bucketed batches.

    Batches are collated a few steps ahead in a thread on CUDA, as in the trainer (`prefetch`
    overrides that)."""
    task = task or prepared_task(cfg)
    seed_everything(cfg.train.seed)
    model = build_model(task).to(device)
    opt = make_optimizer(model.parameters(), cfg.train.optimizer)
    dtype = precision.resolve(cfg.train.precision, cfg.train.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)  # as the trainer does
    batches = task.batches("train", shuffle=True, seed=1)
    rec = flops.Recorder(model)

    def step(b: dict) -> int:
        model.train()
        with precision.autocast(device, dtype):
            loss, n = task.loss(model, b)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.train.clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
        scaler.step(opt)
        scaler.update()
        return n

    for k in range(warmup):
        step(task.collate("train", batches[k % len(batches)], device))
    rec.clear()
    timed = [batches[(warmup + k) % len(batches)] for k in range(steps)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    tokens, t0 = 0, time.perf_counter()
    ahead = device.type == "cuda" if prefetch is None else prefetch  # as the trainer does
    for b in data_prefetch(timed, lambda idx: task.collate("train", idx, device), enabled=ahead):
        tokens += step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    rec.close()
    fwd = rec.forward_flops()
    train_flops = 3 * fwd
    out = {
        "steps": steps,
        "real_tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "pad_fraction": batching.pad_fraction(task.lengths("train"), timed),
        "parameters": sum(p.numel() for p in model.parameters()),
        "precision": precision.label(dtype),
        "model_flops_per_token": train_flops / max(tokens, 1),
        "achieved_gflops": train_flops / seconds / 1e9,
    }
    if device.type == "cpu":
        gemm = flops.gemm_seconds(rec.shapes)
        out["gemm_gflops"] = fwd / gemm / 1e9  # float32 matmuls of the model's own shapes
        out["roofline_fraction"] = out["achieved_gflops"] / out["gemm_gflops"]
    return out


def inference(run: Path, device: torch.device, n: int = 100, prec: str = "fp32") -> dict:
    """Speed of the run's commands on its valid split (never the test split), under `--precision`,
    through the inference layer the commands use."""
    from textrnn import inference as api

    m = api.load(run, device=str(device), precision=prec)
    splits = m.task.read_splits()
    out: dict = {}
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
    out = {
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
