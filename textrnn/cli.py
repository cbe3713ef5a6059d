"""The `textrnn` command: run, evaluate, predict, info (generate/complete, translate, chat, bench: cli_*.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from textrnn.errors import UserError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Train and use recurrent text models from declared YAML pipelines.")

SET_HELP = "Override a pipeline value: key.sub=value (value parsed as YAML). Repeatable."


QUANTIZE_HELP = "CPU inference with int8 weights (dynamic quantization of linear and recurrent layers)."
PRECISION_HELP = "fp32 | bf16 (autocast; on a CPU only where it is native) | fp16 (CUDA) | auto (bf16 where native)."


def quantize_int8(model):
    """Dynamic int8 quantization (torch.ao) of nn.Linear and the recurrent layers, for CPU inference."""
    import warnings

    import torch
    from torch import nn

    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao (no int8 LSTM there)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)


def _load(run_dir: str, overrides: List[str] = (), device: str = "cpu", quantize: bool = False,
          precision: str = "fp32"):
    """Open a run directory: pipeline, task (tokenizer, vocab, labels) and best weights.

    `--precision` sets the autocast the task's `amp()` runs inference under.
    """
    from textrnn import precision as prec
    from textrnn import rundir
    from textrnn.tasks.base import build_task
    from textrnn.train import pick_device

    run, cfg = rundir.open_run(run_dir, overrides)
    dev = pick_device(device)
    dtype = prec.for_inference(precision, dev)
    if quantize and dtype is not None:
        raise UserError(f"--quantize with --precision {precision}: choose one")
    task = build_task(cfg)
    task.inference_dtype, task.inference_device = dtype, dev.type
    task.load(run)
    model = task.build_model()
    rundir.load_weights(model, run / "model.safetensors")
    model.to(dev).eval()
    if quantize:
        if dev.type != "cpu":
            raise UserError(f"--quantize: int8 inference runs on the CPU, not {dev.type}")
        model = quantize_int8(model)
    return run, cfg, task, model, dev


def _input_lines(texts: List[str]) -> List[str]:
    if texts:
        return list(texts)
    data = sys.stdin.buffer.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, raw in enumerate(lines, 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            raise UserError(f"<stdin>:{n}: bytes that are not valid UTF-8") from None
    return out


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Run directory (default runs/<name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run directory's last checkpoint."),
    device: str = typer.Option(None, "--device", help="cpu | cuda | mps | auto (default: the pipeline's)."),
):
    """Train a pipeline and write its run directory."""
    from textrnn import config
    from textrnn.train import run_pipeline

    if device not in (None, "auto", "cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: use cpu, cuda, mps or auto")
    cfg = config.load(pipeline, set_)
    run_dir, summary = run_pipeline(cfg, output, resume, device)
    brief = {k: v for k, v in summary.items() if k not in ("valid", "test")}
    for split in ("valid", "test"):
        if split in summary:
            brief[split] = {k: v for k, v in summary[split].items() if k != "confusion"}
    typer.echo(json.dumps({"run": str(run_dir), **brief}, indent=2))


@app.command()
def evaluate(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP + " E.g. data.test.path=FILE."),
    device: str = typer.Option("cpu", "--device"),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Evaluate the best model on the test split (or any file given with --set) and print JSON."""
    run, cfg, task, model, dev = _load(run_dir, set_, device, precision=precision)
    if cfg.data.test is None:
        raise UserError(f"{run}: the pipeline declares no test split; give one with --set data.test.path=FILE")
    ex = task.read_test()
    task.prepare({"test": ex}, run, resume=True)
    with task.amp():
        typer.echo(json.dumps(task.evaluate(model, "test", dev)))


@app.command()
def predict(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a classifier."),
    texts: List[str] = typer.Argument(None, help="Texts to classify (default: one per line from stdin)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines with every class probability."),
    quantize: bool = typer.Option(False, "--quantize", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device"),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Print LABEL<TAB>PROBABILITY for each text."""
    run, cfg, task, model, dev = _load(run_dir, (), device, quantize, precision)
    if cfg.task != "classify":
        raise UserError(f"{run}: a {cfg.task} model; predict needs a classifier")
    lines = _input_lines(texts or [])
    if not lines:
        return
    with task.amp():
        probs = task.predict_proba(model, lines, dev)
    out = []
    for text, p in zip(lines, probs):
        best = int(p.argmax())
        if as_json:
            out.append(json.dumps({"text": text, "label": task.labels[best],
                                   "probs": {lab: round(float(q), 6) for lab, q in zip(task.labels, p)}},
                                  ensure_ascii=False))
        else:
            out.append(f"{task.labels[best]}\t{p[best]:.4f}")
    typer.echo("\n".join(out))


@app.command()
def info(run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory.")):
    """Show a run's pipeline, vocabulary sizes, parameter count and metrics."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    from textrnn import config

    run, cfg, task, model, _ = _load(run_dir)
    con = Console()
    con.print(Syntax(config.dump(cfg), "yaml", theme="ansi_dark", background_color="default"))
    t = Table(show_header=False, box=None)
    t.add_row("task", cfg.task)
    t.add_row("vocabulary", f"{len(task.vocab):,}")
    if hasattr(task, "labels"):
        t.add_row("labels", ", ".join(task.labels))
    t.add_row("parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    summary = run / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text(encoding="utf-8"))
        for split in ("valid", "test"):
            if split in s:
                t.add_row(split, "  ".join(f"{k} {v:.4f}" for k, v in s[split].items() if isinstance(v, float)))
        t.add_row("tokens/s", f"{s.get('tokens_per_s', 0):,.0f}")
        t.add_row("train seconds", f"{s.get('train_seconds', 0):,.1f}")
        t.add_row("best epoch", str(s.get("best_epoch")))
    con.print(t)


# command modules of the other tasks register themselves on `app` (imported for that side effect)
# e.g. from textrnn import cli_lm  # noqa: E402,F401
from textrnn import cli_lm  # noqa: E402,F401
from textrnn import cli_seq2seq  # noqa: E402,F401
from textrnn import cli_chat  # noqa: E402,F401
from textrnn import cli_bench  # noqa: E402,F401
from textrnn import cli_inspect  # noqa: E402,F401


def main() -> None:
    from textrnn.train import Interrupted

    try:
        app()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(str(e), file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
