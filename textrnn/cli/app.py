"""The typer app and what its commands share: option help, stdin lines, opening a run for a command."""

from __future__ import annotations

import sys
from typing import List, Sequence

import typer

from textrnn.errors import UserError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Train and use recurrent text models from declared YAML pipelines.")

SET_HELP = "Override a pipeline value: key.sub=value (value parsed as YAML). Repeatable."
QUANTIZE_HELP = "CPU inference with int8 weights (dynamic quantization of linear and recurrent layers)."
PRECISION_HELP = "fp32 | bf16 (autocast; on a CPU only where it is native) | fp16 (CUDA) | auto (bf16 where native)."
DEVICE_HELP = "cpu | cuda | mps | auto."


def open_model(run_dir: str, command: str, tasks: Sequence[str] = (), need: str = "", device: str = "cpu",
               precision: str = "fp32", quantize: bool = False, overrides: Sequence[str] = ()):
    """The run as an inference object, after checking (before any weights are read) that its task is
    one of `tasks`: otherwise "RUN: a classify model; COMMAND needs NEED"."""
    from textrnn import inference

    run, cfg = inference.read_pipeline(run_dir, overrides)
    if tasks and cfg.task not in tasks:
        raise UserError(f"{run}: a {cfg.task} model; {command} needs {need}")
    return inference.load(run_dir, device=device, precision=precision, quantize=quantize, overrides=overrides)


def input_lines(texts: List[str]) -> List[str]:
    """The texts given as arguments, or else stdin's lines (UTF-8; a bad byte names its line)."""
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
