"""`textrnn average RUN -o OUT`: a new run whose model is the mean of epochs that RUN kept.

A run trained with `train.average_last` / `train.average_best` keeps those epochs' weights in
RUN/epochs/. This picks some of them (`epochs`, the `best` N on valid by the run's selection metric,
or the `last` N kept), writes their element-wise mean as OUT's model.safetensors beside a copy of
RUN's tokenizer, vocabulary and pipeline, scores it on the valid split, and puts OUT in place whole
(or not at all). OUT is a run like any other: evaluate, predict, serve, export, or an ensemble member.
One epoch gives that epoch's model as a run of its own (a snapshot to ensemble).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional, Sequence

from textrnn import rundir
from textrnn.errors import UserError

LEFT_OUT = {"last.pt", "model.safetensors", "average.safetensors", "summary.json", rundir.MANIFEST, rundir.HOLDER}


def choose(
    run: Path,
    epochs: Optional[Sequence[int]] = None,
    best: Optional[int] = None,
    last: Optional[int] = None,
) -> tuple[list[int], str]:
    """The epochs to average and how they were chosen ("given", "best", "last"); exactly one way."""
    if sum(x is not None for x in (epochs, best, last)) != 1:
        raise UserError("average: give exactly one of --epochs 3,5, --best N or --last N")
    _, cfg = rundir.open_run(run)
    kept = rundir.kept_epochs(run)
    if not kept:
        raise UserError(
            f"{run}: no epoch weights kept in {rundir.EPOCHS}/ (train with train.average_last or "
            f"train.average_best: N to keep them)"
        )
    listed = ", ".join(map(str, kept))
    if epochs is not None:
        if not epochs:
            raise UserError("--epochs: give one or more epoch numbers, e.g. 3,5")
        for e in epochs:
            if e not in kept:
                raise UserError(f"--epochs: epoch {e} is not kept in {run / rundir.EPOCHS} (kept: {listed})")
        return sorted(set(epochs)), "given"
    n = best if best is not None else last
    assert n is not None
    option = "--best" if best is not None else "--last"
    if n < 1 or n > len(kept):
        raise UserError(f"{option} {n}: from 1 to {len(kept)} ({run} keeps epochs {listed})")
    if last is not None:
        return kept[-n:], "last"
    from textrnn.training.transfer import task_class

    metric, higher = task_class(cfg.task).selection_for(cfg)
    scored = {}
    for rec in rundir.read_metrics(run):  # the last valid record of each kept epoch (a resume may repeat one)
        if rec.get("split") == "valid" and rec["epoch"] in kept and isinstance(rec.get(metric), (int, float)):
            scored[rec["epoch"]] = float(rec[metric])
    if len(scored) < n:
        raise UserError(f"--best {n}: {run}/metrics.jsonl scores {len(scored)} of the kept epochs on valid {metric}")
    return rundir.best_epochs([(s, e) for e, s in scored.items()], n, higher), "best"


def average(
    run: str | Path,
    out: str | Path,
    epochs: Optional[Sequence[int]] = None,
    best: Optional[int] = None,
    last: Optional[int] = None,
    overwrite: bool = False,
    device: str = "cpu",
    score: bool = True,
) -> dict:
    """Write the run directory `out` whose model is the mean of epochs that `run` kept: exactly one of
    epochs=[11, 14], best=N (by valid, the run's selection metric) or last=N. Scored on the valid split
    unless score=False (for a run whose data is not at hand). Returns {"from", "epochs", "of", "valid"};
    bad input raises textrnn.UserError with one sentence, and `out` appears whole or not at all."""
    from textrnn import inference

    run, out = Path(run), Path(out)
    chosen, how = choose(run, epochs, best, last)
    rundir.verify(run)  # the files copied below are the run's own, unchanged
    rundir.check_out_folder(out, run, overwrite)
    tmp = rundir.folder_beside(out)
    try:
        for f in run.iterdir():
            if f.is_file() and f.name not in LEFT_OUT and f.suffix != ".png" and not f.name.startswith("."):
                shutil.copy2(f, tmp / f.name)
        rundir.average_weights([rundir.epoch_weights(run, e) for e in chosen], tmp / "model.safetensors")
        old = rundir.read_summary(run) or {}
        entry = {"from": str(run), "epochs": chosen, "of": how}
        keep = {k: old[k] for k in ("tokens_per_s", "train_seconds", "parameters", "device", "precision") if k in old}
        # the files were written just above: nothing to check against a manifest yet
        valid = inference.load(tmp, device=device, verify=False).evaluate(split="valid") if score else {}
        rundir.write_json(tmp / "summary.json", {**keep, **({"valid": valid} if score else {}), "average": entry})
        rundir.write_manifest(tmp)
        rundir.replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**entry, **({"valid": {k: v for k, v in valid.items() if k != "confusion"}} if score else {})}
