"""`textrnn compare`: runs side by side as a Markdown table (the pipeline keys that differ, size,
speed, metrics) and one PNG of their learning curves on shared axes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from textrnn import rundir
from textrnn.errors import UserError

SKIP = ("output", "name")  # keys that always differ and say nothing about the model


def flatten(d, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


def _load(run: str) -> dict:
    path, cfg = rundir.open_run(run)
    pipe = flatten(cfg.model_dump(mode="json"))  # validated: defaults filled in, so old and new runs line up
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{path}: no summary.json (the run has not finished training)")
    summary = rundir.read_summary(path)
    hist = rundir.read_metrics(path)
    return {"path": path, "name": path.name, "cfg": cfg, "pipe": pipe, "summary": summary, "history": hist}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "—"}[v]
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "—" if v is None else str(v).replace("|", "\\|")


def report(runs: list[str], output: Optional[Path]) -> str:
    rs = [_load(r) for r in runs]
    tasks = {r["cfg"].task for r in rs}
    if len(tasks) > 1:
        raise UserError(f"runs of different tasks ({', '.join(sorted(tasks))}) cannot share one table")
    names = [r["name"] for r in rs]
    if len(set(names)) < len(names):  # same folder names: use the whole paths
        names = [str(r["path"]) for r in rs]
    keys = sorted({k for r in rs for k in r["pipe"]})
    differ = [
        k
        for k in keys
        if k.split(".")[0] not in SKIP
        and not k.startswith(SKIP)
        and len({json.dumps(r["pipe"].get(k), sort_keys=True) for r in rs}) > 1
    ]
    from textrnn.tasks.base import build_task

    task = build_task(rs[0]["cfg"])
    metric = task.selection[0]  # what the first run picked its best epoch by
    metrics = [
        m
        for m in (metric, "loss", "macro_f1", "perplexity", "ppl", "bleu", "chrf", "distinct_2")
        if any(m in r["summary"].get("valid", {}) for r in rs)
    ]
    metrics = list(dict.fromkeys(metrics))
    head = (
        ["run"]
        + differ
        + ["parameters", "train s", "tokens/s"]
        + [f"valid {m}" for m in metrics]
        + [f"test {m}" for m in metrics if any("test" in r["summary"] for r in rs)]
    )
    rows = []
    for name, r in zip(names, rs):
        s = r["summary"]
        row = (
            [name]
            + [_fmt(r["pipe"].get(k)) for k in differ]
            + [_fmt(s.get("parameters")), _fmt(s.get("train_seconds")), _fmt(s.get("tokens_per_s"))]
            + [_fmt(s.get("valid", {}).get(m)) for m in metrics]
        )
        if any("test" in x["summary"] for x in rs):
            row += [_fmt(s.get("test", {}).get(m)) for m in metrics]
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    md = f"# Comparing {len(rs)} runs ({rs[0]['cfg'].task}, selected by valid {metric})\n\n" + "\n".join(lines) + "\n"
    if not differ:
        md += "\nThe pipelines are identical (apart from name and output).\n"
    if output is not None:
        from textrnn.tools import plots

        png = output.with_name(output.stem + "-curves.png")
        plots.compare_curves({n: r["history"] for n, r in zip(names, rs)}, metric, png)
        md += f"\n![learning curves]({png.name})\n"
        rundir.write_atomic(output, md)
    return md
