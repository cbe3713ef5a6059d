"""Open a run directory for inference: pipeline, task (tokenizer, vocabulary, labels), best weights,
on a chosen device, under a chosen precision or int8 quantization."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from textrnn import config
from textrnn.errors import UserError


@dataclass
class Opened:
    """Everything a task object works with."""

    run: Path
    cfg: config.Pipeline
    task: Any  # a textrnn.tasks.base.Task subclass: each front end uses its own task's methods
    model: nn.Module
    device: torch.device
    precision: str
    quantized: bool


def read_pipeline(run_dir: str | Path, overrides: Sequence[str] = ()) -> tuple[Path, config.Pipeline]:
    """Check that `run_dir` is a textrnn run directory of this format; its path and its pipeline (cheap:
    no weights are read)."""
    from textrnn import rundir

    if not isinstance(run_dir, (str, Path)):
        also = "; textrnn.ensemble(runs) opens a list of runs as one model" if isinstance(run_dir, list) else ""
        raise UserError(f"a run directory is a path (str or pathlib.Path), not {type(run_dir).__name__}{also}")
    return rundir.open_run(run_dir, list(overrides))


def accept_edits(run_dir: str | Path) -> Path:
    """Accept intended edits of a run's files: write its manifest anew (under the run's lock)."""
    from textrnn import rundir

    run, _ = read_pipeline(run_dir)
    with rundir.locked(run):
        rundir.write_manifest(run)
    return run


def open_run(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    device: str = "auto",
    precision: str = "fp32",
    quantize: bool = False,
    verify: bool = True,
) -> Opened:
    """Load a run directory's task and best model, ready for inference (eval mode).

    `precision` (fp32 | bf16 | fp16 | auto) sets the autocast the task's `amp()` runs inference under;
    `quantize` gives dynamic int8 weights (CPU only, not with a reduced precision); `verify` checks
    every file against the run's manifest (SHA-256) first.
    """
    from textrnn import rundir
    from textrnn.device import pick_device
    from textrnn.tasks.base import build_model, build_task
    from textrnn.training import precision as prec

    run, cfg = read_pipeline(run_dir, overrides)
    if verify:
        rundir.verify(run)
    dev = pick_device(device)
    dtype = prec.for_inference(precision, dev)
    if quantize and dtype is not None:
        raise UserError(f"--quantize with --precision {precision}: choose one")
    if quantize and dev.type != "cpu":
        raise UserError(f"--quantize: int8 inference runs on the CPU, not {dev.type}")
    task = build_task(cfg)
    task.inference_dtype, task.inference_device = dtype, dev.type
    task.load(run)
    model = build_model(task)
    rundir.load_weights(model, run / "model.safetensors")
    model.to(dev).eval()
    if quantize:
        model = prec.quantize_int8(model)
    return Opened(run, cfg, task, model, dev, prec.label(dtype), quantize)


def summary(run: Path) -> Optional[dict]:
    """The run's summary.json (final metrics), or None while it has none."""
    from textrnn import rundir

    return rundir.read_summary(run)
