"""The Python API: train → load → use for each task, batched equals one by one, threads, bad input."""

import ast
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import textrnn
from textrnn.errors import UserError

from helpers import LM_TEXTS, NEG, PAIRS, POS, ROOT, write


def test_train_returns_the_run_and_load_gives_the_task_object(runs):
    kinds = {
        "classify": textrnn.Classifier,
        "lm": textrnn.LanguageModel,
        "translate": textrnn.Translator,
        "chat": textrnn.Chatbot,
    }
    for task, run in runs.items():
        assert (run.path / "model.safetensors").is_file() and "valid" in run.summary
        m = textrnn.load(run.path, device="cpu")
        assert type(m) is kinds[task]
        assert f"task={task}" in repr(m) and "parameters=" in repr(m) and str(run.path) in repr(m)
        assert m.parameters > 0 and m.vocab_size > 4 and m.device.type == "cpu"
    assert isinstance(runs["classify"].load(device="cpu"), textrnn.Classifier)


def test_train_is_quiet_without_progress(runs, capsys, tmp_path):
    cfg = ROOT / "tests" / "x.yaml"  # never written: the error comes first
    with pytest.raises(UserError, match="no such pipeline file"):
        textrnn.train(cfg, progress=False)
    run = textrnn.train(
        runs["classify"].path / "pipeline.yaml", overrides=["train.epochs=1"], output=tmp_path / "q", progress=False
    )
    out, err = capsys.readouterr()
    assert out == "" and err == "" and run.summary["epochs"] == 1


def test_classifier_predict_batched_equals_one_by_one(runs):
    clf = textrnn.load(runs["classify"].path, device="cpu")
    texts = ["a wonderful and superb story", "dull and awful", "I loved it", "zzz unknown words", ""]
    many = clf.predict(texts)
    assert [p.label for p in many[:3]] == ["positive", "negative", "positive"]
    for text, p in zip(texts, many):
        one = clf.predict(text)  # a str gives one Prediction
        assert one.label == p.label and one.prob == pytest.approx(p.prob, abs=1e-5)
        assert set(p.probs) == {"negative", "positive"} and sum(p.probs.values()) == pytest.approx(1, abs=1e-5)
        assert p.prob == max(p.probs.values())
    assert clf.labels == ["negative", "positive"] and clf.predict([]) == []
    assert clf.predict_proba(texts).shape == (5, 2)


def test_translate_evaluate_decodes_as_translate_does(runs, cli):
    """A finished translation model's figure decodes with the pipeline's `generate:` settings (here
    beam 3), as `translate` does, and says so; `--set generate.beam=1` gives training's greedy
    per-epoch score."""
    import sacrebleu

    run = runs["translate"]
    data = run.path.parent.parent
    mt = textrnn.load(run.path, device="cpu")
    m = mt.evaluate(split="valid")
    assert m["beam"] == 3 and run.summary["valid"]["beam"] == 1
    src, refs = (data / "mt.de").read_text().splitlines(), (data / "mt.en").read_text().splitlines()
    assert m["bleu"] == pytest.approx(sacrebleu.corpus_bleu(mt.translate(src), [refs]).score, abs=1e-9)
    code, out, _ = cli("evaluate", run.path, "--split", "valid", "--set", "generate.beam=1")
    greedy = json.loads(out)
    assert code == 0 and greedy["beam"] == 1
    assert greedy["bleu"] == pytest.approx(run.summary["valid"]["bleu"], abs=1e-9)


def test_the_end_of_run_says_how_each_translation_figure_was_decoded(runs, cli):
    """Valid (per epoch, greedy) and test (generate:'s beam) are labelled, at the end of the run and by
    `textrnn info`; a classifier's are not."""
    from textrnn.training import report

    run = runs["translate"]
    summary = {**run.summary, "test": textrnn.load(run.path, device="cpu").evaluate(split="valid")}
    lines = report.end_of_run(run.path, "translate", "t", summary)
    assert next(x for x in lines if x.startswith("  valid")).endswith("(greedy)")
    assert next(x for x in lines if x.startswith("  test")).endswith("(beam 3)")
    c = runs["classify"]
    assert not any("greedy" in x or "beam" in x for x in report.end_of_run(c.path, "classify", "c", c.summary))
    code, out, _ = cli("info", run.path)
    assert code == 0 and "(greedy)" in out


def test_evaluate_the_valid_split_as_training_scored_it(runs, cli, tmp_path):
    """split="valid": the declared valid split, or the part carved from train with the run's seed, scored as
    training scored its best model; the test split is not read."""
    data = runs["classify"].path.parent.parent  # the runs fixture's data folder
    m = textrnn.load(runs["classify"].path, device="cpu").evaluate(split="valid")
    assert m["accuracy"] == pytest.approx(runs["classify"].summary["valid"]["accuracy"], abs=1e-9)
    test = write(tmp_path / "test.tsv", (data / "sent.tsv").read_text())
    p = write(
        tmp_path / "carved.yaml",
        f"name: carved\ntask: classify\ndata: {{train: {{path: {data / 'sent.tsv'}}}, test: {{path: {test}}}, "
        "valid_fraction: 0.3}\ntokenizer: {kind: whitespace, lower: true}\n"
        "model: {embedding: {dim: 16}, encoder: {hidden: 16}}\n"
        "train: {epochs: 3, batch_tokens: 60, threads: 1, checkpoint_every: 0}\n",
    )
    run = textrnn.train(p, output=tmp_path / "carved", progress=False)
    test.unlink()  # a valid split carved from train needs no test file
    clf = textrnn.load(run.path, device="cpu")
    m = clf.evaluate(split="valid")
    want = run.summary["valid"]
    assert m["examples"] == 6 and m["accuracy"] == want["accuracy"] and m["loss"] == pytest.approx(want["loss"])
    code, out, err = cli("evaluate", run.path, "--split", "valid")
    assert code == 0 and json.loads(out) == m, err
    with pytest.raises(UserError, match="test.tsv"):
        clf.evaluate()
    with pytest.raises(UserError, match="not both"):
        clf.evaluate(data / "sent.tsv", split="valid")
    with pytest.raises(UserError, match="test or valid"):
        clf.evaluate(split="dev")
    code, _, err = cli("evaluate", run.path, "--split", "dev")
    assert code == 2 and "test or valid" in err


def test_classifier_evaluate_plot_and_cli_agree(runs, cli, tmp_path):
    from matplotlib.figure import Figure

    run = runs["classify"].path
    clf = textrnn.load(run, device="cpu")
    m = clf.evaluate()
    assert m["accuracy"] == pytest.approx(runs["classify"].summary["test"]["accuracy"])
    other = write(tmp_path / "other.tsv", "text\tlabel\nI loved it\tpositive\nawful music\tnegative\n")
    assert textrnn.evaluate(run, test=other, device="cpu")["examples"] == 2
    code, out, _ = cli("evaluate", run, "--set", f"data.test.path={other}")
    assert code == 0 and json.loads(out) == clf.evaluate(other)
    assert isinstance(clf.plot("curves"), Figure) and isinstance(clf.plot("confusion"), Figure)
    with pytest.raises(UserError, match="it draws curves, confusion"):
        clf.plot("gates")


def test_language_model_generate_complete_perplexity(runs, tmp_path):
    lm = textrnn.load(runs["lm"].path, device="cpu")
    a = lm.generate("the", max_tokens=8, seed=3, num=3)
    assert len(a) == 3 and all(t.startswith("the") for t in a) and a == lm.generate("the", max_tokens=8, seed=3, num=3)
    words = lm.complete("I'll be there in", k=3)
    assert len(words) == 3 and {w for w, _ in words} & {"five", "ten"}
    assert [w for w, _ in words] == [w for w, _ in lm.complete(["see you", "I'll be there in"], k=3)[1]]
    lines = LM_TEXTS[:7]
    f = write(tmp_path / "t.txt", "\n".join(lines) + "\n")
    assert lm.perplexity(lines) == pytest.approx(lm.evaluate(f)["perplexity"], rel=1e-6)
    assert 1 < lm.perplexity(lines) < 50
    with pytest.raises(UserError, match="no text to score"):
        lm.perplexity(["", "  "])


def test_translator_batched_equals_one_by_one_order_and_empties(runs):
    mt = textrnn.load(runs["translate"].path, device="cpu")
    texts = ["der hund läuft", "", "eine rote katze", "die katze schläft", "   ", "ein hund"]
    many = mt.translate(texts)
    assert many[1] == "" and many[4] == "" and many[0] == "the dog runs"
    assert many == [mt.translate(t) for t in texts]
    best2 = mt.translate(texts, beam=3, n_best=2)
    assert all(isinstance(b, list) for b in best2) and best2[0][0] == mt.translate("der hund läuft", beam=3)
    assert mt.translate(texts, beam=1) == [mt.translate(t, beam=1) for t in texts]
    with pytest.raises(UserError, match="n-best 4 is more than beam 2"):
        mt.translate(texts, beam=2, n_best=4)
    with pytest.raises(UserError, match="beam"):
        mt.translate("ein hund", beam=0)
    src, tgt, w = mt.attention("der hund läuft")
    assert w.shape == (len(tgt), len(src)) and np.allclose(w.sum(-1), 1, atol=1e-4)


def test_chatbot_session_history_reset_and_settings(runs):
    bot = textrnn.load(runs["chat"].path, device="cpu")
    s = bot.session()
    assert s.reply("hello") == "hi there" and s.reply("how are you") == "fine thanks"
    assert s.history == [("hello", "hi there"), ("how are you", "fine thanks")]
    s.reset()
    assert s.history == [] and s.reply("good bye") == "see you soon"
    assert bot.reply("hello") == "hi there" and bot.reply(["hi there", "how are you"]) == "fine thanks"
    assert s.set("temperature", 1.0) == 1.0 and s.set("seed", 7) == 7
    with pytest.raises(UserError, match="temperature"):
        s.set("temperature", float("nan"))
    with pytest.raises(UserError, match="top_p"):
        s.set("top_p", 5)
    with pytest.raises(UserError, match="unknown option 'colour'"):
        s.set("colour", 3)
    a, b = bot.session(temperature=1.0, seed=5), bot.session(temperature=1.0, seed=5)
    assert [a.reply("hello") for _ in range(3)] == [b.reply("hello") for _ in range(3)]


def test_respond_many_equals_one_by_one(runs):
    bot = textrnn.load(runs["chat"].path, device="cpu")
    contexts = [["hello"], ["hello", "hi there", "how are you"], ["good bye"], ["how are you"]]
    assert bot.respond_many(contexts, {}) == [bot.respond_to(c, {}) for c in contexts]
    assert bot.respond_many(contexts, {"beam": 1}) == [bot.reply(c, beam=1) for c in contexts]
    mt = textrnn.load(runs["translate"].path, device="cpu")
    ctx = [["x", src] for src, _ in PAIRS[:5]]
    assert mt.respond_many(ctx, {"beam": 2}) == mt.translate([c[-1] for c in ctx], beam=2)
    s = bot.session()
    s.add("hello", s.reply_fn(s.context("hello"), s.options))
    assert (
        s.history == [("hello", "hi there")] and s.context("how are you") == ["hello", "hi there", "how are you"][-2:]
    )


def test_wrong_task_method_names_the_task_and_its_methods(runs):
    clf = textrnn.load(runs["classify"].path, device="cpu")
    with pytest.raises(textrnn.WrongTask, match=r"is a classifier: it has predict, predict_proba, evaluate, plot"):
        clf.translate(["x"])
    with pytest.raises(AttributeError):  # an AttributeError: hasattr() answers False
        clf.session()
    assert not hasattr(clf, "complete") and not hasattr(clf, "no_such_thing")
    lm = textrnn.load(runs["lm"].path, device="cpu")
    with pytest.raises(textrnn.WrongTask, match="is a language model: it has generate, complete, perplexity"):
        lm.predict("x")


def test_concurrent_calls_from_8_threads_equal_sequential(runs):
    clf = textrnn.load(runs["classify"].path, device="cpu")
    mt = textrnn.load(runs["translate"].path, device="cpu")
    jobs = [(clf.predict, [POS[i % 10], NEG[i % 10]]) for i in range(8)] + [
        (mt.translate, [PAIRS[i % 8][0], "eine katze"]) for i in range(8)
    ]
    expected = [fn(arg) for fn, arg in jobs]
    got: list = [None] * len(jobs)
    barrier = threading.Barrier(8)

    def worker(w):
        barrier.wait()
        for j in range(w, len(jobs), 8):
            got[j] = jobs[j][0](jobs[j][1])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, g in zip(expected, got):
        if isinstance(e[0], textrnn.Prediction):
            assert [p.label for p in e] == [p.label for p in g]
            assert np.allclose([p.prob for p in e], [p.prob for p in g], atol=1e-6)
        else:
            assert e == g


def test_bad_input_is_one_user_error(runs, tmp_path):
    run = runs["classify"].path
    clf = textrnn.load(run, device="cpu")
    with pytest.raises(UserError, match="item 1 is int, not a text"):
        clf.predict(["fine", 2])
    with pytest.raises(UserError, match="give a text"):
        clf.predict(42)
    with pytest.raises(UserError, match="no such run directory"):
        textrnn.load(tmp_path / "nothing")
    with pytest.raises(UserError, match="not a textrnn run directory"):
        textrnn.load(tmp_path)
    with pytest.raises(UserError, match="device 'gpu'"):
        textrnn.load(run, device="gpu")
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(run, newer)
    (newer / "textrnn.json").write_text(json.dumps({"version": "9.0", "format": 99, "task": "classify"}))
    with pytest.raises(UserError, match="run format 99"):
        textrnn.load(newer)
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match="model.safetensors: changed since textrnn wrote it"):
        textrnn.load(broken)  # the manifest's SHA-256 names the damaged file
    with pytest.raises(UserError, match="model.safetensors: unreadable weights file"):
        textrnn.load(broken, verify=False)
    (broken / "model.safetensors").unlink()
    with pytest.raises(UserError, match="model.safetensors: missing"):
        textrnn.load(broken)
    with pytest.raises(UserError, match="test must be a file path"):
        clf.evaluate(42)
    with pytest.raises(UserError, match="overrides: a mapping"):
        textrnn.train(run / "pipeline.yaml", overrides="train.epochs=1")


def test_only_the_cli_imports_the_cli_or_typer():
    """The CLI is a leaf: no module under textrnn/ outside textrnn/cli imports it (or typer)."""
    pkg = ROOT / "textrnn"
    offenders = []
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(
                n == "typer" or n.startswith("typer.") or n == "textrnn.cli" or n.startswith("textrnn.cli.")
                for n in names
            ):
                offenders.append(str(rel))
    assert offenders == []
    code = "import sys, textrnn.inference; assert 'typer' not in sys.modules and 'textrnn.cli' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    light = "import sys, textrnn; assert 'torch' not in sys.modules, 'import textrnn loads torch'"
    assert subprocess.run([sys.executable, "-c", light], cwd=ROOT).returncode == 0


def test_device_auto_picks_cpu_without_a_gpu(runs):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert textrnn.load(runs["lm"].path).device.type == "cpu"
    assert Path(textrnn.load(runs["lm"].path).run) == runs["lm"].path
