"""Checkpoint averaging: the mean of weight files, train.average_last's choice by valid, an exact resume."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import textrnn
from textrnn import config, rundir
from textrnn.errors import UserError
from textrnn.training.trainer import Trainer, run_pipeline

from helpers import write, write_tiny_data

SOURCES = ["ein hund", "die katze läuft", "", "der hund schläft und die katze läuft"]


def _pipe(d):
    write_tiny_data(d)
    return write(
        d / "p.yaml",
        "name: a\ntask: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\nmodel: {embedding: {dim: 16}, encoder: {hidden: 16}}\n"
        "train: {epochs: 5, average_last: 3, batch_tokens: 60, optimizer: {lr: 0.02}, threads: 1, patience: 50, "
        "checkpoint_every: 0}\n",
    )


def _equal(a, b) -> bool:
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]) for k in x)


def test_the_mean_of_identical_checkpoints_is_the_checkpoint(runs, tmp_path):
    run = runs["translate"].path
    copies = [shutil.copy(run / "model.safetensors", tmp_path / f"{k}.safetensors") for k in range(3)]
    rundir.average_weights(copies, tmp_path / "average.safetensors")
    assert _equal(tmp_path / "average.safetensors", run / "model.safetensors")
    same = shutil.copytree(run, tmp_path / "same")
    shutil.copy(tmp_path / "average.safetensors", same / "model.safetensors")
    assert textrnn.load(same, verify=False).translate(SOURCES, beam=3) == textrnn.load(run).translate(SOURCES, beam=3)


def test_the_mean_is_element_wise_and_integers_come_from_the_last(tmp_path):
    save_file({"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([1])}, tmp_path / "a")
    save_file({"w": torch.tensor([2.0, 6.0]), "n": torch.tensor([7])}, tmp_path / "b")
    rundir.average_weights([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    m = load_file(tmp_path / "m")
    assert m["w"].tolist() == [1.5, 4.0] and m["n"].tolist() == [7] and m["n"].dtype == torch.int64
    save_file({"w": torch.zeros(3)}, tmp_path / "c")
    with pytest.raises(UserError, match="other tensors than"):
        rundir.average_weights([tmp_path / "a", tmp_path / "c"], tmp_path / "m")


# accuracy: any average scores above 0.0 and none above 1.5, so each branch is taken for sure
@pytest.mark.parametrize("best, kept", [(0.0, "average"), (1.5, "best")])
def test_average_last_writes_the_average_and_keeps_the_better_by_valid(tmp_path, cli, monkeypatch, best, kept):
    scored = Trainer._average

    def rigged(self, task):
        self.state.best = best
        return scored(self, task)

    monkeypatch.setattr(Trainer, "_average", rigged)
    run = tmp_path / "run"
    code, _, err = cli("run", _pipe(tmp_path), "-o", run)
    assert code == 0, err
    kept_epochs = [rundir.epoch_weights(run, k) for k in (3, 4, 5)]
    assert sorted((run / "epochs").iterdir()) == kept_epochs  # only the last 3
    rundir.average_weights(kept_epochs, tmp_path / "again.safetensors")
    assert _equal(run / "average.safetensors", tmp_path / "again.safetensors")

    s = json.loads((run / "summary.json").read_text())
    a = s["average"]
    assert a["epochs"] == [3, 4, 5] and a["metric"] == "accuracy" and a["best"] == best and a["kept"] == kept
    assert _equal(run / "model.safetensors", run / "average.safetensors") == (kept == "average")
    if kept == "average":
        assert s["valid"]["accuracy"] == a["average"]
        assert "average of epochs 3–5: valid accuracy" in err and "the model is the average" in err
    else:
        assert f"the model is epoch {a['best_epoch']}" in err
    textrnn.load(run)  # the manifest covers average.safetensors, not the epochs


def test_without_average_last_nothing_changes(runs):
    run = runs["classify"].path
    assert not (run / "average.safetensors").exists() and not (run / "epochs").exists()
    assert "average" not in json.loads((run / "summary.json").read_text())


def test_an_interrupted_run_resumes_to_the_same_average(tmp_path, monkeypatch):
    """Killed mid-epoch, then between an epoch's weights file and its last.pt: the same average."""
    cfg = config.load(_pipe(tmp_path))
    _, whole = run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)

    class Boom(Exception):
        pass

    def die(step):
        if step == 5:  # 2 steps an epoch: in epoch 3
            raise Boom

    cut = tmp_path / "cut"
    with pytest.raises(Boom):
        run_pipeline(cfg, output=str(cut), on_step=die, quiet=True)
    write_last = Trainer._checkpoint

    def crash_after_epoch_4(self):
        if self.state.epoch == 4 and self.state.step_in_epoch == 0:
            raise Boom  # epochs/epoch-4.safetensors is written (and epoch 1's removed), last.pt is not
        write_last(self)

    monkeypatch.setattr(Trainer, "_checkpoint", crash_after_epoch_4)
    with pytest.raises(Boom):
        run_pipeline(cfg, output=str(cut), resume=True, quiet=True)
    assert rundir.epoch_weights(cut, 4).is_file()
    monkeypatch.setattr(Trainer, "_checkpoint", write_last)
    _, resumed = run_pipeline(cfg, output=str(cut), resume=True, quiet=True)
    assert resumed["average"] == whole["average"] and resumed["valid"] == whole["valid"]
    assert _equal(cut / "average.safetensors", tmp_path / "whole" / "average.safetensors")
    assert _equal(cut / "model.safetensors", tmp_path / "whole" / "model.safetensors")
