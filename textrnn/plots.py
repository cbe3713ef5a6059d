"""PNG plots: learning curves and the confusion matrix."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from textrnn.rundir import write_atomic  # noqa: E402


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())


def curves(history: list[dict], metric: str, path: Path, title: str) -> None:
    """Train and valid loss per epoch (left), the selection metric (right)."""
    if not history:
        return
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["loss"] for h in history], "o-", label="valid")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(ep, [h[metric] for h in history], "o-", color="C2")
    b.set_xlabel("epoch"), b.set_ylabel(f"valid {metric}"), b.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)


def confusion(conf: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * n, 1.0 + 0.7 * n))
    ax.imshow(conf, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right"), ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    top = conf.max() if conf.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", color="white" if conf[i, j] > top / 2 else "black")
    _save(fig, path)
