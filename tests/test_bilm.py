"""Bidirectional language models (ELMo-style): the backward LM reads right to left, metrics per direction, resume."""

import gzip
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import textrnn
from textrnn import config
from textrnn.data.sources import Examples
from textrnn.tasks.base import build_task
from textrnn.tools import flops, probe
from textrnn.training.trainer import run_pipeline

from helpers import LM_TEXTS, ROOT, TINY_TRAIN, cut_at, write

TINY = [
    "tokenizer.kind=whitespace",
    "model.embedding.dim=16",
    "model.hidden=24",
    "model.layers=1",
    "model.embedding.dropout=0",
    "model.output_dropout=0",
    "train.checkpoint_every=0",
    "train.batch_tokens=300",
    "model.eval_batch=1",
    "model.tie_weights=false",
]
TEXTS = LM_TEXTS[:7]  # each sentence once
BI_KEYS = {"perplexity_fwd", "perplexity_bwd", "loss_fwd", "loss_bwd"}


pytestmark = pytest.mark.usefixtures("one_thread")


def task_on(*extra, texts=TEXTS, seed=0):
    """A prepared LM task on in-memory texts (train = valid) and a fresh model, in eval mode."""
    task = build_task(config.load(ROOT / "tests/data/lm.yaml", TINY + list(extra)))
    ex = Examples(list(texts), None, "mem")
    task.prepare({"train": ex, "valid": ex}, ROOT, resume=False)
    torch.manual_seed(seed)
    return task, task.build_model().eval()


def nll(model, x: list[int], y: list[int]) -> tuple[float, int]:
    """Summed NLL of y given x through the forward direction alone, one sequence, no padding."""
    with torch.no_grad():
        scores = model(torch.tensor([x]))[0][0].float()  # [T, V]
    lp = scores if model.asm is not None else scores.log_softmax(-1)
    return float(F.nll_loss(lp, torch.tensor(y), reduction="sum")), len(y)


# ---------------------------------------------------------------- the backward LM reads right to left


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_backward_lm_reads_the_reversed_text(mode):
    """rnn_bw given rnn's weights: its perplexity is the forward LM's on the text reversed (token
    by token, <eos> / <bos> in place); changing rnn then moves only the forward figure."""
    task, model = task_on(
        f"model.mode={mode}",
        "model.bidirectional=true",
        "model.bptt=3",
        "model.softmax=adaptive",
        "model.cutoffs=[6,12]",
    )
    model.rnn_bw.load_state_dict(model.rnn.state_dict())
    got = task.evaluate(model, "valid", "cpu")
    v = task.vocab
    if mode == "stream":
        s = task.streams["valid"].tolist()  # <eos> line1 <eos> line2 <eos> ...
        fwd, n = nll(model, s[:-1], s[1:])
        r = s[::-1]  # <eos> lineN reversed <eos> ... line1 reversed <eos>
        bwd, _ = nll(model, r[:-1], r[1:])
    else:
        fwd = bwd = n = 0
        for a in task.data["valid"]:
            a = a.tolist()
            f, k = nll(model, [v.bos, *a], [*a, v.eos])
            b, _ = nll(model, [v.bos, *a[::-1]], [*a[::-1], v.eos])
            fwd, bwd, n = fwd + f, bwd + b, n + k
    assert got["tokens"] == n
    assert got["perplexity_fwd"] == pytest.approx(math.exp(fwd / n), rel=1e-5)
    assert got["perplexity_bwd"] == pytest.approx(math.exp(bwd / n), rel=1e-5)
    assert got["perplexity_fwd"] != pytest.approx(got["perplexity_bwd"], rel=1e-3)  # not a palindrome
    assert got["loss"] == pytest.approx((fwd + bwd) / (2 * n), rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.sqrt(got["perplexity_fwd"] * got["perplexity_bwd"]), rel=1e-6)
    with torch.no_grad():
        model.rnn.weight_hh_l0.add_(0.5)
    moved = task.evaluate(model, "valid", "cpu")
    assert moved["perplexity_bwd"] == pytest.approx(got["perplexity_bwd"], rel=1e-6)
    assert moved["perplexity_fwd"] != pytest.approx(got["perplexity_fwd"], rel=1e-3)


def test_forward_half_is_the_unidirectional_model_and_names_are_kept():
    """Same seed: the forward half starts as the unidirectional model; rnn_bw mirrors rnn's weight names
    (the transfer to a classifier's BiLSTM reads embed.emb.weight, rnn.* and rnn_bw.*)."""
    uni_task, uni = task_on("model.layers=2", "model.mode=stream")
    bi_task, bi = task_on("model.layers=2", "model.mode=stream", "model.bidirectional=true")
    sd_uni, sd_bi = uni.state_dict(), bi.state_dict()
    assert all(torch.equal(sd_uni[k], sd_bi[k]) for k in sd_uni)
    extra = sorted(set(sd_bi) - set(sd_uni))
    assert extra == sorted("rnn_bw." + k[len("rnn.") :] for k in sd_uni if k.startswith("rnn."))
    assert {"embed.emb.weight", "rnn.weight_ih_l1", "rnn_bw.weight_ih_l0", "rnn_bw.weight_hh_l1"} <= set(sd_bi)
    assert sd_bi["rnn_bw.weight_ih_l0"].shape == sd_bi["rnn.weight_ih_l0"].shape == (4 * 24, 16)
    u, b = uni_task.evaluate(uni, "valid", "cpu"), bi_task.evaluate(bi, "valid", "cpu")
    assert b["perplexity_fwd"] == pytest.approx(u["perplexity"], rel=1e-6)


def test_unidirectional_metrics_and_batches_unchanged():
    task, model = task_on("model.mode=stream", "model.bptt=3", "train.batch_size=2")
    assert list(task.evaluate(model, "valid", "cpu")) == ["loss", "perplexity", "bits_per_token", "tokens"]
    b = task.collate("train", [0], "cpu")
    assert set(b) == {"x", "y", "lengths", "reset", "tokens"} and model.rnn_bw is None
    model.train()
    task.loss(model, b)
    assert set(task.train_state()) == {"hidden"}


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_training_loss_is_the_mean_of_the_directions_and_states_carry(mode):
    task, model = task_on(
        f"model.mode={mode}",
        "model.bidirectional=true",
        "model.bptt=4",
        "train.batch_size=2",
        "train.batch_tokens=null",
    )
    model.train()  # no dropout in TINY: train mode is deterministic
    b0, b1 = (task.collate("train", idx, "cpu") for idx in task.batches("train", shuffle=False)[:2])
    assert b0["x_bw"].shape == b0["x"].shape and int((b0["y_bw"] != task.vocab.pad).sum()) == b0["tokens"]
    loss, ntok = task.loss(model, b0)
    with torch.no_grad():
        (h, h_bw), _ = model(b0["x"], None, b0["lengths"], features=True, ids_bw=b0["x_bw"])
        pad = task.vocab.pad
        want = 0.5 * (model.nll(h, b0["y"], pad, "mean") + model.nll(h_bw, b0["y_bw"], pad, "mean"))
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-6) and ntok == b0["tokens"]
    if mode == "sentences":
        assert task.train_state() == {}
        return
    carried = task._state_bw
    assert carried is not None and all(not s.requires_grad for s in carried)
    saved = task.train_state()
    assert set(saved) == {"hidden", "hidden_bw"}
    task.loss(model, b1)[0].backward()  # window 0's graph is cut: a second backward would fail otherwise
    task.load_train_state(saved, "cpu")
    assert all(torch.equal(a, c) for a, c in zip(task._state_bw, carried))


def test_inspect_and_flops_cover_both_directions():
    task, model = task_on("model.mode=stream", "model.bidirectional=true", "model.layers=2")
    ids = torch.tensor(task.vocab.encode("the cat sat on the mat".split()))
    recs = probe.layers(model, task, ids)
    assert [(r["layer"], r["direction"]) for r in recs] == [
        (1, "forward"),
        (2, "forward"),
        (1, "backward"),
        (2, "backward"),
    ]
    assert recs[1]["max_abs_diff"] < 1e-5 and recs[3]["max_abs_diff"] < 1e-5
    with torch.no_grad():  # the backward records are in token order: the last token's state read it first
        out_bw, _ = model.rnn_bw(model.embed(ids.flip(0)[None]))
    assert torch.allclose(recs[3]["h"][0], out_bw[0, -1], atol=1e-5)
    counted = {}
    for bi in ("false", "true"):
        t, m = task_on("model.mode=stream", f"model.bidirectional={bi}", "model.bptt=4", "train.batch_size=2")
        rec = flops.Recorder(m)
        t.loss(m, t.collate("train", [0], "cpu"))
        rec.close()
        counted[bi] = rec.forward_flops()
    assert counted["true"] == 2 * counted["false"]  # both stacks and the softmax twice


# ---------------------------------------------------------------- runs: train, load, resume


def pipeline(d, mode: str, epochs: int = 6, extra: str = ""):
    write(d / "lm.txt", "\n".join(LM_TEXTS) + "\n")
    return write(
        d / "bilm.yaml",
        "name: bilm\ntask: lm\ndata: {train: {path: lm.txt}, valid: {path: lm.txt, limit: 14}, "
        "test: {path: lm.txt, limit: 7}}\ntokenizer: {kind: whitespace}\n"
        f"model: {{embedding: {{dim: 16}}, hidden: 24, layers: 1, bptt: 6, eval_batch: 2, mode: {mode}, "
        f"bidirectional: true{extra}}}\n" + TINY_TRAIN % epochs,
    )


def test_train_save_load_complete_perplexity(tmp_path, cli):
    _, summary = run_pipeline(
        config.load(pipeline(tmp_path, "sentences", epochs=3)), output=str(tmp_path / "r"), quiet=True
    )
    assert BI_KEYS <= set(summary["valid"]) and BI_KEYS <= set(summary["test"])
    assert summary["test"]["perplexity_fwd"] < 15 and summary["test"]["perplexity_bwd"] < 15
    lm = textrnn.load(tmp_path / "r")
    texts = LM_TEXTS[:3]
    m = lm.evaluate({"path": str(write(tmp_path / "three.txt", "\n".join(texts) + "\n"))})
    assert lm.perplexity(texts) == pytest.approx(m["perplexity_fwd"], rel=1e-6)  # the forward direction's
    words = [w for w, _ in lm.complete("I'll be there in", k=3)]
    assert len(words) == 3 and set(words) & {"five", "ten"}
    assert lm.generate("the cat", max_tokens=5, seed=1)[0].startswith("the cat")
    code, out, err = cli("evaluate", tmp_path / "r")
    assert code == 0 and BI_KEYS <= set(json.loads(out)), err


def test_export_writes_the_forward_lm(tmp_path):
    pytest.importorskip("onnxruntime")
    from textrnn.export import export

    run_pipeline(config.load(pipeline(tmp_path, "stream", epochs=1)), output=str(tmp_path / "r"), quiet=True)
    sig = export(tmp_path / "r", tmp_path / "x")  # checked against the model's forward direction
    assert "forward (left-to-right) LM of a bidirectional run" in sig["usage"]


def test_bidirectional_stream_resume_is_exact(tmp_path):
    """Both directions' hidden states carried between BPTT windows are in the checkpoint."""
    p = pipeline(tmp_path, "stream", epochs=2)
    cfg = config.load(p, ["train.batch_tokens=null", "train.batch_size=2", "train.checkpoint_every=3"])
    _, whole = run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)

    cut_at(
        cfg, tmp_path / "cut", 7, quiet=True
    )  # mid-epoch 1; the last checkpoint (step 6) holds the states after window 6
    ck = torch.load(tmp_path / "cut" / "last.pt", weights_only=False)
    assert set(ck["task"]) == {"hidden", "hidden_bw"}
    _, resumed = run_pipeline(cfg, output=str(tmp_path / "cut"), resume=True, quiet=True)
    assert resumed["valid"] == whole["valid"]


@pytest.mark.parametrize("mode,streaming", [("stream", False), ("sentences", True)])
def test_reads_unlabelled_text_from_several_jsonl_files(tmp_path, mode, streaming):
    """The text field of several jsonl.gz files (other fields unread), read whole or streamed (sentences mode)."""
    for i in range(2):
        with gzip.open(tmp_path / f"part{i}.jsonl.gz", "wt") as f:
            f.write("".join(json.dumps({"id": k, "text": t, "label": 1}) + "\n" for k, t in enumerate(LM_TEXTS[i::2])))
    p = pipeline(tmp_path, mode, epochs=1)
    over = {"data.train": {"path": ["part0.jsonl.gz", "part1.jsonl.gz"], "streaming": streaming}}
    cfg = config.load(p, values=over, cwd=tmp_path)
    train = build_task(cfg).read_splits()["train"]
    texts, labels = next(train.chunks(100, None)) if streaming else (train.texts, train.labels)
    assert texts == LM_TEXTS[0::2] + LM_TEXTS[1::2] and labels is None
    _, summary = run_pipeline(cfg, output=str(tmp_path / "r"), quiet=True)
    assert BI_KEYS <= set(summary["valid"])


# ---------------------------------------------------------------- pipelines/imdb-lm.yaml


def test_imdb_lm_carves_the_classifiers_valid_reviews(tmp_path, monkeypatch):
    """imdb-lm.yaml reads imdb.yaml's train file and carves the same valid reviews (its labels unread),
    and never the test file."""
    d = tmp_path / "sentiment" / "imdb"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [{"text": f"review {i} " + "good " * int(rng.integers(1, 5)), "label": i % 2} for i in range(80)]
    rows[5]["text"] = "  "  # an empty review: skipped by both, before the carve
    for path, part in ((d / "train.jsonl.gz", rows), (tmp_path / "heldout/sentiment/imdb/test.jsonl.gz", rows[:9])):
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.write("".join(json.dumps(r) + "\n" for r in part))
    monkeypatch.setenv("TEXTRNN_CORPORA", str(tmp_path))
    monkeypatch.setenv("TEXTRNN_HELDOUT", str(tmp_path / "heldout"))
    lm, clf = config.load(ROOT / "pipelines/imdb-lm.yaml"), config.load(ROOT / "pipelines/imdb.yaml")
    assert lm.model.bidirectional and lm.data.test is None and lm.data.valid is None
    assert lm.data.train == clf.data.train and lm.train.seed == clf.train.seed
    a, b = build_task(lm).read_splits(), build_task(clf).read_splits()
    assert "test" not in a and a["train"].labels is None
    assert a["valid"].texts == b["valid"].texts and a["train"].texts == b["train"].texts
    assert len(a["valid"]) == 7 and not set(a["valid"].texts) & set(a["train"].texts)
    keep = {"max_length"}  # the LM reads whole reviews; every other tokenizer setting is the classifier's
    assert lm.tokenizer.model_dump(exclude=keep) == clf.tokenizer.model_dump(exclude=keep)
