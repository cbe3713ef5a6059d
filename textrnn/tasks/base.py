"""What every task shares: tokenizer + vocabulary preparation and persistence, the Task interface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from textrnn.config import Pipeline
from textrnn.data import batching
from textrnn.registry import get
from textrnn.text import tokenized, tokenizers
from textrnn.text.vocab import Vocab


class Task:
    """A task turns splits into batches, owns its model, its loss and its metrics."""

    name = "base"
    metric = "loss"  # the valid metric that picks the best checkpoint
    higher_is_better = False

    def __init__(self, cfg: Pipeline):
        self.cfg = cfg
        self.tok = tokenizers.build(cfg.tokenizer)
        self.vocab: Optional[Vocab] = None
        self.data: dict[str, list[np.ndarray]] = {}  # split -> id arrays

    # -- data
    def read_splits(self) -> dict:
        """train / valid / test as sources.Examples (labelled texts by default)."""
        from textrnn.data import sources

        return sources.read_splits(self.cfg.data, self.cfg.train.seed, labelled=True)

    def read_test(self):
        """The declared test split alone (for `textrnn evaluate`)."""
        from textrnn.data import sources

        return sources.read(self.cfg.data.test, self.cfg.data.label_names, labelled=True)

    # -- text -> ids
    def fit_text(self, train_texts: list[str]) -> tokenized.Tokenized:
        """Fit the tokenizer and build the vocabulary on the train split only."""
        self.tok.fit(train_texts)
        toks = tokenized.tokenize(self.tok, train_texts)
        v = self.cfg.vocab
        self.vocab = Vocab.build(toks.counts(), v.min_freq, v.max_size)
        return toks

    def encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Tokenize (cached) and numericalize; an empty text becomes a single <unk>."""
        ids = tokenized.tokenize(self.tok, texts).numericalize(self.vocab)
        return [a if len(a) else np.array([self.vocab.unk]) for a in ids]

    def save_text(self, run: Path) -> None:
        self.tok.save(run)
        self.vocab.save(run / "vocab.json")

    def load_text(self, run: Path) -> None:
        self.tok.load(run)
        self.vocab = Vocab.load(run / "vocab.json")

    # -- batching
    def lengths(self, split: str) -> list[int]:
        return [len(a) for a in self.data[split]]

    def batches(self, split: str, shuffle: bool, seed: int = 0) -> list[list[int]]:
        t = self.cfg.train
        return batching.make_batches(self.lengths(split), t.batch_tokens, t.batch_size, shuffle, seed)

    def shard(self, batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
        """This process's part of an epoch's batches under multi-process training."""
        return batching.shard(batches, rank, world)

    # -- to implement
    def prepare(self, splits, run: Path, resume: bool) -> None: ...
    def build_model(self) -> nn.Module: ...
    def collate(self, split: str, idx: list[int], device) -> dict: ...
    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]: ...
    def evaluate(self, model: nn.Module, split: str, device) -> dict: ...
    def save(self, run: Path) -> None: ...
    def load(self, run: Path) -> None: ...
    def plots(self, model: nn.Module, run: Path, device) -> None: ...


def build_task(cfg: Pipeline) -> Task:
    import importlib

    from textrnn.config import TASK_MODULES

    importlib.import_module(f"textrnn.tasks.{TASK_MODULES[cfg.task]}")
    return get("task", cfg.task)(cfg)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
