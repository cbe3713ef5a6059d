"""The training step every trainer and benchmark runs, and the state that last.pt keeps."""

import copy

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from textrnn import config, rundir
from textrnn.training.step import Step, make_optimizer
from textrnn.training.trainer import TrainState, run_pipeline

from helpers import NEG, PAIRS, POS, TINY_TRAIN, cut_at, write, write_tiny_data

STATE_KEYS = {  # what last.pt has stored at its top level since the epoch_* keys came: old files must load
    "epoch",
    "step_in_epoch",
    "global_step",
    "best",
    "best_epoch",
    "bad_epochs",
    "history",
    "step_seconds",
    "tokens",
    "wall_seconds",
    "epoch_loss",
    "epoch_tokens",
    "epoch_seconds",
}


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(11, 4), nn.Flatten(), nn.Linear(12, 3))


def loss_fn(model, b):
    return nn.functional.cross_entropy(model(b["x"]), b["y"]), int(b["x"].numel())


def batch(k):
    g = torch.Generator().manual_seed(k)
    return {"x": torch.randint(0, 11, (5, 3), generator=g), "y": torch.randint(0, 3, (5,), generator=g)}


def train_cfg(**kw):
    """fp32 unless a test asks otherwise (pinned, whatever auto picks on this CPU)."""
    return config.Train(optimizer={"name": "adam", "lr": 0.05}, **({"precision": "fp32"} | kw))


def test_the_step_is_forward_backward_clip_optimizer_schedule():
    t = train_cfg(clip=0.1, schedule={"kind": "linear", "warmup_steps": 2})
    step = Step.build(tiny(), loss_fn, t, torch.device("cpu"), total_steps=6)
    by_hand = tiny()
    opt = make_optimizer(by_hand.parameters(), t.optimizer)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 2 if s < 2 else (6 - s) / 4)
    for k in range(4):
        loss, n = step(batch(k))
        ref, _ = loss_fn(by_hand, batch(k))
        opt.zero_grad()
        ref.backward()
        torch.nn.utils.clip_grad_norm_(by_hand.parameters(), 0.1)
        opt.step()
        sched.step()
        assert torch.equal(loss, ref.detach()) and n == 15 and not loss.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(step.model.parameters(), by_hand.parameters()))
    assert step.opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.05 * 2 / 4


def test_a_plateau_schedule_is_left_to_the_caller_and_the_step_state_round_trips():
    t = train_cfg(schedule={"kind": "plateau", "factor": 0.5, "patience": 0})
    step = Step.build(tiny(), loss_fn, t, torch.device("cpu"))
    for k in range(3):
        step(batch(k))
    assert step.opt.param_groups[0]["lr"] == 0.05 and not step.per_batch  # stepped per epoch, by the trainer
    saved = copy.deepcopy(step.state_dict())  # as torch.save and load would give it back
    assert set(saved) == {"optim", "sched", "scaler"} and saved["scaler"] is None  # float32: no scaler
    again = Step.build(tiny(), loss_fn, t, torch.device("cpu"))
    again.model.load_state_dict(step.model.state_dict())
    again.load_state_dict(saved)
    a, b = step(batch(9)), again(batch(9))
    assert torch.equal(a[0], b[0])
    assert all(torch.equal(p, q) for p, q in zip(step.model.parameters(), again.model.parameters()))


def test_train_state_round_trips_and_old_checkpoints_keep_the_defaults():
    st = TrainState()
    st.add_step(0, 2.0, 10, 0.5)
    st.add_step(1, 1.0, 6, 0.25)
    assert (st.global_step, st.step_in_epoch, st.tokens, st.epoch_tokens) == (2, 2, 16, 16)
    assert st.epoch_loss == 0.98 * 2.0 + 0.02 * 1.0 and st.step_seconds == st.epoch_seconds == 0.75
    assert set(st.state_dict()) == STATE_KEYS
    again = TrainState()
    again.load_state_dict(dict(st.state_dict(), model={}, optim={}))  # last.pt: state keys beside the others
    assert again == st
    old = {k: v for k, v in st.state_dict().items() if not k.startswith("epoch_")}  # before the epoch_* keys
    again = TrainState()
    again.load_state_dict(old)
    assert again.global_step == 2 and (again.epoch_loss, again.epoch_tokens, again.epoch_seconds) == (None, 0, 0.0)
    again.new_epoch()
    assert again.epoch_loss is None and again.tokens == 16


def test_last_pt_keeps_its_flat_layout(tmp_path):
    write(tmp_path / "d.tsv", "text\tlabel\n" + "good fun\tpos\nbad mess\tneg\n" * 6)
    p = write(
        tmp_path / "p.yaml",
        "name: t\ndata: {train: {path: d.tsv}, valid: {path: d.tsv}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 4}, encoder: {hidden: 4}}\n"
        "train: {epochs: 1, batch_tokens: 20, checkpoint_every: 0, threads: 1}\n",
    )
    run, summary = run_pipeline(config.load(p), output=str(tmp_path / "run"), quiet=True)
    ck = rundir.load_torch(run / "last.pt")
    assert set(ck) == STATE_KEYS | {"model", "optim", "sched", "scaler", "torch_rng", "task", "cuda_rng"}
    assert ck["global_step"] == summary["steps"] and ck["epoch"] == 1 and len(ck["history"]) == 1


@pytest.mark.parametrize("task", ["classify", "translate"])
def test_a_frozen_pretrained_embedding_stays_frozen_after_a_resume(tmp_path, task):
    """model.embedding.freeze held on a fresh start only used to let a resumed run train the vectors."""
    write_tiny_data(tmp_path)
    words = {w for line in POS + NEG + [s for s, _ in PAIRS] for w in line.lower().split()}
    write(tmp_path / "v.txt", "".join(f"{w} " + " ".join(["0.5"] * 8) + "\n" for w in sorted(words)))
    data = (
        "data: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        if task == "classify"
        else "task: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
    )
    p = write(
        tmp_path / "p.yaml",
        f"name: frozen\n{data}model: {{embedding: {{dim: 8, pretrained: {tmp_path / 'v.txt'}, freeze: true}}}}\n"
        + TINY_TRAIN.replace("checkpoint_every: 0", "checkpoint_every: 2") % 2,
    )
    cfg = config.load(p)
    run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)
    cut_at(cfg, tmp_path / "cut", 3, quiet=True)
    run_pipeline(cfg, output=str(tmp_path / "cut"), resume=True, quiet=True)
    name = "embed.emb.weight" if task == "classify" else "src_embed.emb.weight"
    whole, cut = (load_file(str(tmp_path / r / "model.safetensors"))[name] for r in ("whole", "cut"))
    assert torch.equal(cut, whole)
