"""Every training example exactly once per epoch, in a new order each epoch: read whole or streamed."""

from collections import Counter

import pytest

from textrnn import config
from textrnn.data import sources
from textrnn.tasks.base import build_task
from textrnn.tasks.classify import Classify
from textrnn.training.trainer import run_pipeline

from helpers import ROOT

FAST = [
    "train.epochs=2",
    "train.patience=5",
    "model.embedding.dim=16",
    "model.encoder.hidden=16",
    "train.threads=1",
    "data.stream_buffer=120",
    "data.stream_sample=50",
]


@pytest.mark.parametrize("streaming", [False, True])
def test_every_example_exactly_once_per_epoch(tmp_path, monkeypatch, streaming):
    cfg = config.load(ROOT / "tests/data/sentiment.yaml", FAST + [f"data.train.streaming={str(streaming).lower()}"])
    whole = sources.read(cfg.data.train.model_copy(update={"streaming": False}), {}, labelled=True)
    epochs: list[list[tuple]] = [[]]  # the train examples (token ids, class) the trainer collated, per epoch
    collate = Classify.collate

    def spy(self, split, idx, device):
        if split == "train":
            epochs[-1].extend((tuple(self.data["train"][i]), int(self.targets["train"][i])) for i in idx)
        elif epochs[-1]:  # the epoch's evaluation
            epochs.append([])
        return collate(self, split, idx, device)

    monkeypatch.setattr(Classify, "collate", spy)
    run_pipeline(cfg, output=str(tmp_path / "run"))
    seen = [e for e in epochs if e]
    assert len(seen) == 2
    task = build_task(cfg)  # the same vocabulary: the stream's is counted over every example too
    task.prepare({"train": whole}, tmp_path / "run", resume=True)
    index = {lab: i for i, lab in enumerate(task.labels)}
    expected = Counter((tuple(a), index[lab]) for a, lab in zip(task.encode_texts(whole.texts), whole.labels))
    for epoch in seen:
        assert Counter(epoch) == expected  # each example once: none lost, none repeated
    assert seen[0] != seen[1]  # shuffled anew each epoch
