"""train.adversarial: each step also trains on the batch moved ε ‖e‖ along the loss's gradient with
respect to the embedded tokens (Miyato et al. 2017)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import textrnn
from textrnn import config
from textrnn.data.sources import Examples
from textrnn.tasks.base import build_task
from textrnn.training.adversarial import Perturbation
from textrnn.training.step import Step

from helpers import ROOT, write, write_tiny_data

TEXTS = ["a fine warm film", "a dull cold film", "warm and fine", "cold and dull", "fine"] * 2
NO_DROPOUT = [
    "model.embedding.dim=12",
    "model.encoder.hidden=10",
    "model.embedding.dropout=0",
    "model.encoder.dropout=0",
    "model.head.dropout=0",
    "tokenizer.kind=whitespace",
    "train.precision=fp32",
]


def task_and_batch(*extra):
    torch.manual_seed(0)
    cfg = config.load(ROOT / "tests/data/sentiment.yaml", NO_DROPOUT + list(extra))
    task = build_task(cfg)
    ex = Examples(TEXTS, ["pos", "neg", "pos", "neg", "pos"] * 2, "mem")
    task.prepare({"train": ex, "valid": ex}, ROOT, resume=False)
    batch = task.collate("train", list(range(len(TEXTS))), torch.device("cpu"))  # sentences of 1-4 tokens
    return cfg, task, batch


def moved_by_hand(model, batch, eps):
    """The embedded batch e [B, T, E] and e + ε ‖e‖ g / ‖g‖ per sentence, g = dL/de, computed directly."""
    e = model.embed.emb(batch["ids"]).detach().requires_grad_(True)
    pooled, _ = model.pooled(e, batch["lengths"])
    F.cross_entropy(model.head(pooled), batch["y"]).backward()
    g = e.grad
    r = eps * e.detach().flatten(1).norm(dim=1)[:, None, None] * g / g.flatten(1).norm(dim=1)[:, None, None]
    return e.detach(), e.detach() + r


@pytest.mark.parametrize("frozen", [False, True])
def test_the_move_has_the_declared_size_and_raises_the_loss(frozen):
    """Also with the embedding frozen (train.unfreeze's first epochs, embedding.freeze)."""
    _, task, batch = task_and_batch()
    model = task.build_model()
    model.embed.emb.weight.requires_grad_(not frozen)
    p = Perturbation(model, 0.05)
    p.capture()
    task.loss(model, batch)[0].backward()
    p.apply()
    moved = model(batch["ids"], batch["lengths"])  # the hook adds the move
    p.off()
    e, by_hand = moved_by_hand(copy.deepcopy(model), batch, 0.05)
    r = by_hand - e
    assert torch.allclose(r.flatten(1).norm(dim=1), 0.05 * e.flatten(1).norm(dim=1), rtol=1e-5)
    pooled, _ = model.pooled(by_hand, batch["lengths"])
    assert torch.allclose(moved, model.head(pooled), atol=1e-6)  # the hook's move is the one by hand
    plain = F.cross_entropy(model(batch["ids"], batch["lengths"]), batch["y"])  # off: unchanged again
    assert F.cross_entropy(moved, batch["y"]) > plain  # along the gradient the loss rises


def test_a_step_trains_on_the_batch_and_on_the_moved_batch():
    """One SGD step equals a step on the gradient of L(e) + L(e + r), r computed by hand (a constant)."""
    cfg, task, batch = task_and_batch("train.optimizer.name=sgd", "train.optimizer.lr=0.5", "train.adversarial=0.1")
    model = task.build_model()
    by_hand = copy.deepcopy(model)
    step = Step.build(model, task.loss, cfg.train, torch.device("cpu"))
    assert step.perturb is not None
    loss, _ = step(batch)

    e, moved = moved_by_hand(copy.deepcopy(by_hand), batch, 0.1)
    plain = task.loss(by_hand, batch)[0]
    pooled, _ = by_hand.pooled(by_hand.embed.emb(batch["ids"]) + (moved - e), batch["lengths"])
    (plain + F.cross_entropy(by_hand.head(pooled), batch["y"])).backward()
    with torch.no_grad():
        for p in by_hand.parameters():
            p -= 0.5 * p.grad
    for (name, a), b in zip(model.named_parameters(), by_hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert torch.allclose(loss, plain.detach())  # the step reports the batch's own loss


def test_a_pipeline_trains_adversarially_and_the_model_loads_without_the_hook(tmp_path, cli):
    write_tiny_data(tmp_path)
    body = (
        "task: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\nmodel: {embedding: {dim: 16}, encoder: {hidden: 16}}\n"
        "train: {epochs: 2, batch_tokens: 60, threads: 1, checkpoint_every: 0, seed: 3%s}\n"
    )
    plain = write(tmp_path / "plain.yaml", "name: p\n" + body % "")
    adv = write(tmp_path / "adv.yaml", "name: a\n" + body % ", adversarial: 0.05")
    for p, out in ((plain, "p"), (adv, "a")):
        code, _, err = cli("run", p, "-o", tmp_path / out)
        assert code == 0, err
    a, p = textrnn.load(tmp_path / "a", device="cpu"), textrnn.load(tmp_path / "p", device="cpu")
    text = ["a fine warm film"]
    assert a.predict(text) == a.predict(text)
    assert not np.allclose(a.predict_proba(text), p.predict_proba(text))  # the moved batches changed the model


def test_adversarial_training_is_refused_outside_classify(tmp_path, cli):
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "lm.yaml",
        "name: l\ntask: lm\ndata: {train: {path: lm.txt}, valid: {path: lm.txt}}\ntokenizer: {kind: whitespace}\n"
        "train: {epochs: 1, batch_size: 2, adversarial: 0.05}\n",
    )
    code, _, err = cli("run", p, "-o", tmp_path / "out")
    assert code == 2 and "train.adversarial: only a classify pipeline" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("eps", ["0", "1.5", "-0.1"])
def test_the_size_is_a_fraction_above_zero(eps, tmp_path, cli):
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "c.yaml",
        "name: c\ndata: {train: {path: sent.tsv}}\ntokenizer: {kind: whitespace}\n"
        f"train: {{epochs: 1, batch_tokens: 60, adversarial: {eps}}}\n",
    )
    code, _, err = cli("run", p, "-o", tmp_path / "out")
    assert code == 2 and "train.adversarial" in err and len(err.strip().splitlines()) == 1
