"""Tools: `textrnn bench` (speed in one process, JSON), `textrnn inspect` (inside the network), `textrnn compare`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from textrnn.cli.app import PRECISION_HELP, SET_HELP, open_model
from textrnn.errors import UserError


def bench(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    steps: int = typer.Option(50, "--steps", min=1, help="Timed training steps (after 5 warm-up steps)."),
    run_dir: Optional[str] = typer.Option(None, "--run", help="A trained run directory: also time its inference."),
    set_: List[str] = typer.Option([], "--set", help=SET_HELP),
    device: str = typer.Option("auto", "--device", help="cpu | cuda | mps | auto."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the JSON to this file."),
    precision: str = typer.Option("fp32", "--precision", help="Inference (--run) " + PRECISION_HELP),
):
    """Training tokens/s, FLOPs per token, roofline fraction, inference speed and peak memory, as JSON."""
    from textrnn import config, rundir
    from textrnn.tools.bench import bench as run_bench

    cfg = config.load(pipeline, set_)
    text = json.dumps(run_bench(cfg, steps, run_dir, device, precision), indent=2)
    if output:
        rundir.write_atomic(output, text + "\n")
    typer.echo(text)


def _ids(task, text: str):
    import torch

    toks = task.tok.tokenize(text)
    if not toks:
        raise UserError("the text is empty: give some words to inspect")
    ids = task.vocab.encode(toks)
    return torch.tensor(ids), task.vocab.decode(ids)


def inspect(
    args: List[str] = typer.Argument(..., metavar="RUN... TEXT", help="One or more run directories, then the text."),
    out_dir: Path = typer.Option(Path("inspect"), "-o", "--output-dir", help="Folder for the PNGs (and JSON)."),
    as_json: bool = typer.Option(
        False, "--json", metavar="", help="Also write every number the plots show to inspect.json."
    ),
    units: int = typer.Option(8, "--units", min=0, help="Units shown per gate besides the mean (most varying)."),
):
    """Gates per layer and direction, saliency (classifiers), gradient decay with distance, attention."""
    from rich.console import Console
    from rich.text import Text

    from textrnn.inference import Classifier, Translator
    from textrnn.tasks.seq2seq import plot_attention
    from textrnn.tools import plots, probe

    if len(args) < 2:
        raise UserError("give a run directory and then the text to inspect")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir}: exists and is not a folder")
    runs, text = args[:-1], args[-1]
    con = Console()
    report: dict = {"text": text, "runs": {}}
    decay: dict[str, list[float]] = {}
    for run_dir in runs:
        m = open_model(run_dir, "inspect")
        run, cfg, task, model = m.run, m.pipeline, m.task, m.model
        name = Path(run).name
        ids, tokens = _ids(task, text)
        r: dict = {"task": cfg.task, "tokens": tokens, "layers": []}
        for rec in probe.layers(model, task, ids):
            tag = f"{name}-layer{rec['layer']}-{rec['direction']}"
            gates = {k: v for k, v in rec.items() if k not in ("layer", "direction", "kind", "max_abs_diff")}
            if rec["kind"] == "RNN":
                gates = {"h": gates["h"]}
            else:
                gates.pop("h")
            plots.gates(
                gates,
                tokens,
                out_dir / f"{tag}-gates.png",
                f"{name}: layer {rec['layer']} {rec['direction']} ({rec['kind']})",
                units,
            )
            entry = {
                "layer": rec["layer"],
                "direction": rec["direction"],
                "cell": rec["kind"],
                "max_abs_diff_vs_fused": rec.get("max_abs_diff"),
                "hidden_norm": rec["h"].norm(dim=-1).tolist(),
                "gate_means": {k: v.mean(-1).tolist() for k, v in gates.items() if k != "h"},
            }
            if as_json:
                entry["gates"] = {k: v.tolist() for k, v in gates.items()}
            r["layers"].append(entry)
        decay[name] = r["gradient_by_distance"] = probe.gradient_by_distance(model, task, ids)
        if isinstance(m, Classifier):
            s = probe.saliency(model, task, ids)
            r["saliency"] = s
            plots.saliency(
                tokens,
                s["saliency"],
                out_dir / f"{name}-saliency.png",
                f"{name}: {s['predicted']} ({s['probability']:.2f})",
            )
            top = max(abs(v) for v in s["saliency"]) or 1.0
            line = Text(f"{name}: {s['predicted']} {s['probability']:.3f}  ")
            for tok, v in zip(tokens, s["saliency"]):
                a = min(1.0, abs(v) / top)
                colour = f"rgb({int(40 + 200 * a)},60,60)" if v < 0 else f"rgb(60,{int(40 + 200 * a)},60)"
                line.append(tok + " ", style=f"bold {colour}" if a > 0.3 else colour)
            con.print(line)
        if isinstance(m, Translator):  # and Chatbot
            src, tgt, w = m.attention(text, beam=1, n_best=1)
            plot_attention(w, src, tgt, out_dir / f"{name}-attention.png", f"{name}: {text}")
            r["attention"] = {"source": src, "target": tgt, "weights": w.tolist()}
        report["runs"][name] = r
    plots.gradient_decay(decay, out_dir / "gradient-by-distance.png", "gradient of the last state by distance")
    if as_json:
        from textrnn.rundir import write_json

        write_json(out_dir / "inspect.json", report)
    for name, g in decay.items():
        con.print(
            f"{name}: ‖∂h_T/∂x_t‖ at distance 0, {len(g) // 2}, {len(g) - 1}: "
            f"{g[0]:.3g}, {g[len(g) // 2]:.3g}, {g[-1]:.3g}"
        )
    con.print(f"[dim]plots in {out_dir}/[/]")


def compare(
    runs: List[str] = typer.Argument(..., metavar="RUN...", help="Two or more run directories."),
    output: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Write the Markdown report here (its learning-curve PNG beside it); default: print it.",
    ),
):
    """A Markdown table of runs: the pipeline keys that differ, size, speed and metrics; learning curves."""
    from textrnn.tools import compare as cmp

    if len(runs) < 2:
        raise UserError("give two or more run directories to compare")
    md = cmp.report(runs, output)
    if output is None:
        typer.echo(md)
    else:
        typer.echo(f"wrote {output}")
