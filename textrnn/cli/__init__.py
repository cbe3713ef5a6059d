"""The `textrnn` command: a leaf over the inference layer (textrnn.inference) and the trainer.

One module per command group holds its commands as plain typer-annotated functions: train (run,
evaluate, info, average), classify (predict), lm (generate, complete), translate, chat, serve, export, tools
(bench, inspect, compare); they are registered here, in the order `textrnn --help` lists them.
Nothing outside this package imports it.
"""

from __future__ import annotations

import sys

from textrnn.cli import chat, classify, export, lm, serve, tools, train, translate
from textrnn.cli.app import app
from textrnn.errors import Interrupted, UserError

__all__ = ["app", "main", "resume_command"]

for command in (
    train.run,
    train.evaluate,
    classify.predict,
    train.info,
    train.average,
    lm.generate,
    lm.complete,
    translate.translate,
    chat.chat,
    serve.serve,
    export.export,
    tools.bench,
    tools.inspect,
    tools.compare,
):
    app.command()(command)


def resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted `textrnn run`: the same one with --resume."""
    import shlex

    args = [a for a in argv[1:] if a != "--overwrite"]
    return shlex.join(["textrnn", *args] + ([] if "--resume" in args else ["--resume"]))


def main() -> None:
    try:
        app()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as e:
        print(f"{e}\nContinue with: {resume_command(sys.argv)}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # a full disk, a read-only file system, a file-size limit: the OS's own words
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(1)
