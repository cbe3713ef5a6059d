"""Kill a training run at random moments (SIGKILL: no handler runs), resume it, and compare the
end result with an uninterrupted run of the same pipeline.

    python benchmarks/kill_resume.py PIPELINE.yaml [--kills 20] [--seed 0] [--set key=value]...

Each cycle starts `textrnn run ... --resume` (or a fresh `--overwrite` run while no checkpoint
exists yet), kills it after a random delay, and counts it; then the run is finished without a
kill. Exact: the final model.safetensors is bitwise equal to the uninterrupted run's and the
summary's valid/test metrics are equal. Prints JSON. Run it alone on the machine: the random
delays are in wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file


def run(pipeline: str, out: Path, sets: list[str], extra: list[str], kill_after: float | None) -> str:
    cmd = [
        sys.executable,
        "-m",
        "textrnn",
        "run",
        pipeline,
        "-o",
        str(out),
        *sum((["--set", s] for s in sets), []),
        *extra,
    ]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is None:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"run failed: {err.strip().splitlines()[-1:]}")
        return "finished"
    try:
        p.wait(timeout=kill_after)
        return "finished"
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return "killed"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    a = ap.parse_args()
    rng = random.Random(a.seed)
    d = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    t0 = time.perf_counter()
    run(a.pipeline, d / "whole", a.sets, [], None)
    whole_s = time.perf_counter() - t0
    cut, kills, fresh_starts = d / "cut", 0, 0
    while kills < a.kills:
        resumable = (cut / "last.pt").is_file()
        fresh_starts += not resumable
        outcome = run(
            a.pipeline, cut, a.sets, ["--resume"] if resumable else ["--overwrite"], rng.uniform(0.5, max(1.0, whole_s))
        )
        if outcome == "finished":  # finished before the kill: start a new cycle from scratch
            run(a.pipeline, cut, a.sets, ["--overwrite"], rng.uniform(0.5, max(1.0, 0.8 * whole_s)))
        kills += 1
    run(a.pipeline, cut, a.sets, ["--resume"] if (cut / "last.pt").is_file() else ["--overwrite"], None)
    wa, wb = load_file(str(d / "whole" / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    sa, sb = (json.loads((x / "summary.json").read_text()) for x in (d / "whole", cut))
    same_weights = set(wa) == set(wb) and all(bool((wa[k] == wb[k]).all()) for k in wa)
    same_metrics = all(sa.get(s) == sb.get(s) for s in ("valid", "test"))
    print(
        json.dumps(
            {
                "pipeline": a.pipeline,
                "kills": kills,
                "fresh_starts": fresh_starts,
                "uninterrupted_seconds": round(whole_s, 1),
                "weights_equal": same_weights,
                "metrics_equal": same_metrics,
                "leftover_temp_files": [p.name for p in cut.glob(".*")],
                "folder": str(d),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
