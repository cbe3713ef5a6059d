"""Multi-process training: shards of an epoch, and two gloo processes under torchrun on tiny data."""

import json
import os
import socket
import subprocess
import sys

import pytest

from textrnn.data.batching import make_batches, shard

from helpers import ROOT


@pytest.mark.parametrize("n_batches", [1, 2, 5, 7, 8])
@pytest.mark.parametrize("world", [2, 3])
def test_shards_are_disjoint_equal_and_cover_the_epoch(n_batches, world):
    batches = [[b * 10 + i for i in range(3)] for b in range(n_batches)]
    shards = [shard(batches, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen))  # disjoint
    assert set(seen) == {i for b in batches for i in b}  # covers the epoch (3 examples per batch >= world)
    assert all(b for s in shards for b in s)  # no empty batch


def test_shards_of_real_buckets():
    batches = make_batches([5, 9, 3, 12, 7, 7, 2, 11, 4], batch_tokens=20, shuffle=True, seed=3)
    a, b = shard(batches, 0, 2), shard(batches, 1, 2)
    assert sorted(i for s in (a, b) for x in s for i in x) == list(range(9)) and len(a) == len(b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "pipeline,extra",
    [
        ("tests/data/sentiment.yaml", ["model.embedding.dim=16", "model.encoder.hidden=16", "train.epochs=2"]),
        (
            "tests/data/lm.yaml",
            [
                "model.embedding.dim=16",
                "model.hidden=16",
                "model.tie_weights=true",
                "train.epochs=2",
                "model.mode=stream",
                "model.bptt=10",
                "train.batch_size=8",
            ],
        ),
    ],
)
def test_torchrun_two_gloo_processes(tmp_path, pipeline, extra):
    run = tmp_path / "run"
    sets = sum((["--set", s] for s in extra + ["train.threads=1", "train.checkpoint_every=0", "train.device=cpu"]), [])
    env = dict(os.environ, OMP_NUM_THREADS="1", TEXTRNN_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
            "-m",
            "textrnn",
            "run",
            str(ROOT / pipeline),
            "--output",
            str(run),
            *sets,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["world_size"] == 2 and s["weights_equal"] is True
    # both ranks together saw every training token of every epoch once (disjoint shards that cover the epoch)
    from textrnn import config
    from textrnn.tasks.base import build_task

    cfg = config.load(ROOT / pipeline, extra)
    task = build_task(cfg)
    task.prepare({"train": task.read_splits()["train"]}, run, resume=True)
    per_epoch = sum(task.lengths("train"))  # real tokens (classify), or targets of the stream (lm)
    assert s["tokens_all_ranks"] == 2 * per_epoch
    assert p.stderr.count("epoch   1 ") == 1  # rank 0 alone prints
    assert (run / "model.safetensors").is_file() and (run / "metrics.jsonl").read_text().count("\n") == 2
