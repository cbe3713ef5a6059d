"""What the Python API costs over calling the task directly, and what 8 threads on one object give.

    python benchmarks/api_overhead.py RUN TEXTS_FILE [-n 1000] [--repeat 5]

RUN: a classifier or translation run; TEXTS_FILE: one input per line (a valid split, never a
test split). In one process, alternating, best of `--repeat`: the API call (`predict` /
`translate`: argument checks, lock, result objects) against the task's own batched call on the
same texts; then the same texts split into 8 parts called from 8 threads at once against one
call. Prints JSON with seconds and ratios.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import torch

import textrnn


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("texts")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = textrnn.load(a.run, device="cpu")
    texts = [t.split("\t")[0] for t in open(a.texts, encoding="utf-8").read().splitlines() if t.strip()][: a.n]
    if isinstance(m, textrnn.Classifier):
        api = lambda xs: m.predict(xs)  # noqa: E731
        direct = lambda xs: m.task.predict_proba(m.model, xs, m.device)  # noqa: E731
    else:
        s = m.settings()
        api = lambda xs: m.translate(xs)  # noqa: E731
        direct = lambda xs: m.task.translate(m.model, xs, m.device, s)  # noqa: E731
    api(texts[:10])  # warm-up
    t_api, t_direct = [], []
    for _ in range(a.repeat):  # alternating, so that machine noise hits both
        t_api.append(best(lambda: api(texts), 1))
        t_direct.append(best(lambda: direct(texts), 1))
    parts = [texts[i::8] for i in range(8)]

    def threaded():
        ts = [threading.Thread(target=api, args=(p,)) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    t_threads = best(threaded, a.repeat)
    out = {
        "run": a.run,
        "texts": len(texts),
        "torch_threads": a.threads,
        "api_s": min(t_api),
        "direct_s": min(t_direct),
        "api_over_direct": min(t_api) / min(t_direct),
        "eight_threads_s": t_threads,
        "eight_threads_over_one_call": t_threads / min(t_api),
        "api_items_per_s": len(texts) / min(t_api),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
