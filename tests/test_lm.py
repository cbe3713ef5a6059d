"""Language modelling: stream batching, BPTT state, tied weights, exact perplexity, sampling, CLI round trip."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textrnn import config, rundir
from textrnn.data.sources import Examples
from textrnn.decoding import generation, sampling
from textrnn.tasks.base import build_task
from textrnn.tasks.lm import columns
from textrnn.training.trainer import run_pipeline

from helpers import LM_TEXTS, ROOT, write

TINY = [
    "model.embedding.dim=16",
    "model.hidden=24",
    "model.embedding.dropout=0",
    "model.output_dropout=0",
    "train.epochs=2",
    "train.checkpoint_every=0",
    "train.batch_tokens=300",
    "train.optimizer.lr=0.01",
]
FIT = ["data.train.limit=1000", "train.epochs=3"]


pytestmark = pytest.mark.usefixtures("one_thread")


TEXTS = LM_TEXTS[: 7 * 3]  # the seven sentences three times


def lm_cfg(*extra):
    return config.load(ROOT / "tests/data/lm.yaml", TINY + list(extra))


def task_on(texts, *extra, seed=0):
    """A prepared LM task on in-memory texts (train = valid = test) and a fresh model."""
    torch.manual_seed(seed)
    task = build_task(lm_cfg("tokenizer.kind=whitespace", *extra))
    ex = Examples(list(texts), None, "mem")
    task.prepare({"train": ex, "valid": ex, "test": ex}, ROOT, resume=False)
    return task, task.build_model()


# ---------------------------------------------------------------- stream batching


def test_columns_cover_every_target_once():
    stream = np.arange(1, 104)  # 102 targets after the first context token
    for B in (1, 4, 7, 102, 150):
        X, Y = columns(stream, B, pad=0)
        assert X.shape == Y.shape and X.shape[0] == B
        assert Y.flatten()[Y.flatten() != 0].tolist() == stream[1:].tolist()
        assert np.array_equal(X.flatten()[: len(stream) - 1], stream[:-1])


def test_stream_epoch_covers_every_token_exactly_once():
    task, _ = task_on(TEXTS, "model.mode=stream", "model.bptt=4", "train.batch_size=3")
    s = task.streams["train"]
    assert s[0] == task.vocab.eos and (s == task.vocab.eos).sum() == len(TEXTS) + 1  # one per line + first context
    order = task.batches("train", shuffle=True, seed=5)
    assert order == task.batches("train", shuffle=False)  # windows stay in order: the state runs through them
    per_column = [[] for _ in range(3)]
    n = 0
    for idx in order:
        b = task.collate("train", idx, "cpu")
        assert b["x"].shape[0] == 3 and b["x"].shape[1] <= 4 and b["reset"] == (idx == [0])
        for c in range(3):
            per_column[c] += [t for t in b["y"][c].tolist() if t != task.vocab.pad]
        n += b["tokens"]
    assert sum(per_column, []) == s[1:].tolist() and n == len(s) - 1
    assert sum(task.lengths("train")) == n


def test_hidden_state_carried_and_detached():
    task, model = task_on(TEXTS, "model.mode=stream", "model.bptt=5", "train.batch_size=2")
    model.train()  # no dropout in TINY: train mode is deterministic
    b0, b1 = task.collate("train", [0], "cpu"), task.collate("train", [1], "cpu")
    loss0, _ = task.loss(model, b0)
    carried = task._state
    assert carried is not None and all(s.grad_fn is None and not s.requires_grad for s in carried)
    loss1, _ = task.loss(model, b1)
    loss1.backward()  # would fail ("backward through the graph a second time") if window 0 were still attached
    # the carried state equals reading both windows in one pass
    with torch.no_grad():
        joint, _ = model(torch.cat([b0["x"], b1["x"]], 1))
        split1, _ = model(b1["x"], carried)
        fresh, _ = model(b1["x"])
    T0 = b0["x"].shape[1]
    assert torch.allclose(joint[:, T0:], split1, atol=1e-5)
    assert not torch.allclose(fresh, split1, atol=1e-3)
    task.loss(model, b0)  # window 0 starts a new epoch: the state is reset
    with torch.no_grad():
        assert torch.allclose(model(b0["x"])[1][0], task._state[0], atol=1e-6)


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("hidden", [16, 24])
def test_tied_weights_share_storage(hidden):
    task, model = task_on(TEXTS, "model.tie_weights=true", f"model.hidden={hidden}")
    assert model.out.weight is model.embed.emb.weight
    assert model.out.weight.data_ptr() == model.embed.emb.weight.data_ptr()
    assert (model.proj is None) == (hidden == 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    task.loss(model, task.collate("train", task.batches("train", False)[0], "cpu"))[0].backward()
    opt.step()
    assert torch.equal(model.out.weight, model.embed.emb.weight)
    n_shared = sum(p.numel() for p in model.parameters())
    _, untied = task_on(TEXTS, "model.tie_weights=false", f"model.hidden={hidden}")
    assert n_shared < sum(p.numel() for p in untied.parameters())


def test_stream_perplexity_equals_independent_recomputation():
    task, model = task_on(TEXTS, "model.mode=stream", "model.bptt=3", "model.eval_batch=1")
    got = task.evaluate(model, "valid", "cpu")
    s = torch.as_tensor(task.streams["valid"])
    with torch.no_grad():  # one pass over the whole stream, no windows, no padding
        logits, _ = model(s[None, :-1])
        nll = F.cross_entropy(logits[0], s[1:], reduction="mean")
    n_tokens = sum(len(t.split()) for t in TEXTS) + len(TEXTS)  # whitespace-separable sample: words + one <eos> each
    assert got["tokens"] == len(s) - 1 >= n_tokens
    assert got["perplexity"] == pytest.approx(math.exp(float(nll)), rel=1e-5)
    assert got["bits_per_token"] == pytest.approx(float(nll) / math.log(2), rel=1e-5)
    several = task_on(TEXTS, "model.mode=stream", "model.bptt=3", "model.eval_batch=4")[0].evaluate(
        model, "valid", "cpu"
    )
    assert several["tokens"] == got["tokens"]  # more columns: the same tokens, each once


def test_sentence_perplexity_equals_independent_recomputation():
    task, model = task_on(TEXTS, "model.mode=sentences", "train.batch_tokens=40")
    got = task.evaluate(model, "valid", "cpu")
    total, n = 0.0, 0
    with torch.no_grad():
        for ids in task.data["valid"]:  # one sentence at a time, no padding, no packing
            x = torch.tensor([[task.vocab.bos, *ids]])
            y = torch.tensor([*ids, task.vocab.eos])
            total += float(F.cross_entropy(model(x)[0][0], y, reduction="sum"))
            n += len(y)
    assert got["tokens"] == n
    assert got["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-5)


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_adaptive_softmax_perplexity_and_distribution(mode):
    task, model = task_on(
        TEXTS,
        "model.softmax=adaptive",
        "model.tie_weights=false",
        "model.cutoffs=[6,12]",
        f"model.mode={mode}",
        "model.bptt=3",
        "model.eval_batch=1",
        "train.batch_tokens=40",
    )
    assert model.out is None and model.asm.cutoffs[:2] == [6, 12]
    got = task.evaluate(model, "valid", "cpu")
    total, n = 0.0, 0
    with torch.no_grad():  # one line at a time through forward(): log-probabilities over the whole vocabulary
        if mode == "stream":
            s = torch.as_tensor(task.streams["valid"])
            lp = model(s[None, :-1])[0][0]
            assert torch.allclose(lp.exp().sum(-1), torch.ones(len(s) - 1), atol=1e-5)
            total, n = float(F.nll_loss(lp, s[1:], reduction="sum")), len(s) - 1
        else:
            for ids in task.data["valid"]:
                x = torch.tensor([[task.vocab.bos, *ids]])
                y = torch.tensor([*ids, task.vocab.eos])
                total += float(F.nll_loss(model(x)[0][0], y, reduction="sum"))
                n += len(y)
    assert got["tokens"] == n
    assert got["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-5)
    before = got["perplexity"]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(30):
        for idx in task.batches("train", shuffle=False):
            loss, _ = task.loss(model, task.collate("train", idx, "cpu"))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert task.evaluate(model, "valid", "cpu")["perplexity"] < before / 2


def test_adaptive_softmax_cannot_tie(tmp_path):
    from textrnn.errors import UserError

    with pytest.raises(UserError, match="model.tie_weights"):
        task_on(TEXTS, "model.softmax=adaptive", "model.tie_weights=true")


# ---------------------------------------------------------------- sampling


def test_filters_and_greedy():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(sampling.filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(sampling.filter_logits(logits, top_p=0.7))[0]
    assert kept.tolist() == [True, True, False, False]
    assert (~torch.isinf(sampling.filter_logits(logits, top_p=0.1))).sum() == 1
    assert sampling.pick(logits, temperature=0).item() == 0
    g = sampling.generator(0)
    assert set(sampling.pick(logits.expand(200, 4), 1.0, top_k=2, generator=g).tolist()) == {0, 1}


def test_same_seed_same_text():
    task, model = task_on(TEXTS)
    a = generation.generate(task, model, "the", "cpu", max_tokens=12, seed=7, num=3)
    b = generation.generate(task, model, "the", "cpu", max_tokens=12, seed=7, num=3)
    c = generation.generate(task, model, "the", "cpu", max_tokens=12, seed=8, num=3)
    assert a == b and a != c
    g1 = generation.generate(task, model, "the", "cpu", temperature=0, seed=1)
    assert g1 == generation.generate(task, model, "the", "cpu", temperature=0, seed=2)


# ---------------------------------------------------------------- CLI round trip and errors


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "lm"
    _, summary = run_pipeline(lm_cfg(*FIT), output=str(run))
    return run, summary


def test_train_save_load_complete(trained, cli):
    run, summary = trained
    assert summary["test"]["perplexity"] < 30 and (run / "model.safetensors").is_file()
    code, out, err = cli("complete", run, "I'll be there in", "-k", "3")
    assert code == 0, err
    rows = [line.split("\t") for line in out.strip().splitlines()]
    probs = [float(p) for _, p in rows]
    assert len(rows) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert {w for w, _ in rows} & {"a", "five", "ten", "twenty", "half", "an", "two", "fifteen"}
    code, out, _ = cli("complete", run, "--json", "-k", "2", stdin=b"see you\nI'll be\n")
    lines = [json.loads(x) for x in out.strip().splitlines()]
    assert code == 0 and [x["text"] for x in lines] == ["see you", "I'll be"] and len(lines[0]["next"]) == 2
    code, out1, _ = cli("generate", run, "--prompt", "See you", "--seed", "3", "--num", "2")
    code2, out2, _ = cli("generate", run, "--prompt", "See you", "--seed", "3", "--num", "2")
    assert code == code2 == 0 and out1 == out2 and len(out1.strip().splitlines()) == 2
    assert all(line.startswith("See you") for line in out1.splitlines())
    code, out, _ = cli("evaluate", run)
    # rel=1e-4: the summary was computed on the training device (a GPU where there is one), evaluate on the CPU
    assert code == 0 and json.loads(out)["perplexity"] == pytest.approx(summary["test"]["perplexity"], rel=1e-4)
    other = write(run.parent / "other.txt", "see you soon\nI'll be there in five minutes\n")
    code, out, _ = cli("evaluate", run, "--set", f"data.test.path={other}")
    m = json.loads(out)
    assert code == 0 and m["bits_per_token"] == pytest.approx(math.log2(m["perplexity"])) and m["tokens"] > 10


def test_sentencepiece_completes_whole_words(tmp_path, cli):
    run = tmp_path / "sp"
    run_pipeline(lm_cfg(*FIT, "tokenizer.kind=sentencepiece", "tokenizer.vocab_size=120"), output=str(run))
    code, out, err = cli("complete", run, "I'll be there in", "-k", "4")
    assert code == 0, err
    words = [line.split("\t")[0] for line in out.strip().splitlines()]
    corpus = set((ROOT / "tests/data/lm/train.txt").read_text().lower().replace(",", " ").replace("!", " ").split())
    assert len(words) == 4 and all(w and "▁" not in w and " " not in w for w in words)
    assert sum(w in corpus for w in words) >= 3


def test_bad_input_one_line_exit_2(trained, tmp_path, cli):
    run, _ = trained
    cases = [
        (("complete", run, "xyzzy qwerty"), "none of its words is in the model's vocabulary"),
        (("generate", run, "--prompt", "xyzzy"), "none of its words is in the model's vocabulary"),
        (("complete", run, "see you", "-k", "100000"), "-k 100000: must be between 1 and the vocabulary size"),
        (("generate", run, "--top-p", "0"), "--top-p 0.0: must be in (0, 1]"),
    ]
    empty = write(tmp_path / "empty.txt", "")
    write(tmp_path / "blank.txt", "\n  \n")
    pipe = write(tmp_path / "p.yaml", f"name: e\ntask: lm\ndata:\n  train: {{path: {empty}}}\n")
    cases.append((("run", pipe, "--output", tmp_path / "r"), "empty.txt: no examples"))
    pipe2 = write(tmp_path / "p2.yaml", "name: e\ntask: lm\ndata:\n  train: {path: blank.txt}\n")
    cases.append((("run", pipe2, "--output", tmp_path / "r2"), "blank.txt: no examples"))
    clf = tmp_path / "clf"
    clf.mkdir()
    rundir.write_atomic(clf / "pipeline.yaml", config.dump(config.load(ROOT / "tests/data/sentiment.yaml")))
    rundir.mark(clf, "classify")
    cases.append((("generate", clf), "a classify model; generate needs a language model"))
    cases.append((("complete", clf, "hi"), "a classify model; complete needs a language model"))
    for args, message in cases:
        code, out, err = cli(*args)
        assert code == 2, (args, err)
        assert message in err and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("error: ")
