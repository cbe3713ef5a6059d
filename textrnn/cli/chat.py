"""`textrnn chat`: talk to a chat run directory (a REPL on a terminal, one reply per line on a pipe)."""

from __future__ import annotations

from typing import List, Optional, Sequence

import typer

from textrnn.cli.app import DEVICE_HELP, PRECISION_HELP, QUANTIZE_HELP, WITH_HELP, open_model, warn_unknown


def open_session(
    run_dir: str,
    device: str = "cpu",
    quantize: bool = False,
    precision: str = "fp32",
    members: Sequence[str] = (),
    **override,
):
    """A REPL session on a chat (or translation) run directory (with `members`: an ensemble): (Session, pipeline).

    `override`: decoding settings (beam, temperature, top_k, top_p, seed; None = the pipeline's).
    """
    from textrnn.cli import repl as repl

    bot = open_model(
        run_dir,
        "chat",
        ("chat", "translate"),
        "a chat or translation run directory",
        device,
        precision,
        quantize,
        members=members,
    )
    base = bot.settings(**override)
    options = {k: v for k, v in base.model_dump().items() if k in repl.INT_OPTIONS | repl.FLOAT_OPTIONS}

    def reply(context: list[str], opts: dict) -> str:
        warn_unknown(bot.unknown(context[-1:]), "message")
        return bot.respond_to(context, opts)

    return repl.Session(reply, options, bot.history, max_chars=2000), bot.pipeline


def chat(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a chat (or translation) model."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (1 = greedy or sampling)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sample at this temperature (0 = argmax)."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample among the k most likely tokens (0 = all)."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample within this probability mass (1 = all)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling (same seed, same replies)."),
    with_: List[str] = typer.Option([], "--with", metavar="RUN", help=WITH_HELP),
    quantize: bool = typer.Option(False, "--quantize", metavar="", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Chat with a model: each line gets a reply; /help lists the commands."""
    from textrnn.cli import repl as repl

    session, cfg = open_session(
        run_dir,
        device,
        quantize,
        precision,
        with_,
        beam=beam,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    repl.run(session, f"textrnn chat · {cfg.name}")
