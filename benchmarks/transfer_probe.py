"""How much sentiment a classifier's frozen pooled states carry: a linear probe (docs/transfer.md).

    python benchmarks/transfer_probe.py pipelines/imdb-transfer.yaml [--train 4000] [--epochs 20]
        [--set model.init_from=null ...]

Builds the classifier as the trainer would start it (model.init_from loads the LM's weights; with
`--set model.init_from=null` the encoder keeps its random initial weights, but the tokenizer and
vocabulary then are the pipeline's own), pools the encoder's states over `--train` random train
examples and the whole valid split (eval mode, nothing trained), and fits a logistic regression on
the pooled features (Adam 0.003, batches of 64), raw and standardized with the train features' mean
and spread. Prints JSON: valid accuracy of each after `--epochs` epochs. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from textrnn import config
from textrnn.training import transfer
from textrnn.training.trainer import Trainer


def pooled(model, task, split: str, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled encoder states [N, F] and the labels [N] of a split's examples `idx`."""
    feats, labels = [], []
    with torch.no_grad():
        for s in range(0, len(idx), 50):
            b = task.collate(split, idx[s : s + 50], torch.device("cpu"))
            f, _ = model.pooled(model.embed(b["ids"]), b["lengths"])  # [B, F]
            feats.append(f)
            labels.append(b["y"])
    return torch.cat(feats), torch.cat(labels)


def probe(X: torch.Tensor, y: torch.Tensor, Xv: torch.Tensor, yv: torch.Tensor, epochs: int, seed: int) -> float:
    """Valid accuracy of a logistic regression trained on (X, y)."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(X.size(1), int(y.max()) + 1)
    opt = torch.optim.Adam(lin.parameters(), lr=0.003)
    for _ in range(epochs):
        perm = torch.randperm(X.size(0))
        for s in range(0, X.size(0), 64):
            j = perm[s : s + 64]
            opt.zero_grad()
            F.cross_entropy(lin(X[j]), y[j]).backward()
            opt.step()
    with torch.no_grad():
        return (lin(Xv).argmax(1) == yv).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline")
    ap.add_argument("--train", type=int, default=4000, help="train examples to probe on (random, seed 1)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.sets)
    torch.manual_seed(cfg.train.seed)
    tr = Trainer(cfg, Path("never-written"))
    tr.cfg = transfer.resolve(tr.cfg, tr.run, False)
    task = tr._prepare()
    tr._build(task)
    model = tr.core.eval()
    pick = torch.randperm(len(task.data["train"]), generator=torch.Generator().manual_seed(1))[: a.train]
    X, y = pooled(model, task, "train", pick.tolist())
    Xv, yv = pooled(model, task, "valid", list(range(len(task.data["valid"]))))
    mu, sd = X.mean(0), X.std(0) + 1e-6
    print(
        json.dumps(
            {
                "pipeline": a.pipeline,
                "sets": a.sets,
                "features": X.size(1),
                "train": X.size(0),
                "valid": Xv.size(0),
                "raw": round(probe(X, y, Xv, yv, a.epochs, 0), 4),
                "standardized": round(probe((X - mu) / sd, y, (Xv - mu) / sd, yv, a.epochs, 0), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
