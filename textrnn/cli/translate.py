"""`textrnn translate`: batched, streamed translation of files or stdin with a seq2seq run directory."""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from textrnn.cli.app import DEVICE_HELP, PRECISION_HELP, QUANTIZE_HELP, leading_runs, open_model
from textrnn.errors import UserError


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _chunks(f, name: str, size: int) -> Iterator[list[str]]:
    """Lines of a binary stream, decoded as UTF-8, `size` at a time (memory stays flat)."""
    from textrnn.text.lines import decoded

    buf: list[str] = []
    for line in decoded(f, name):
        buf.append(line)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _count_lines(path: str) -> int:
    n, last = 0, b"\n"
    with _open(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


@contextlib.contextmanager
def _atomic_text(path: Path):
    """A text file written under a temporary name in the same folder and renamed when complete."""
    from textrnn import rundir

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = rundir.temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _out_name(name: str, run_dir: str) -> str:
    """An output's file name: the input's, with the source language's suffix swapped for the target's
    when the training files name them (train.de / train.en: x.de -> x.en)."""
    try:
        from textrnn import inference

        src = inference.read_pipeline(run_dir)[1].data.train
    except UserError:
        return name  # the run directory's own error comes when it is opened
    if src.src and src.tgt:
        a, b = Path(src.src.removesuffix(".gz")).suffix, Path(src.tgt.removesuffix(".gz")).suffix
        if a and b and a != b and name.endswith(a):
            return name[: -len(a)] + b
    return name


def _check_paths(files: list[str], outs: list[Optional[Path]], output_dir: Optional[str]) -> None:
    """Before anything is read or written: every input exists, no output is an input, a folder,
    or the output of another input."""
    for f in files:
        if Path(f).is_dir():
            raise UserError(f"{f}: a folder, neither a file nor a run directory (no textrnn.json)")
        if not Path(f).is_file():
            raise UserError(f"{f}: no such file")
    if output_dir and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise UserError(f"--output-dir {output_dir}: exists and is not a folder")
    inputs = {Path(f).resolve() for f in files}
    seen: dict[Path, str] = {}
    for f, o in zip(files or ["<stdin>"], outs):
        if o is None:
            continue
        if o.is_dir():
            raise UserError(f"{o}: is a folder; give a file name with -o, or use --output-dir")
        if o.resolve() in inputs:
            raise UserError(f"{o}: the output would overwrite an input; choose another output")
        if o.resolve() in seen:
            raise UserError(
                f"{seen[o.resolve()]} and {f} would both be written to {o}; give them different "
                f"names or translate them in two runs"
            )
        seen[o.resolve()] = f


def _format(hyps: list[tuple[str, float]], n_best: int) -> str:
    """One output line: the best translation, or the n best separated by tabs."""
    texts = [h.replace("\n", " ").replace("\t", " ") for h, _ in hyps[:n_best]]
    return "\t".join(texts) if n_best > 1 else (texts[0] if texts else "")


def translate(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory of a translation model."),
    files: List[str] = typer.Argument(
        None,
        metavar="[RUN]... [FILE]...",
        help="More run directories (an ensemble: one task and vocabulary), then input files, one sentence per line "
        "(default: stdin). With --plot-attention: the text to translate.",
    ),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output file (one input file or stdin)."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", help="Folder for one output per input file."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (1 = greedy; default: the pipeline's)."),
    batch_tokens: Optional[int] = typer.Option(None, "--batch-tokens", help="Source tokens × beam per batch."),
    n_best: Optional[int] = typer.Option(None, "--n-best", help="Print the K best translations, tab-separated."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Length penalty (0 = none)."),
    plot_attention: Optional[str] = typer.Option(
        None, "--plot-attention", metavar="OUT.png", help="Draw the attention matrix of the given text."
    ),
    chunk: int = typer.Option(10000, "--chunk", help="Lines read and translated at a time."),
    quantize: bool = typer.Option(False, "--quantize", metavar="", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
):
    """Translate files or stdin: exactly one output line per input line, in input order."""
    files = list(files or [])
    members, files = ([], files) if plot_attention else leading_runs(files)
    if output and output_dir:
        raise UserError("give --output or --output-dir, not both")
    if output and len(files) > 1:
        raise UserError(f"{len(files)} input files: use --output-dir DIR (one output per input)")
    if output_dir and not files and not plot_attention:
        raise UserError("--output-dir needs input files (stdin goes to stdout or --output)")
    outs: list[Optional[Path]] = [Path(output)] if output else [None] * max(1, len(files))
    if output_dir:
        outs = [Path(output_dir) / _out_name(Path(f).name, run_dir) for f in files]
    if not plot_attention:
        _check_paths(files, outs, output_dir)
    mt = open_model(
        run_dir, "translate", ("translate", "chat"), "a translation model", device, precision, quantize, members=members
    )
    s = mt.settings(beam=beam, batch_tokens=batch_tokens, n_best=n_best, alpha=alpha)

    if plot_attention:
        from textrnn.tasks.seq2seq import plot_attention as draw

        text = " ".join(files) if files else sys.stdin.read().strip()
        if not text:
            raise UserError("--plot-attention: give the text to translate")
        src, tgt, w = mt.attention(text, **s.model_dump())
        draw(w, src, tgt, Path(plot_attention), text)
        typer.echo(mt.task.detok([mt.task.vocab_tgt.stoi[t] for t in tgt[:-1]]))
        return

    ins: list[Optional[str]] = list(files) if files else [None]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    con = Console(stderr=True)
    t0, done, unknown = time.perf_counter(), 0, []  # unknown: (input, line) of mostly unknown sentences
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f} sent/s"),
        TimeElapsedColumn(),
        console=con,
        transient=True,
        disable=not con.is_terminal,
    ) as bar:
        for src_path, out_path in zip(ins, outs):
            name = src_path or "<stdin>"
            pid = bar.add_task(name, total=_count_lines(src_path) if src_path else None, rate=0.0)
            with contextlib.ExitStack() as stack:
                fin = stack.enter_context(_open(src_path)) if src_path else sys.stdin.buffer
                fout = stack.enter_context(_atomic_text(out_path)) if out_path else sys.stdout
                first = done
                for lines in _chunks(fin, name, chunk):
                    hyps, counts = mt.translate_counted(lines, s)
                    unknown += [(name, done - first + i) for i, (u, n) in enumerate(counts, 1) if n and u * 2 > n]
                    fout.write("".join(_format(h, s.n_best) + "\n" for h in hyps))
                    fout.flush()
                    done += len(lines)
                    bar.update(pid, advance=len(lines), rate=done / max(time.perf_counter() - t0, 1e-9))
    if unknown:
        (name, line), more = unknown[0], len(unknown) - 1
        con.print(
            f"warning: {name}:{line}: most of its tokens are not in the model's vocabulary"
            + (f" (and {more:,} more such lines of {done:,})" if more else ""),
            highlight=False,
        )
    dt = time.perf_counter() - t0
    con.print(f"[dim]{done:,} sentences in {dt:.1f} s ({done / max(dt, 1e-9):,.1f} sentences/s, beam {s.beam})[/]")
