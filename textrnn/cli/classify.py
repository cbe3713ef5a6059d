"""`textrnn predict`: labels and probabilities from a classifier run."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from textrnn.cli.app import (
    DEVICE_HELP,
    INPUT_HELP,
    PRECISION_HELP,
    QUANTIZE_HELP,
    WITH_HELP,
    input_lines,
    open_model,
    warn_unknown,
)


def predict(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a classifier."),
    texts: List[str] = typer.Argument(None, help="Texts to classify (default: one per line from stdin)."),
    as_json: bool = typer.Option(False, "--json", metavar="", help="JSON lines with every class probability."),
    input_path: Optional[str] = typer.Option(None, "--input", "-i", metavar="FILE", help=INPUT_HELP),
    with_: List[str] = typer.Option([], "--with", metavar="RUN", help=WITH_HELP),
    quantize: bool = typer.Option(False, "--quantize", metavar="", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Print LABEL<TAB>PROBABILITY for each text."""
    clf = open_model(run_dir, "predict", ("classify",), "a classifier", device, precision, quantize, members=with_)
    lines = input_lines(texts or [], input_path)
    if not lines:
        return
    preds = clf.predict(lines)
    warn_unknown([(p.unknown, p.tokens) for p in preds])
    out = []
    for text, p in zip(lines, preds):
        if as_json:
            out.append(
                json.dumps(
                    {
                        "text": text,
                        "label": p.label,
                        "probs": {lab: round(q, 6) for lab, q in p.probs.items()},
                        "unknown": p.unknown,
                        "tokens": p.tokens,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            out.append(f"{p.label}\t{p.prob:.4f}")
    typer.echo("\n".join(out))
