"""Checkpoint averaging: the mean of weight files, train.average_last / average_best's choice by valid, an
exact resume."""

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


def _pipe(d, average="average_last: 3"):
    write_tiny_data(d)
    return write(
        d / "p.yaml",
        "name: a\ntask: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\nmodel: {embedding: {dim: 16}, encoder: {hidden: 16}}\n"
        f"train: {{epochs: 5, {average}, batch_tokens: 60, optimizer: {{lr: 0.02}}, threads: 1, patience: 50, "
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


@pytest.mark.parametrize("average", ["average_last: 3", "average_best: 2, select: loss"])
def test_an_interrupted_run_resumes_to_the_same_average(tmp_path, monkeypatch, average):
    """Killed mid-epoch, then between an epoch's weights file and its last.pt: the same average."""
    cfg = config.load(_pipe(tmp_path, average))
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
            raise Boom  # epochs/epoch-4.safetensors is written, last.pt is not (epoch 1's stays till it is)
        write_last(self)

    monkeypatch.setattr(Trainer, "_checkpoint", crash_after_epoch_4)
    with pytest.raises(Boom):
        run_pipeline(cfg, output=str(cut), resume=True, quiet=True)
    assert rundir.epoch_weights(cut, 4).is_file() or "best" in average  # average_best: if epoch 4 is among them
    monkeypatch.setattr(Trainer, "_checkpoint", write_last)
    _, resumed = run_pipeline(cfg, output=str(cut), resume=True, quiet=True)
    assert resumed["average"] == whole["average"] and resumed["valid"] == whole["valid"]
    assert _equal(cut / "average.safetensors", tmp_path / "whole" / "average.safetensors")
    assert _equal(cut / "model.safetensors", tmp_path / "whole" / "model.safetensors")


def test_average_best_keeps_and_averages_the_n_best_epochs_by_valid(tmp_path, cli):
    run = tmp_path / "run"
    code, _, err = cli("run", _pipe(tmp_path, "average_best: 2, select: loss"), "-o", run)
    assert code == 0, err
    history = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    best2 = sorted(sorted(history, key=lambda h: (h["loss"], h["epoch"]))[:2], key=lambda h: h["epoch"])
    epochs = [h["epoch"] for h in best2]
    assert sorted((run / "epochs").iterdir()) == [rundir.epoch_weights(run, k) for k in epochs]
    rundir.average_weights([rundir.epoch_weights(run, k) for k in epochs], tmp_path / "again.safetensors")
    assert _equal(run / "average.safetensors", tmp_path / "again.safetensors")
    a = json.loads((run / "summary.json").read_text())["average"]
    assert a["epochs"] == epochs and a["of"] == "best" and a["metric"] == "loss"
    assert a["best"] == min(h["loss"] for h in history) and a["best_epoch"] in epochs


def test_average_best_picks_by_the_selection_metric_and_ties_go_to_the_earlier_epoch():
    from types import SimpleNamespace

    history = [{"epoch": e, "accuracy": acc} for e, acc in enumerate([0.5, 0.8, 0.7, 0.8, 0.6, 0.8], 1)]
    for higher, n, want in [(True, 2, [2, 4]), (True, 4, [2, 3, 4, 6]), (False, 2, [1, 5])]:
        trainer = SimpleNamespace(
            cfg=SimpleNamespace(train=SimpleNamespace(average_last=None, average_best=n)),
            state=SimpleNamespace(history=history, epoch=6),
        )
        assert Trainer._averaged(trainer, SimpleNamespace(selection=("accuracy", higher))) == want


def test_one_average_at_a_time_and_the_report_names_the_epochs(tmp_path):
    from textrnn.training import report

    with pytest.raises(UserError, match="average_last or train.average_best, not both"):
        config.load(_pipe(tmp_path), ["train.average_best=2"])
    a = {"metric": "accuracy", "average": 0.9, "best": 0.8, "best_epoch": 4, "kept": "average"}
    assert "average of epochs 2, 4, 7: valid accuracy" in report.averaged(a | {"epochs": [2, 4, 7]})[0]
    assert "average of epochs 3–5:" in report.averaged(a | {"epochs": [3, 4, 5]})[0]
    assert "average of epoch 4:" in report.averaged(a | {"epochs": [4]})[0]


# ---------------------------------------------------------------- textrnn average RUN -o OUT


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A tiny classifier run that kept epochs 3-5 (average_last: 3)."""
    d = tmp_path_factory.mktemp("kept")
    run_pipeline(config.load(_pipe(d)), output=str(d / "run"), quiet=True)
    return d / "run"


def test_average_command_last_n_is_the_trainers_average_and_scores_as_it_did(kept, cli, tmp_path):
    out = tmp_path / "last3"
    code, stdout, err = cli("average", kept, "-o", out, "--last", "3")
    assert code == 0, err
    assert _equal(out / "model.safetensors", kept / "average.safetensors")  # what training averaged
    s = json.loads((out / "summary.json").read_text())
    trained = json.loads((kept / "summary.json").read_text())["average"]
    assert s["average"] == {"from": str(kept), "epochs": [3, 4, 5], "of": "last"}
    assert s["valid"]["accuracy"] == trained["average"]  # scored on valid as the trainer scored it
    assert f"wrote {out}: the mean of epochs 3, 4, 5 of {kept}; valid" in stdout
    assert not (out / "epochs").exists() and not (out / "last.pt").exists()
    again = textrnn.load(out)  # a run of its own: its manifest holds, it predicts
    assert again.predict_proba(["a fine film"]).shape == (1, 2)


def test_average_command_one_epoch_is_that_epochs_model_and_an_ensemble_member(kept, cli, tmp_path):
    out = tmp_path / "e4"
    code, _, err = cli("average", kept, "-o", out, "--epochs", "4", "--no-score")
    assert code == 0, err
    assert _equal(out / "model.safetensors", rundir.epoch_weights(kept, 4))
    assert "valid" not in json.loads((out / "summary.json").read_text())
    pair = textrnn.ensemble([kept, out])
    texts = ["a fine film", "dull"]
    want = (textrnn.load(kept).predict_proba(texts) + textrnn.load(out).predict_proba(texts)) / 2
    assert pair.predict_proba(texts) == pytest.approx(want, abs=1e-6)


def test_average_command_best_n_follows_the_selection_metric_and_last_n_the_order(kept, cli, tmp_path):
    history = [h for h in rundir.read_metrics(kept) if h["epoch"] in (3, 4, 5)]
    best = rundir.best_epochs([(h["accuracy"], h["epoch"]) for h in history], 2, True)
    for option, want in [("--best", best), ("--last", [4, 5])]:
        out = tmp_path / option[2:]
        code, _, err = cli("average", kept, "-o", out, option, "2", "--no-score")
        assert code == 0, err
        assert json.loads((out / "summary.json").read_text())["average"]["epochs"] == want
        rundir.average_weights([rundir.epoch_weights(kept, k) for k in want], tmp_path / "again.safetensors")
        assert _equal(out / "model.safetensors", tmp_path / "again.safetensors")


def test_average_from_python_is_the_command(kept, tmp_path):
    entry = textrnn.average(kept, tmp_path / "api", epochs=[5, 3])
    assert entry["epochs"] == [3, 5] and entry["of"] == "given" and 0.0 <= entry["valid"]["accuracy"] <= 1.0
    rundir.average_weights([rundir.epoch_weights(kept, k) for k in (3, 5)], tmp_path / "again.safetensors")
    assert _equal(tmp_path / "api" / "model.safetensors", tmp_path / "again.safetensors")
    with pytest.raises(UserError, match="give exactly one of"):
        textrnn.average(kept, tmp_path / "none")


def test_best_epochs_ties_go_to_the_earlier_epoch():
    scored = [(0.5, 1), (0.8, 2), (0.7, 3), (0.8, 4)]
    assert rundir.best_epochs(scored, 2, True) == [2, 4] and rundir.best_epochs(scored, 1, True) == [2]
    assert rundir.best_epochs(scored, 2, False) == [1, 3]


def test_average_command_refuses_bad_input_in_one_line_and_writes_nothing(kept, runs, cli, tmp_path):
    from test_bad_input import one_line_exit_2

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    for args, msg in [
        ((kept, "-o", tmp_path / "n"), "give exactly one of --epochs 3,5, --best N or --last N"),
        ((kept, "-o", tmp_path / "n", "--last", "2", "--best", "2"), "give exactly one of"),
        ((kept, "-o", tmp_path / "n", "--epochs", "2"), "epoch 2 is not kept in"),
        ((kept, "-o", tmp_path / "n", "--epochs", "3,x"), "--epochs 3,x: epoch numbers separated by commas"),
        ((kept, "-o", tmp_path / "n", "--best", "4"), "--best 4: "),
        ((kept, "-o", tmp_path / "n", "--last", "0"), "--last 0: "),
        ((runs["classify"].path, "-o", tmp_path / "n", "--last", "1"), "no epoch weights kept"),
        ((tmp_path / "nope", "-o", tmp_path / "n", "--last", "1"), "no such run directory"),
        ((kept, "-o", full, "--last", "1"), "exists and is not empty (give --overwrite"),
        ((kept, "-o", kept.parent, "--last", "1", "--overwrite"), "--overwrite would delete it"),
    ]:
        one_line_exit_2(*cli("average", *args)[::2], msg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"] and (full / "x").is_file()


def test_average_command_is_all_or_nothing(kept, cli, tmp_path, monkeypatch):
    """A failure while scoring leaves neither OUT nor its hidden folder; an old OUT stays as it was."""
    import textrnn.inference

    def broken(*a, **k):
        raise UserError("no valid data here")

    monkeypatch.setattr(textrnn.inference, "load", broken)
    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("x")
    for out, extra in [(tmp_path / "new", ()), (old, ("--overwrite",))]:
        code, _, err = cli("average", kept, "-o", out, "--last", "2", *extra)
        assert code == 2 and "no valid data here" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"] and [p.name for p in old.iterdir()] == ["keep.txt"]


def test_a_translation_average_is_weighed_as_the_finished_model_decodes(tmp_path, cli):
    """Each epoch scores greedily, but the average and the best epoch are both scored with generate:'s
    beam, as `evaluate` and `translate` decode the model kept; the end of the run says so."""
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "t.yaml",
        "name: t\ntask: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        "model: {embedding: {dim: 16}, encoder: {hidden: 16}, decoder: {hidden: 32}}\n"
        "generate: {beam: 3, max_extra: 4}\n"
        "train: {epochs: 6, average_last: 3, batch_tokens: 60, threads: 1, patience: 50, checkpoint_every: 0}\n",
    )
    run = tmp_path / "run"
    code, _, err = cli("run", p, "-o", run)
    assert code == 0, err
    a = json.loads((run / "summary.json").read_text())["average"]
    assert a["beam"] == 3 and a["metric"] == "bleu" and "(beam 3); the model is" in err
    kept = textrnn.load(run, device="cpu").evaluate(split="valid")
    assert kept["beam"] == 3
    assert kept["bleu"] == pytest.approx(a["average"] if a["kept"] == "average" else a["best"], abs=1e-9)
    assert kept["bleu"] == pytest.approx(max(a["average"], a["best"]), abs=1e-9)
