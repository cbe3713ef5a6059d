"""The typer app and what its commands share: option help, stdin lines, opening a run for a command."""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import typer

from textrnn.errors import UserError

app = typer.Typer(
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Train and use recurrent text models from declared YAML pipelines.",
)


def _version(value: bool) -> None:
    if value:
        from textrnn import __version__

        typer.echo(f"textrnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", metavar="", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Train and use recurrent text models from declared YAML pipelines."""


SET_HELP = "Override a pipeline value: key.sub=value (value parsed as YAML). Repeatable."
QUANTIZE_HELP = "CPU inference with int8 weights (dynamic quantization of linear and recurrent layers)."
PRECISION_HELP = "fp32 | bf16 (autocast; on a CPU only where it is native) | fp16 (CUDA) | auto (bf16 where native)."
DEVICE_HELP = "cpu | cuda | mps | auto."


def open_model(
    run_dir: str,
    command: str,
    tasks: Sequence[str] = (),
    need: str = "",
    device: str = "cpu",
    precision: str = "fp32",
    quantize: bool = False,
    overrides: Sequence[str] = (),
    members: Sequence[str] = (),
):
    """The run (with `members`: the ensemble of it and them) as an inference object, after checking
    (before any weights are read) that each task is one of `tasks`: otherwise "RUN: a classify model;
    COMMAND needs NEED"."""
    from textrnn import inference

    for r in [run_dir, *members]:
        run, cfg = inference.read_pipeline(r, overrides)
        if tasks and cfg.task not in tasks:
            raise UserError(f"{run}: a {cfg.task} model; {command} needs {need}")
    if members:
        return inference.ensemble(
            [run_dir, *members], device=device, precision=precision, quantize=quantize, overrides=overrides
        )
    return inference.load(run_dir, device=device, precision=precision, quantize=quantize, overrides=overrides)


WITH_HELP = (
    "Another run of the same task and vocabulary (classifiers: the same labels): the runs answer as one ensemble. "
    "Repeatable."
)


def leading_runs(args: List[str]) -> tuple[List[str], List[str]]:
    """Arguments split into the run directories they start with (folders holding textrnn.json) and the rest."""
    from pathlib import Path

    from textrnn.rundir import MARKER

    k = 0
    while k < len(args) and (Path(args[k]) / MARKER).is_file():
        k += 1
    return args[:k], args[k:]


INPUT_HELP = "Read the texts from this file, one per line ('-' = stdin)."


def input_lines(texts: List[str], path: Optional[str] = None) -> List[str]:
    """The texts given as arguments, or the lines of --input FILE, or else stdin's lines (UTF-8; a bad
    byte names its line). Waiting on a terminal says so."""
    if texts and path:
        raise UserError("give texts as arguments or --input FILE, not both")
    if texts:
        return list(texts)
    if path and path != "-":
        from pathlib import Path

        if not Path(path).is_file():
            raise UserError(f"--input {path}: no such file")
        data, name = Path(path).read_bytes(), path
    else:
        if sys.stdin.isatty():
            print("reading texts from stdin, one per line (Ctrl-D to finish)…", file=sys.stderr)
        data, name = sys.stdin.buffer.read(), "<stdin>"
    import io

    from textrnn.text.lines import decoded

    return list(decoded(io.BytesIO(data), name))


def warn_unknown(counts: list[tuple[int, int]], what: str = "line", shown: int = 3) -> None:
    """One warning line per input whose tokens are mostly not in the model's vocabulary (the first
    `shown`, then how many more)."""
    bad = [(i, u, n) for i, (u, n) in enumerate(counts, 1) if n and u * 2 > n]
    for i, u, n in bad[:shown]:
        where = f"{what} {i}" if len(counts) > 1 else f"this {what}"
        print(
            f"warning: {where}: {u} of {n} tokens are not in the model's vocabulary; the answer is mostly a guess",
            file=sys.stderr,
        )
    if len(bad) > shown:
        print(
            f"warning: {len(bad) - shown} more {what}s are mostly unknown tokens ({len(bad)} of {len(counts)})",
            file=sys.stderr,
        )
