"""`textrnn chat`: talk to a chat run directory (a REPL on a terminal, one reply per line on a pipe)."""

from __future__ import annotations

from typing import Optional

import typer

from textrnn.cli import PRECISION_HELP, QUANTIZE_HELP, _load, app
from textrnn.errors import UserError


def open_session(run_dir: str, device: str = "cpu", quantize: bool = False, precision: str = "fp32", **override):
    """A REPL session on a chat (or translation) run directory: (Session, pipeline).

    `override`: decoding settings (beam, temperature, top_k, top_p, seed; None = the pipeline's).
    """
    from textrnn import chat as repl
    from textrnn.tasks.seq2seq import search_cfg

    run, cfg, task, model, dev = _load(run_dir, (), device, quantize, precision)
    if cfg.task not in ("chat", "translate"):
        raise UserError(f"{run}: a {cfg.task} model; chat needs a chat or translation run directory")
    base = search_cfg(cfg, **override)
    history = cfg.model.history if cfg.task == "chat" else 1
    fields = type(base).model_fields

    def reply(context: list[str], options: dict) -> str:
        s = base.model_copy(update={k: v for k, v in options.items() if k in fields})
        with task.amp():
            if cfg.task == "chat":
                return task.reply(model, context, dev, s)
            return task.translate(model, [context[-1]], dev, s)[0][0][0]

    options = {k: v for k, v in base.model_dump().items() if k in repl.INT_OPTIONS | repl.FLOAT_OPTIONS}
    return repl.Session(reply, options, history, max_chars=2000), cfg


@app.command()
def chat(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a chat (or translation) model."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (1 = greedy or sampling)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sample at this temperature (0 = argmax)."),
    top_k: Optional[int] = typer.Option(None, "--top-k"),
    top_p: Optional[float] = typer.Option(None, "--top-p"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling (same seed, same replies)."),
    quantize: bool = typer.Option(False, "--quantize", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device"),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Chat with a model: each line gets a reply; /help lists the commands."""
    from textrnn import chat as repl

    session, cfg = open_session(run_dir, device, quantize, precision, beam=beam, temperature=temperature,
                                top_k=top_k, top_p=top_p, seed=seed)
    repl.run(session, f"textrnn chat · {cfg.name}")
