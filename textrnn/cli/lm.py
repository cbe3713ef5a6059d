"""Language-model commands: `textrnn generate`, `textrnn complete`."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from textrnn.cli.app import DEVICE_HELP, INPUT_HELP, PRECISION_HELP, input_lines, open_model, warn_unknown

NEED = "a language model (task: lm)"


def generate(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a language model."),
    prompt: str = typer.Option("", "--prompt", help="Text to continue (default: start a new line)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Tokens per sample at most (default 50)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="0 = greedy; default 1."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample among the k most likely (0 = all)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample within this probability mass (1 = all)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="The same seed gives the same text."),
    num: int = typer.Option(1, "--num", "-n", help="Number of samples."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="One JSON object per sample."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Sample continuations of a prompt, one per line (the prompt is included)."""
    lm = open_model(run_dir, "generate", ("lm",), NEED, device, precision)
    for text in lm.generate(
        prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, num=num
    ):
        typer.echo(json.dumps({"prompt": prompt, "text": text}, ensure_ascii=False) if as_json else text)


def complete(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a language model."),
    texts: List[str] = typer.Argument(None, help="Texts to complete (default: one per line from stdin)."),
    k: int = typer.Option(5, "-k", help="How many next words."),
    input_path: Optional[str] = typer.Option(None, "--input", "-i", metavar="FILE", help=INPUT_HELP),
    as_json: bool = typer.Option(False, "--json", metavar="", help="One JSON object per text."),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Print the k most likely next words as WORD<TAB>PROBABILITY (a blank line between texts)."""
    lm = open_model(run_dir, "complete", ("lm",), NEED, device, precision)
    blocks = []
    lines = input_lines(texts or [], input_path)
    counts = lm.unknown(lines) if lines else []
    warn_unknown(counts)
    for text, (unk, n) in zip(lines, counts):
        words = lm.complete(text, k)
        if as_json:
            blocks.append(
                json.dumps(
                    {
                        "text": text,
                        "next": [{"word": w, "prob": round(p, 6)} for w, p in words],
                        "unknown": unk,
                        "tokens": n,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            blocks.append("\n".join(f"{w}\t{p:.4f}" for w, p in words))
    if blocks:
        typer.echo(("\n" if as_json else "\n\n").join(blocks))
