"""What a person reads when a run ends: the best epoch, rounded metrics, time, files, the next
commands; and the warnings that matter (a tiny valid split, a best first epoch, a classifier no
better than always answering the most frequent class)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

SHOWN = {  # metrics worth a person's attention, per task
    "classify": ("accuracy", "macro_f1"),
    "lm": ("perplexity", "perplexity_fwd", "perplexity_bwd"),  # per direction: bidirectional LMs
    "translate": ("bleu", "chrf", "perplexity"),
    "chat": ("perplexity", "distinct_2", "top_reply_share"),
}
SMALL_VALID = 50  # examples: below this a valid metric is mostly noise


def _num(key: str, v: float) -> str:
    if key in ("accuracy", "macro_f1", "top_reply_share"):
        return f"{100 * v:.1f} %"
    if key == "loss":  # cross-entropies differ in the third decimal where a choice is made on them
        return f"{v:.4f}"
    return f"{v:.2f}" if abs(v) < 1000 else f"{v:,.0f}"


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{seconds:.1f} s"


def next_commands(task: str, run: Path) -> list[str]:
    r = shlex.quote(str(run))
    return {
        "classify": [
            f'textrnn predict {r} "a film I would watch again"',
            f"textrnn evaluate {r} --set data.test.path=FILE",
        ],
        "lm": [f'textrnn complete {r} "I\'ll be there in"', f'textrnn generate {r} --prompt "See you" --num 3'],
        "translate": [f'echo "SENTENCE" | textrnn translate {r}', f"textrnn translate {r} FILE -o OUT"],
        "chat": [f"textrnn chat {r}"],
    }[task] + [f"python -c 'import textrnn; print(textrnn.load(\"{run}\"))'"]


def _by(summary: dict, task: str) -> str:
    """' by valid loss' where the run picked its best epoch by a metric other than its task's own."""
    from textrnn.config import SELECT

    by = summary.get("selected_by")  # absent in runs saved before train.select
    own = next(iter(SELECT[task]))  # the task's own metric comes first
    return f" by valid {by}" if by not in (None, own) else ""


def decoded(m: dict) -> str:
    """' (greedy)' / ' (beam 5)' after a translate or chat figure: the per-epoch valid score decodes
    greedily, the test figure as `generate:` says, and the two are not comparable unlabelled."""
    beam = m.get("beam")
    if not isinstance(beam, int):
        return ""
    return " (greedy)" if beam == 1 else f" (beam {beam})"


def end_of_run(run: Path, task: str, name: str, summary: dict) -> list[str]:
    """Lines for the end of a run (rich markup)."""
    lines = [
        f"[bold green]done[/]: {name} ({task}) — best epoch {summary.get('best_epoch')} of "
        f"{summary.get('epochs')}{_by(summary, task)}, {_duration(summary.get('train_seconds', 0.0))} of training"
    ]
    for split in ("valid", "test"):
        m = summary.get(split) or {}
        shown = [f"{k} {_num(k, m[k])}" for k in SHOWN.get(task, ()) if isinstance(m.get(k), (int, float))]
        if shown:
            lines.append(f"  {split:<5} " + ", ".join(shown) + decoded(m))
    lines += averaged(summary.get("average"))
    files = "model.safetensors, " + ("average.safetensors, " if summary.get("average") else "")
    lines.append(f"  files  {run}/ ({files}summary.json, metrics.jsonl, curves.png)")
    lines.append("  next:")
    lines += [f"    {c}" for c in next_commands(task, run)]
    return lines


def averaged(a: Optional[dict]) -> list[str]:
    """train.average_last / average_best: the average's valid score beside the best epoch's, and which
    is the model."""
    if not a:
        return []
    metric, epochs = a["metric"], a["epochs"]
    first, last = epochs[0], epochs[-1]
    if len(epochs) == 1:
        what = f"epoch {first}"
    elif last - first + 1 == len(epochs):
        what = f"epochs {first}–{last}"
    else:
        what = "epochs " + ", ".join(map(str, epochs))
    kept = "the average" if a["kept"] == "average" else f"epoch {a['best_epoch']}"
    return [
        f"  average of {what}: valid {metric} {_num(metric, a['average'])} "
        f"(best epoch {a['best_epoch']}: {_num(metric, a['best'])}){decoded(a)}; the model is {kept}"
    ]


def warnings_at_end(task, summary: dict) -> list[str]:
    """One-line warnings about a finished run."""
    out = []
    if summary.get("best_epoch") == 1 and summary.get("epochs", 0) > 1:
        out.append(
            "the best epoch is the first: the valid metric never improved after it (too high a "
            "learning rate, too little data, or overfitting from the start)"
        )
    majority = getattr(task, "majority_share", None)
    valid_acc = (summary.get("valid") or {}).get("accuracy")
    if majority is not None and valid_acc is not None and valid_acc <= majority + 1e-9:
        out.append(
            f"valid accuracy {100 * valid_acc:.1f} % is no better than always answering the most "
            f"frequent class ({100 * majority:.1f} %)"
        )
    return out


def small_valid(n: Optional[int]) -> Optional[str]:
    if n is not None and n < SMALL_VALID:
        return (
            f"the valid split has {n} examples (fewer than {SMALL_VALID}): its metric, and the checkpoint "
            f"it picks, are mostly noise"
        )
    return None
