"""Plots as matplotlib Figures (object API, no pyplot state: safe in threads and notebooks) and PNG files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from textrnn.rundir import write_atomic


def subplots(*args, figsize=None, **kw):
    """Like pyplot.subplots, but a plain Figure that no global figure manager holds."""
    fig = Figure(figsize=figsize, layout="constrained")  # labels inside the figure, also when saved by a user
    return fig, fig.subplots(*args, **kw)


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buf.getvalue())


def curves(history: list[dict], metric: str, path: Path, title: str, best_epoch: Optional[int] = None) -> None:
    """Write curves_figure's PNG (nothing without history)."""
    if history:
        _save(curves_figure(history, metric, title, best_epoch), path)


def curves_figure(history: list[dict], metric: str, title: str, best_epoch: Optional[int] = None) -> Figure:
    """Train and valid loss per epoch (left), the selection metric (right), the best epoch marked."""
    from matplotlib.ticker import MaxNLocator

    ep = [h["epoch"] for h in history]
    fig, (a, b) = subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, [h.get("train_loss") for h in history], "o-", label="train")
    a.plot(ep, [h.get("loss") for h in history], "o-", label="valid")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.grid(alpha=0.3)
    b.plot(ep, [h.get(metric) for h in history], "o-", color="C2")
    b.set_xlabel("epoch"), b.set_ylabel(f"valid {metric}"), b.grid(alpha=0.3)
    if best_epoch is not None:
        for ax in (a, b):
            ax.axvline(best_epoch, color="C3", ls="--", lw=1, label=f"best (epoch {best_epoch})")
        b.legend()
    a.legend()
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return fig


def confusion(conf: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    _save(confusion_figure(conf, labels, title), path)


def confusion_figure(conf: np.ndarray, labels: list[str], title: str) -> Figure:
    """Counts [true, predicted] as a heat map with the numbers written in."""
    n = len(labels)
    fig, ax = subplots(figsize=(1.2 + 0.7 * n, 1.0 + 0.7 * n))
    ax.imshow(conf, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right"), ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    top = conf.max() if conf.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", color="white" if conf[i, j] > top / 2 else "black")
    return fig


def gates(rec: dict, tokens: list[str], path: Path, title: str, units: int = 8) -> None:
    """One row of heat maps per gate: the mean over units on top, then the `units` most varying units."""
    names = [k for k in rec if k not in ("h",)] or ["h"]
    fig, axes = subplots(len(names), 1, figsize=(max(5, 0.45 * len(tokens) + 2), 1.2 + 1.6 * len(names)), squeeze=False)
    for n_ax, (ax, name) in enumerate(zip(axes[:, 0], names)):
        a = np.asarray(rec[name])  # [T, H]
        top = np.argsort(-a.std(0))[:units]
        m = np.vstack([a.mean(1, keepdims=True).T, a[:, top].T])  # [1 + units, T]
        lo, hi = (0, 1) if name in ("input", "forget", "output", "reset", "update") else (-1, 1)
        im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
        ax.set_yticks(range(len(top) + 1), ["mean"] + [f"u{u}" for u in top], fontsize=7)
        last = n_ax == len(names) - 1  # token labels under the bottom map only
        ax.set_xticks(range(len(tokens)), tokens if last else [], rotation=60, ha="right", fontsize=8)
        ax.set_title(name if name != "h" else "hidden state", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
    fig.suptitle(title)
    _save(fig, path)


def saliency(tokens: list[str], values: list[float], path: Path, title: str) -> None:
    fig, ax = subplots(figsize=(max(5, 0.45 * len(tokens) + 2), 3))
    v = np.asarray(values)
    ax.bar(range(len(tokens)), v, color=np.where(v >= 0, "C2", "C3"))
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("gradient × embedding")
    ax.set_title(title)
    _save(fig, path)


def gradient_decay(curves: dict[str, list[float]], path: Path, title: str) -> None:
    """||d h_T / d x_t|| against the distance T - t, log scale, one curve per run."""
    fig, ax = subplots(figsize=(6, 3.8))
    for name, g in curves.items():
        ax.semilogy(range(len(g)), np.maximum(np.asarray(g), 1e-30), "o-", ms=3, label=name)
    ax.set_xlabel("distance from the last token (steps)")
    ax.set_ylabel("‖∂h_T / ∂x_t‖")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title)
    _save(fig, path)


def compare_curves(runs: dict[str, list[dict]], metric: str, path: Path) -> None:
    """Valid metric and train loss per epoch of several runs on shared axes."""
    fig, (a, b) = subplots(1, 2, figsize=(10, 3.6))
    for name, hist in runs.items():
        ep = [h["epoch"] for h in hist]
        a.plot(ep, [h.get(metric) for h in hist], "o-", label=name)
        b.plot(ep, [h.get("train_loss") for h in hist], "o-", label=name)
    a.set_xlabel("epoch"), a.set_ylabel(f"valid {metric}"), a.grid(alpha=0.3), a.legend()
    b.set_xlabel("epoch"), b.set_ylabel("train loss"), b.grid(alpha=0.3)
    _save(fig, path)
