"""onnxruntime against PyTorch on a classifier run: sentences/s on 1 and 2 threads, in one process.

    python benchmarks/onnx_speed.py [RUN] [--split train] [-n 2000] [--repeat 5]

RUN (default runs/sentiment) is exported to a temporary folder with `textrnn.export`; the first `-n`
texts of one of its splits (speed only: any split will do) are tokenized once, then both runtimes
classify the same id batches: the task's own length-bucketed batches ("batched") and one sentence
at a time ("single"). The two runtimes alternate, best of `--repeat`, so machine noise hits both.
Prints JSON with sentences/s and the onnxruntime / PyTorch ratio per thread count and mode, and the
largest probability difference.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import textrnn
from textrnn.data import batching
from textrnn.export import export
from textrnn.export.onnx import session


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", nargs="?", default="runs/sentiment")
    ap.add_argument("--split", default="train", choices=["train", "valid", "test"])
    ap.add_argument("-n", type=int, default=2000, help="texts of the split")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    clf = textrnn.load(a.run, device="cpu")
    if not isinstance(clf, textrnn.Classifier):
        raise SystemExit(f"{a.run}: not a classifier run")
    task, model = clf.task, clf.model
    texts = task.read_test(getattr(clf.pipeline.data, a.split)).texts[: a.n]
    ids = task.encode_texts(texts, cache=False)
    t = task.cfg.train
    batches = [
        batching.pad([ids[i] for i in idx], task.vocab.pad)
        for idx in batching.make_batches([len(x) for x in ids], t.batch_tokens, t.batch_size)
    ]
    modes = {
        "batched": [(x.numpy(), n.numpy()) for x, n in batches],
        "single": [(x[None].astype(np.int64), np.array([len(x)])) for x in ids],
    }

    def run_torch(feeds):
        with torch.inference_mode():
            return [model(torch.from_numpy(x), torch.from_numpy(n)).softmax(-1).numpy() for x, n in feeds]

    with tempfile.TemporaryDirectory() as tmp:
        sig = export(a.run, Path(tmp) / "onnx")
        out = {
            "run": a.run,
            "split": a.split,
            "texts": len(texts),
            "batches": len(batches),
            "torch": torch.__version__,
            "export_max_abs_diff": sig["check"]["max_abs_diff"],
            "results": [],
        }
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sess = session(Path(tmp) / "onnx" / "model.onnx", threads)

            def run_ort(feeds):
                return [sess.run(["probs"], {"ids": x, "lengths": n})[0] for x, n in feeds]

            for mode, feeds in modes.items():
                diff = max(float(np.abs(p - q).max()) for p, q in zip(run_torch(feeds), run_ort(feeds)))  # + warm-up
                t_torch, t_ort = [], []
                for _ in range(a.repeat):
                    t_torch.append(seconds(lambda: run_torch(feeds)))
                    t_ort.append(seconds(lambda: run_ort(feeds)))
                pt, ox = len(texts) / min(t_torch), len(texts) / min(t_ort)
                out["results"].append(
                    {
                        "threads": threads,
                        "mode": mode,
                        "torch_sentences_per_s": round(pt),
                        "onnxruntime_sentences_per_s": round(ox),
                        "ratio_ort_over_torch": round(ox / pt, 2),
                        "max_abs_diff": diff,
                    }
                )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
