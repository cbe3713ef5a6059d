"""`textrnn bench`: measure a pipeline's training and inference speed in one process; JSON out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from textrnn.cli import PRECISION_HELP, SET_HELP, app


@app.command()
def bench(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    steps: int = typer.Option(50, "--steps", min=1, help="Timed training steps (after 5 warm-up steps)."),
    run_dir: Optional[str] = typer.Option(None, "--run", help="A trained run directory: also time its inference."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | mps | auto."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the JSON to this file."),
    precision: str = typer.Option("fp32", "--precision", help="Inference (--run) " + PRECISION_HELP),
):
    """Training tokens/s, FLOPs per token, roofline fraction, inference speed and peak memory, as JSON."""
    from textrnn import config, rundir
    from textrnn.bench import bench as run_bench

    cfg = config.load(pipeline, set_)
    text = json.dumps(run_bench(cfg, steps, run_dir, device, precision), indent=2)
    if output:
        rundir.write_atomic(output, text + "\n")
    typer.echo(text)
