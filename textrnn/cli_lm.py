"""Language-model commands on the `textrnn` app: generate, complete."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from pydantic import ValidationError

from textrnn.cli import PRECISION_HELP, _input_lines, _load, app
from textrnn.errors import UserError


def _load_lm(run_dir: str, device: str, command: str, precision: str):
    """Open a run directory and insist on a language model."""
    from textrnn import rundir

    run, cfg = rundir.open_run(run_dir)
    if cfg.task != "lm":
        raise UserError(f"{run}: a {cfg.task} model; {command} needs a language model (task: lm)")
    return _load(run_dir, (), device, precision=precision)


def _defaults(cfg):
    """The pipeline's `generate:` block, validated."""
    from textrnn.config import explain
    from textrnn.registry import get

    schema = get("generate_schema", "lm")
    try:
        return schema.model_validate(cfg.generate)
    except ValidationError as err:
        raise UserError(explain(err, schema, "pipeline.yaml", prefix=("generate",))) from None


@app.command()
def generate(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a language model."),
    prompt: str = typer.Option("", "--prompt", help="Text to continue (default: start a new line)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Tokens per sample at most (default 50)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="0 = greedy; default 1."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample among the k most likely (0 = all)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample within this probability mass (1 = all)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="The same seed gives the same text."),
    num: int = typer.Option(1, "--num", "-n", help="Number of samples."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per sample."),
    device: str = typer.Option("cpu", "--device"),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Sample continuations of a prompt, one per line (the prompt is included)."""
    run, cfg, task, model, dev = _load_lm(run_dir, device, "generate", precision)
    d = _defaults(cfg)
    if num < 1:
        raise UserError(f"--num {num}: must be 1 or more")
    with task.amp():
        texts = task.generate(model, prompt, dev, max_tokens=d.max_tokens if max_tokens is None else max_tokens,
                              temperature=d.temperature if temperature is None else temperature,
                              top_k=d.top_k if top_k is None else top_k, top_p=d.top_p if top_p is None else top_p,
                              seed=seed, num=num)
    for text in texts:
        full = f"{prompt.rstrip()} {text}".strip() if prompt.strip() else text
        typer.echo(json.dumps({"prompt": prompt, "text": full}, ensure_ascii=False) if as_json else full)


@app.command()
def complete(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a language model."),
    texts: List[str] = typer.Argument(None, help="Texts to complete (default: one per line from stdin)."),
    k: int = typer.Option(5, "-k", help="How many next words."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
    device: str = typer.Option("cpu", "--device"),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Print the k most likely next words as WORD<TAB>PROBABILITY (a blank line between texts)."""
    run, cfg, task, model, dev = _load_lm(run_dir, device, "complete", precision)
    blocks = []
    for text in _input_lines(texts or []):
        with task.amp():
            words = task.complete(model, text, dev, k)
        if as_json:
            blocks.append(json.dumps({"text": text, "next": [{"word": w, "prob": round(p, 6)} for w, p in words]},
                                     ensure_ascii=False))
        else:
            blocks.append("\n".join(f"{w}\t{p:.4f}" for w, p in words))
    if blocks:
        typer.echo(("\n" if as_json else "\n\n").join(blocks))
