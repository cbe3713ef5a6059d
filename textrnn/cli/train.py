"""`textrnn run` (train a pipeline), `textrnn evaluate` (metrics on a test file), `textrnn info`, `textrnn average`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from textrnn.cli.app import DEVICE_HELP, PRECISION_HELP, SET_HELP, open_model
from textrnn.errors import UserError


def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Run directory (default runs/<name>)."),
    resume: bool = typer.Option(
        False, "--resume", metavar="", help="Continue from the run directory's last checkpoint."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        metavar="",
        help="Replace a run already in the run directory (without it, an existing run is refused).",
    ),
    device: str = typer.Option(None, "--device", help="cpu | cuda | mps | auto (default: the pipeline's)."),
    as_json: bool = typer.Option(
        False, "--json", metavar="", help="Also print the summary as JSON on stdout (for scripts)."
    ),
):
    """Train a pipeline and write its run directory (a summary and the next commands at the end)."""
    from textrnn import config
    from textrnn.training.trainer import run_pipeline

    if device not in (None, "auto", "cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: use cpu, cuda, mps or auto")
    cfg = config.load(pipeline, set_)
    run_dir, summary = run_pipeline(cfg, output, resume, device, overwrite=overwrite)
    if not as_json:
        return
    brief = {k: v for k, v in summary.items() if k not in ("valid", "test")}
    for split in ("valid", "test"):
        if split in summary:
            brief[split] = {k: v for k, v in summary[split].items() if k != "confusion"}
    typer.echo(json.dumps({"run": str(run_dir), **brief}, indent=2))


def evaluate(
    runs: List[str] = typer.Argument(
        ...,
        metavar="RUN",
        help="Run directory (several: the ensemble of them; one task and vocabulary, classifiers one label set).",
    ),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP + " E.g. data.test.path=FILE."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
    split: str = typer.Option(
        "test", "--split", help="test, or valid: the pipeline's valid split (carved from train as in training)."
    ),
):
    """Evaluate the best model on the test split (or any file given with --set, or --split valid) and print JSON."""
    if split not in ("test", "valid"):
        raise UserError(f"--split {split}: test or valid")
    m = open_model(runs[0], "evaluate", device=device, precision=precision, overrides=set_, members=runs[1:])
    if split == "test" and m.pipeline.data.test is None:
        raise UserError(f"{m.run}: the pipeline declares no test split; give one with --set data.test.path=FILE")
    typer.echo(json.dumps(m.evaluate(split=split)))


def info(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory."),
    accept_edits: bool = typer.Option(
        False,
        "--accept-edits",
        metavar="",
        help="Accept intended edits of the run's files: write its manifest "
        "(SHA-256 of each file) anew, then show the run.",
    ),
):
    """Show a run's pipeline, vocabulary sizes, parameter count and metrics."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    from textrnn import config
    from textrnn.training import report

    if accept_edits:
        from textrnn import inference

        run = inference.accept_edits(run_dir)
        typer.echo(f"{run}: manifest written anew; its files are accepted as they are now", err=True)
    m = open_model(run_dir, "info")
    con = Console()
    con.print(Syntax(config.dump(m.pipeline), "yaml", theme="ansi_dark", background_color="default"))
    t = Table(show_header=False, box=None)
    t.add_row("task", m.pipeline.task)
    t.add_row("vocabulary", f"{m.vocab_size:,}")
    if hasattr(m, "labels"):
        t.add_row("labels", ", ".join(m.labels))
    t.add_row("parameters", f"{m.parameters:,}")
    s = m.summary
    if s:
        for split in ("valid", "test"):
            if split in s:
                figures = "  ".join(f"{k} {v:.4f}" for k, v in s[split].items() if isinstance(v, float))
                t.add_row(split, figures + report.decoded(s[split]))
        t.add_row("tokens/s", f"{s.get('tokens_per_s', 0):,.0f}")
        t.add_row("train seconds", f"{s.get('train_seconds', 0):,.1f}")
        t.add_row("best epoch", str(s.get("best_epoch")))
    con.print(t)


def average(
    run_dir: str = typer.Argument(
        ..., metavar="RUN", help="A run that kept epoch weights (train.average_last / average_best)."
    ),
    output: str = typer.Option(
        ..., "--output", "-o", metavar="DIR", help="The new run directory (created whole or not at all)."
    ),
    epochs: Optional[str] = typer.Option(None, "--epochs", metavar="3,5", help="These kept epochs."),
    best: Optional[int] = typer.Option(None, "--best", metavar="N", help="The N kept epochs best on valid."),
    last: Optional[int] = typer.Option(None, "--last", metavar="N", help="The last N kept epochs."),
    score: bool = typer.Option(True, "--score/--no-score", help="Score the new model on the valid split."),
    overwrite: bool = typer.Option(False, "--overwrite", metavar="", help="Replace DIR if it is not empty."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
):
    """Write a new run whose model is the mean of epochs RUN kept (one epoch: that epoch's model)."""
    from textrnn.tools.average import average as write

    chosen = None
    if epochs is not None:
        parts = [p.strip() for p in epochs.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise UserError(f"--epochs {epochs}: epoch numbers separated by commas, e.g. 3,5")
        chosen = [int(p) for p in parts]
    entry = write(run_dir, output, chosen, best, last, overwrite, device, score)
    what = ", ".join(map(str, entry["epochs"]))
    valid = entry.get("valid", {})
    scores = "  ".join(f"{k} {v:.4f}" for k, v in valid.items() if isinstance(v, float))
    typer.echo(f"wrote {output}: the mean of epochs {what} of {run_dir}" + (f"; valid {scores}" if scores else ""))
