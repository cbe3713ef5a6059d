"""`textrnn export`: ONNX graphs equal the PyTorch models (1e-4) at two batch sizes x two lengths, padding
included; the LM step graph used token by token equals the model on the whole text; encoder + decoder
step greedy-decode as `translate` does; signature.json; refusals; prediction without torch."""

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import textrnn
from textrnn.errors import UserError
from textrnn.export import export

from helpers import PAIRS, ROOT

TOL = 1e-4
SHAPES = [(1, 4), (1, 11), (3, 4), (3, 11)]  # (batch, length)
CLASSIFIERS = {  # beside the session's BiLSTM with max pooling
    "gru-mean-2layers": {"model.encoder.cell": "gru", "model.pooling": "mean", "model.encoder.layers": 2},
    "lstm-concat": {"model.pooling": "concat"},
    "rnn-last-packed": {"model.encoder.cell": "rnn", "model.pooling": "last", "model.encoder.impl": "packed"},
    "lstm-attention-forward": {"model.pooling": "attention", "model.encoder.bidirectional": False},
    "lstm-mlp-blocks": {"model.encoder.layers": 2, "model.encoder.mlp": 2},  # LayerNorm, GELU, residual
}
LMS = {
    "adaptive": {"model.softmax": "adaptive", "model.cutoffs": [8, 16]},
    "tied-gru-2layers": {"model.tie_weights": True, "model.cell": "gru", "model.layers": 2, "model.mode": "sentences"},
}
SEQ2SEQ = {
    "feeding-bahdanau-gru": {
        "model.decoder.input_feeding": True,
        "model.decoder.attention": "bahdanau",
        "model.decoder.cell": "gru",
    },
    "dot-2vocabs-nobridge": {
        "model.decoder.attention": "dot",
        "model.share_vocab": False,
        "model.decoder.bridge": False,
        "model.decoder.tie_output": False,
        "model.decoder.layers": 2,
    },
}


@pytest.fixture(scope="module")
def runs_all(runs, tmp_path_factory):
    """The session's runs and quick variants (2 epochs): task name or variant -> run directory."""
    d = tmp_path_factory.mktemp("export-runs")
    out = {task: r.path for task, r in runs.items()}
    for task, variants in (("classify", CLASSIFIERS), ("lm", LMS), ("translate", SEQ2SEQ)):
        for name, over in variants.items():
            run = textrnn.train(
                runs[task].path / "pipeline.yaml",
                overrides={**over, "train.epochs": 2},
                output=d / name,
                progress=False,
            )
            out[name] = run.path
    return out


@pytest.fixture(scope="module")
def exported(runs_all, tmp_path_factory):
    """name -> (export folder, signature)."""
    d = tmp_path_factory.mktemp("exported")
    return {name: (d / name, export(path, d / name)) for name, path in runs_all.items()}


def session(folder, file="model.onnx"):
    return ort.InferenceSession(str(folder / file), providers=["CPUExecutionProvider"])


def padded(seqs, pad=0):
    ids = np.full((len(seqs), max(map(len, seqs))), pad, np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return ids, np.array([len(s) for s in seqs], np.int64)


def random_seqs(rng, V, B, T):
    """B id lists of lengths up to T (the first exactly T)."""
    return [list(rng.integers(4, V, n)) for n in [T, *rng.integers(1, T + 1, B - 1)]]


@pytest.mark.parametrize("name", ["classify", *CLASSIFIERS])
def test_classifier_equals_torch_and_padding_changes_nothing(name, runs_all, exported):
    folder, sig = exported[name]
    clf = textrnn.load(runs_all[name], device="cpu")
    sess, rng = session(folder), np.random.default_rng(0)
    for B, T in SHAPES:
        seqs = random_seqs(rng, clf.vocab_size, B, T)
        ids, lengths = padded(seqs)
        got = sess.run(["probs"], {"ids": ids, "lengths": lengths})[0]  # [B, C]
        with torch.no_grad():
            want = clf.model(torch.from_numpy(ids), torch.from_numpy(lengths)).softmax(-1).numpy()
        assert np.abs(got - want).max() < TOL and np.allclose(got.sum(1), 1, atol=1e-5)
        for i, s in enumerate(seqs):  # a padded batch equals each text alone
            alone = sess.run(["probs"], {"ids": np.array([s], np.int64), "lengths": np.array([len(s)])})[0]
            assert np.abs(alone[0] - got[i]).max() < TOL
    assert sig["check"]["max_abs_diff"] < TOL and len(sig["check"]["shapes"]) == 4


@pytest.mark.parametrize("name", ["lm", *LMS])
def test_lm_step_graph_token_by_token_equals_the_whole_sequence(name, runs_all, exported):
    folder, sig = exported[name]
    lm = textrnn.load(runs_all[name], device="cpu")
    m, sess, rng = lm.task.m, session(folder), np.random.default_rng(1)
    names = ["h", "c"] if m.cell == "lstm" else ["h"]
    for B, T in SHAPES:
        ids = rng.integers(4, lm.vocab_size, (B, T))
        with torch.no_grad():
            scores, state = lm.model(torch.from_numpy(ids))  # [B, T, V]
        want = torch.log_softmax(scores, -1).numpy()  # (the adaptive softmax's log-probabilities are unchanged)
        state = [s.numpy() for s in (state if isinstance(state, tuple) else (state,))]
        feed = {n: np.zeros((m.layers, B, m.hidden), np.float32) for n in names}
        for t in range(T):  # one token at a time, the state carried outside the graph
            logp, *new = sess.run(None, {"ids": ids[:, t : t + 1], **feed})
            assert np.abs(logp - want[:, t]).max() < TOL and np.allclose(np.exp(logp).sum(1), 1, atol=1e-4)
            feed = dict(zip(names, new))
        assert all(np.abs(feed[n] - s).max() < TOL for n, s in zip(names, state))
        logp, *new = sess.run(None, {"ids": ids, **{n: np.zeros_like(v) for n, v in feed.items()}})  # [B, T] at once
        assert np.abs(logp - want[:, -1]).max() < TOL and all(np.abs(a - s).max() < TOL for a, s in zip(new, state))
        for i in range(B):  # each row alone
            one = sess.run(
                ["log_probs"],
                {"ids": ids[i : i + 1], **{n: np.zeros((m.layers, 1, m.hidden), np.float32) for n in names}},
            )[0]
            assert np.abs(one[0] - logp[i]).max() < TOL
    start = lm.task.vocab.bos if m.mode == "sentences" else lm.task.vocab.eos
    assert sig["start_id"] == start and sig["mode"] == m.mode


def run_steps(steps, result, **names):
    """Execute signature.json's steps (Python lines) on `names`; the value they leave in `result`."""
    ns = {"re": re, **names}
    for step in steps:
        exec(step, ns)
    return ns[result]


def greedy_onnx(enc, dec, src_ids, bos, eos, max_len):
    """Greedy decoding of one source text with the two graphs (argmax; <eos> forced at max_len)."""
    out = dict(
        zip(
            [o.name for o in enc.get_outputs()],
            enc.run(None, {"src": np.array([src_ids], np.int64), "lengths": np.array([len(src_ids)])}),
        )
    )
    names = [i.name for i in dec.get_inputs()][1:]
    y, toks = bos, []
    for t in range(max_len + 1):
        res = dict(
            zip(
                [o.name for o in dec.get_outputs()],
                dec.run(None, {"y": np.array([y], np.int64), **{n: out[n] for n in names}}),
            )
        )
        y = eos if t >= max_len else int(res["log_probs"][0].argmax())
        if y == eos:
            return toks
        toks.append(y)
        out.update({n[: -len("_new")]: v for n, v in res.items() if n.endswith("_new")})


@pytest.mark.parametrize("name", ["translate", "chat", *SEQ2SEQ])
def test_encoder_and_decoder_step_equal_torch(name, runs_all, exported):
    folder, sig = exported[name]
    tr = textrnn.load(runs_all[name], device="cpu")
    task, model = tr.task, tr.model
    enc, dec, rng = session(folder, "encoder.onnx"), session(folder, "decoder.onnx"), np.random.default_rng(2)
    dec_names = [i.name for i in dec.get_inputs()]
    for B, T in SHAPES:
        seqs = random_seqs(rng, len(task.vocab), B, T)
        src, lengths = padded(seqs)
        outs = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"src": src, "lengths": lengths})))
        with torch.no_grad():
            (rnn, feed), mem = model.start(torch.from_numpy(src), torch.from_numpy(lengths))
            y = torch.from_numpy(rng.integers(4, len(task.vocab_tgt), B))
            logp, (rnn2, _), w = model.step(y, (rnn, feed), mem)
        assert np.abs(outs["memory"] - mem["memory"].numpy()).max() < TOL
        assert np.abs(outs["h"] - (rnn[0] if isinstance(rnn, tuple) else rnn).numpy()).max() < TOL
        assert (outs["mask"] == mem["mask"].numpy()).all()
        res = dec.run(None, {"y": y.numpy(), **{n: outs[n] for n in dec_names[1:]}})
        assert np.abs(res[0] - logp.numpy()).max() < TOL and np.abs(res[-1] - w.numpy()).max() < TOL
        assert np.abs(res[1] - (rnn2[0] if isinstance(rnn2, tuple) else rnn2).numpy()).max() < TOL
        for i, s in enumerate(seqs):  # a padded source batch equals each source alone
            one = dict(
                zip(
                    [o.name for o in enc.get_outputs()],
                    enc.run(None, {"src": np.array([s], np.int64), "lengths": np.array([len(s)])}),
                )
            )
            assert np.abs(one["h"][:, 0] - outs["h"][:, i]).max() < TOL
            assert np.abs(one["memory"][0] - outs["memory"][i, : len(s)]).max() < TOL
            step = dec.run(None, {"y": y.numpy()[i : i + 1], **{n: one[n] for n in dec_names[1:]}})
            assert np.abs(step[0][0] - res[0][i]).max() < TOL
    if name == "translate":  # greedy decoding with the graphs gives translate's greedy output
        s = tr.settings(beam=1)
        tgt = task.vocab_tgt
        for src_text, _ in PAIRS[:4]:
            ids = task.encode_side([src_text], False, cache=False)[0][0].tolist()
            toks = greedy_onnx(enc, dec, ids, tgt.bos, tgt.eos, int(len(ids) * s.max_ratio) + s.max_extra)
            assert run_steps(sig["target"]["detokenizer"]["steps"], "text", ids=toks, itos=tgt.itos) == tr.translate(
                src_text, beam=1
            )
    assert sig["target"]["specials"]["eos"] == task.vocab_tgt.eos
    if name == "chat":
        assert sig["context"]["sep_id"] == task.vocab.stoi["<sep>"] and sig["context"]["history"] == 2


def test_signature_describes_the_graphs_and_the_text(runs_all, exported):
    for name, (folder, sig) in exported.items():
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert files == sorted(sig["files"])
        assert json.loads((folder / "signature.json").read_text()) == sig
        assert sig["opset"] >= 17 and sig["textrnn_version"] == textrnn.__version__ and sig["format"] == "onnx"
        for file, ports in sig["graphs"].items():
            model = onnx.load(str(folder / file))
            assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == sig["opset"]
            sess = session(folder, file)
            for declared, actual in ((ports["inputs"], sess.get_inputs()), (ports["outputs"], sess.get_outputs())):
                onnx_type = {"float32": "float"}  # ONNX's name for it
                assert [
                    (p["name"], p["shape"], f"tensor({onnx_type.get(p['dtype'], p['dtype'])})") for p in declared
                ] == [(a.name, a.shape, a.type) for a in actual]
        assert sig["specials"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
        assert (folder / sig["tokenizer"]["vocab"]).is_file() and sig["tokenizer"]["kind"] == "whitespace"
    clf = textrnn.load(runs_all["classify"], device="cpu")
    folder, sig = exported["classify"]
    assert sig["labels"] == clf.labels and sig["task"] == "classify" and sig["tokenizer"]["lower"] is True
    assert sig["tokenizer"]["steps"][:2] == ["text = text.lower()", "tokens = text.split()"]
    for text in ["I loved IT", "zzz a dull film", ""]:  # the steps give the ids textrnn gives
        want = clf.task.numericalize([text], cache=False)[0].tolist()
        assert run_steps(sig["tokenizer"]["steps"], "ids", text=text, stoi=clf.task.vocab.stoi, unk=1) == want
    assert json.loads((folder / "vocab.json").read_text())["itos"] == clf.task.vocab.itos
    assert "vocab_tgt.json" in exported["dot-2vocabs-nobridge"][1]["files"]
    assert exported["dot-2vocabs-nobridge"][1]["target"]["detokenizer"]["vocab"] == "vocab_tgt.json"
    assert [p["name"] for p in exported["feeding-bahdanau-gru"][1]["graphs"]["decoder.onnx"]["outputs"]] == [
        "log_probs",
        "h_new",
        "feed_new",
        "attention",
    ]


# what a program without torch does: tokenize as signature.json says, run model.onnx
NO_TORCH = r"""
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np, onnxruntime as ort
folder, texts = sys.argv[1], json.loads(sys.argv[2])
sig = json.load(open(f"{folder}/signature.json"))
tok, sp = sig["tokenizer"], sig["specials"]
stoi = {t: i for i, t in enumerate(json.load(open(f"{folder}/{tok['vocab']}"))["itos"])}
seqs = []
for text in texts:
    tokens = (text.lower() if tok["lower"] else text).split()[: tok["max_length"]]
    seqs.append([stoi.get(t, sp["unk"]) for t in tokens] or [sp["unk"]])
ids = np.full((len(seqs), max(map(len, seqs))), sp["pad"], np.int64)
for i, s in enumerate(seqs):
    ids[i, : len(s)] = s
sess = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
probs = sess.run(["probs"], {"ids": ids, "lengths": np.array([len(s) for s in seqs], np.int64)})[0]
print(json.dumps({"labels": sig["labels"], "probs": probs.tolist()}))
"""


def test_predicts_without_torch(runs_all, exported):
    folder, _ = exported["classify"]
    texts = ["a wonderful and superb story", "dull and AWFUL", "I loved it", "zzz unknown words", ""]
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(folder), json.dumps(texts)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    clf = textrnn.load(runs_all["classify"], device="cpu")
    assert got["labels"] == clf.labels
    assert np.abs(np.array(got["probs"]) - clf.predict_proba(texts)).max() < TOL


def test_cli_reports_the_difference_and_refuses_bad_input(runs, cli, tmp_path):
    run = runs["classify"].path
    code, out, err = cli("export", run, "-o", tmp_path / "a")
    assert code == 0 and "model.onnx, vocab.json, signature.json" in out and "max |difference|" in out
    assert (tmp_path / "a" / "model.onnx").is_file()
    for args, msg in [
        ((tmp_path / "nope", "-o", tmp_path / "b"), "no such run directory"),
        ((tmp_path, "-o", tmp_path / "b"), "not a textrnn run directory"),
        ((run, "-o", tmp_path / "a"), "exists and is not empty (give --overwrite"),
        ((run, "-o", tmp_path / "a" / "model.onnx"), "exists and is not a folder"),
        ((run, "-o", tmp_path / "b", "--format", "tflite"), "--format tflite: the export formats are"),
        ((run, "-o", run.parent, "--overwrite"), "--overwrite would delete it"),
    ]:
        code, out, err = cli("export", *args)
        assert code == 2 and msg in err and err.count("\n") == 1 and out == "", (args, err)
    assert not (tmp_path / "b").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    blocked = tmp_path / "a" / "model.onnx" / "out"  # its parent is a file: the OS refuses, -o is named
    code, out, err = cli("export", run, "-o", blocked)
    assert code == 1 and f"error: {blocked}: cannot write there" in err and ".tmp-" not in err, err
    assert err.count("\n") == 1 and out == ""
    (tmp_path / "a" / "old.txt").write_text("x")
    code, _, _ = cli("export", run, "-o", tmp_path / "a", "--overwrite")
    assert code == 0 and not (tmp_path / "a" / "old.txt").exists() and (tmp_path / "a" / "signature.json").is_file()
    (tmp_path / "empty").mkdir()
    assert cli("export", run, "-o", tmp_path / "empty")[0] == 0


def test_all_or_nothing_and_a_clear_line_when_over_tolerance(runs, tmp_path, monkeypatch):
    from textrnn.export import onnx as to_onnx

    monkeypatch.setattr(to_onnx, "TOLERANCE", -1.0)  # every difference is now too large
    with pytest.raises(
        UserError,
        match=r"model.onnx differs from the PyTorch model by .* at batch 1, length 3; "
        r"nothing was written",
    ):
        export(runs["classify"].path, tmp_path / "x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("x")
    with pytest.raises(UserError):
        export(runs["classify"].path, tmp_path / "old", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"] and (tmp_path / "old" / "keep.txt").is_file()


def test_missing_extra_names_it(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"pip install 'textrnn\[export\]'"):
        export(runs["lm"].path, tmp_path / "x")
    assert not (tmp_path / "x").exists()
