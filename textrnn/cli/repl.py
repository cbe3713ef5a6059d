"""The chat REPL: one reply per message, the conversation fed back as context, slash commands.

On a terminal: a prompt with line editing and history (readline), colours, Ctrl-C cancels the
reply being generated, Ctrl-D exits. On a pipe: one message per line in, one reply per line
out on stdout (no prompt, no colours); what commands print goes to stderr.
"""

from __future__ import annotations

import sys
from typing import TextIO

from textrnn.errors import UserError
from textrnn.inference.session import ChatSession

HELP = """commands:
  /reset              forget the conversation
  /history            show the conversation so far
  /set NAME VALUE     change a decoding option (beam, temperature, top_k, top_p, min_length,
                      block_ngram, repetition_penalty, alpha, max_ratio, max_extra, seed)
  /show               show the decoding options
  /help               this text
  /quit               leave (Ctrl-D too)"""

# the names of textrnn.decoding.search.SearchCfg's fields (tested)
INT_OPTIONS = {"beam", "top_k", "min_length", "block_ngram", "max_extra", "seed"}
FLOAT_OPTIONS = {"temperature", "top_p", "repetition_penalty", "alpha", "max_ratio"}


class Session(ChatSession):
    """A conversation (textrnn.inference.ChatSession) plus the REPL's /commands."""

    def command(self, line: str) -> tuple[str, bool]:
        """Run a /command; returns (text to show, quit?)."""
        parts = line[1:].split()
        name = parts[0].lower() if parts else ""
        if name in ("quit", "exit", "q"):
            return "", True
        if name == "reset":
            self.reset()
            return "(conversation reset)", False
        if name == "history":
            return "\n".join(
                f"{'you' if i % 2 == 0 else 'bot'}: {t}" for i, t in enumerate(self.turns)
            ) or "(empty)", False
        if name == "show":
            return "  ".join(f"{k}={v}" for k, v in sorted(self.options.items())), False
        if name == "set":
            if len(parts) != 3:
                return "usage: /set NAME VALUE", False
            key, raw = parts[1].lower(), parts[2]
            try:
                value: float
                if key in INT_OPTIONS:
                    value = int(raw)
                elif key in FLOAT_OPTIONS:
                    value = float(raw)
                else:
                    return f"unknown option {key!r} (try /help)", False
            except ValueError:
                return f"{key}: {raw!r} is not a number", False
            try:
                value = self.set(key, value)  # the shared validation of search settings
            except UserError as e:
                return f"{key}: {raw} is out of range ({e})", False
            return f"{key} = {value}", False
        if name == "help":
            return HELP, False
        return f"unknown command /{name} (try /help)", False


def run_pipe(session: Session, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
    from textrnn.text.lines import decoded

    buffer = getattr(stdin, "buffer", None)  # bytes, decoded line by line: a bad line is named exactly
    for raw in decoded(buffer if buffer is not None else stdin, "<stdin>"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("/"):
            text, stop = session.command(line)
            if text:
                print(text, file=stderr)
            if stop:
                return
            continue
        print(session.respond(line), file=stdout, flush=True)


def run_terminal(session: Session, title: str) -> None:
    from rich.console import Console

    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    con = Console()
    con.print(f"[bold]{title}[/] — type a message, /help for commands, Ctrl-D to leave")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            con.print()
            return
        except KeyboardInterrupt:
            con.print("[dim](Ctrl-D or /quit to leave)[/]")
            continue
        if not line:
            continue
        if line.startswith("/"):
            text, stop = session.command(line)
            if stop:
                return
            con.print(f"[dim]{text}[/]", highlight=False)
            continue
        try:
            with con.status("thinking…"):
                answer = session.respond(line)
        except KeyboardInterrupt:
            con.print("[dim](reply cancelled)[/]")
            continue
        con.print(f"[bold cyan]bot>[/] {answer}", highlight=False)


def run(session: Session, title: str) -> None:
    if sys.stdin.isatty() and sys.stdout.isatty():
        run_terminal(session, title)
    else:
        run_pipe(session, sys.stdin, sys.stdout, sys.stderr)
