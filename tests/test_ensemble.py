"""Ensembles: one member equals its run, probabilities and log-probabilities averaged, bad members refused."""

import json

import numpy as np
import pytest
import torch

import textrnn
from textrnn.errors import UserError

from helpers import write, write_tiny_data

TRAIN = "train: {epochs: %d, batch_tokens: 60, optimizer: {lr: 0.02}, threads: 1, patience: 50, checkpoint_every: 0}\n"
CLASSIFY = (  # conftest's classify run, but for the seed (and, in "other", the data)
    "name: c\ntask: classify\ndata: {train: {path: %s}, valid: {path: %s}, test: {path: %s}}\n"
    "tokenizer: {kind: whitespace, lower: true}\nmodel: {embedding: {dim: 16}, encoder: {hidden: 16}}\n"
)
TRANSLATE = (  # conftest's translate run, but for the seed and the decoder's size
    "name: m\ntask: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
    "tokenizer: {kind: whitespace, lower: true}\n"
    "model: {embedding: {dim: 16}, encoder: {hidden: 16}, decoder: {hidden: 24}}\n"
)
TEXTS = ["a wonderful film", "I hated it", "", "truly great fun and a boring story", "zzz"]
SOURCES = ["ein hund", "die katze läuft", "", "der hund schläft und die katze läuft", "eine rote katze"]


@pytest.fixture(scope="module")
def members(runs, tmp_path_factory):
    """conftest's classify, translate and chat runs, beside a classifier and a translation model of
    another seed (and decoder size) on the same data, a classifier with another vocabulary, one with
    other labels and a translation model with another vocabulary."""
    d = tmp_path_factory.mktemp("ensemble")
    write_tiny_data(d)
    write(d / "other.tsv", "text\tlabel\n" + "some other words\tpositive\nand more of them\tnegative\n" * 5)
    write(d / "labels.tsv", "text\tlabel\n" + "a wonderful film\tgood\nI hated it\tbad\n" * 5)
    write(d / "o.de", "ein anderer satz\nnoch mehr wörter\n" * 5)
    write(d / "o.en", "another sentence\nmore words\n" * 5)
    pipes = {
        "clf2": (CLASSIFY % (("sent.tsv",) * 3) + TRAIN % 6, 2),
        "other": (CLASSIFY % (("other.tsv",) * 3) + TRAIN % 1, 1),
        "labels": (CLASSIFY % (("labels.tsv",) * 3) + TRAIN % 1, 1),
        "mt2": (TRANSLATE + TRAIN % 8, 2),
        "mt-other": (TRANSLATE.replace("mt.de", "o.de").replace("mt.en", "o.en") + TRAIN % 1, 1),
    }
    out = {"clf1": runs["classify"].path, "mt1": runs["translate"].path, "chat": runs["chat"].path}
    for name, (body, seed) in pipes.items():
        p = write(d / f"{name}.yaml", body)
        out[name] = textrnn.train(p, overrides={"train.seed": seed}, output=d / name, progress=False).path
    return out


def test_an_ensemble_of_one_classifier_equals_the_run(members):
    one, ens = textrnn.load(members["clf1"]), textrnn.ensemble([members["clf1"]])
    assert isinstance(ens, textrnn.Classifier) and ens.members == (members["clf1"],)
    assert np.array_equal(ens.predict_proba(TEXTS), one.predict_proba(TEXTS))
    assert ens.predict(TEXTS) == one.predict(TEXTS)
    assert ens.evaluate() == one.evaluate()


def test_two_classifiers_average_their_probabilities(members):
    a, b = textrnn.load(members["clf1"]), textrnn.load(members["clf2"])
    ens = textrnn.ensemble([members["clf1"], members["clf2"]])
    mean = (a.predict_proba(TEXTS) + b.predict_proba(TEXTS)) / 2
    assert not np.allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS), atol=1e-3)  # really two models
    np.testing.assert_allclose(ens.predict_proba(TEXTS), mean, atol=1e-6)
    assert [p.label for p in ens.predict(TEXTS)] == [ens.labels[i] for i in mean.argmax(1)]
    m = ens.evaluate()
    assert m["examples"] == 20 and 0 <= m["accuracy"] <= 1
    assert ens.parameters == a.parameters + b.parameters and "members=" in repr(ens)


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_one_translator_equals_the_run(members, beam):
    one, ens = textrnn.load(members["mt1"]), textrnn.ensemble([members["mt1"]])
    assert isinstance(ens, textrnn.Translator)
    assert ens.translate_nbest(SOURCES, ens.settings(beam=beam, n_best=beam)) == one.translate_nbest(
        SOURCES, one.settings(beam=beam, n_best=beam)
    )
    assert ens.translate(SOURCES, beam=beam, temperature=0.7, seed=3) == one.translate(
        SOURCES, beam=beam, temperature=0.7, seed=3
    )


def test_two_translators_average_log_probabilities_at_each_step(members):
    a, b = textrnn.load(members["mt1"]), textrnn.load(members["mt2"])
    ens = textrnn.ensemble([members["mt1"], members["mt2"]])
    src = torch.tensor([[5, 6, 7]])
    lengths = torch.tensor([3])
    y = torch.tensor([a.task.vocab_tgt.bos])
    with torch.no_grad():
        state, mem = ens.model.start(src, lengths)
        logp, _, _ = ens.model.step(y, state, mem)
        parts = [m.model.step(y, *m.model.start(src, lengths))[0] for m in (a, b)]
    torch.testing.assert_close(logp, (parts[0] + parts[1]) / 2)
    data = members["mt2"].parent
    m = ens.evaluate((data / "mt.de", data / "mt.en"))
    assert m["sentences"] == 40 and {"bleu", "chrf", "perplexity"} <= set(m)


def test_an_ensemble_translates_batched_as_one_by_one(members):
    ens = textrnn.ensemble([members["mt1"], members["mt2"]])
    s = ens.settings(beam=3, n_best=2)
    together = ens.translate_nbest(SOURCES, s)
    alone = [ens.translate_nbest([t], s)[0] for t in SOURCES]
    assert [[t for t, _ in h] for h in together] == [[t for t, _ in h] for h in alone]
    assert [sc for h in together for _, sc in h] == pytest.approx([sc for h in alone for _, sc in h], abs=1e-5)
    assert [h[0][0] for h in together] == ens.translate(SOURCES, beam=3)


def test_an_ensemble_of_one_chatbot_replies_as_the_run(members):
    one, ens = textrnn.load(members["chat"]), textrnn.ensemble([members["chat"]])
    assert isinstance(ens, textrnn.Chatbot)
    assert ens.reply(["hello", "hi there", "how are you"]) == one.reply(["hello", "hi there", "how are you"])
    s1, s2 = one.session(), ens.session()
    assert [s1.reply(m) for m in ("hello", "how are you")] == [s2.reply(m) for m in ("hello", "how are you")]


def test_bad_members_are_one_line(members, tmp_path):
    def refused(runs) -> str:
        with pytest.raises(UserError) as e:
            textrnn.ensemble(runs)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "share a task" in refused([members["clf1"], members["mt1"]])
    assert "vocab.json differs" in refused([members["mt1"], members["mt-other"]])
    assert "share their labels" in refused([members["clf1"], members["labels"]])
    assert "not a textrnn run directory" in refused([members["clf1"], tmp_path])
    assert "no such run directory" in refused([members["clf1"], tmp_path / "none"])
    assert "list of run directories" in refused(str(members["clf1"]))
    assert "one or more" in refused([])
    with pytest.raises(UserError, match="textrnn.ensemble"):
        textrnn.load([members["clf1"], members["clf2"]])


def test_tokenizer_settings_must_match_for_translators(members, tmp_path):
    import shutil

    run = tmp_path / "upper"
    shutil.copytree(members["mt2"], run)
    (run / "pipeline.yaml").write_text(
        (run / "pipeline.yaml").read_text().replace("lower: true", "lower: false"), encoding="utf-8"
    )
    with pytest.raises(UserError, match="tokenizer.lower is False, True in"):
        textrnn.ensemble([members["mt1"], run])


def test_classifiers_that_read_differently_average_what_each_reads(members, tmp_path):
    """Another vocabulary (and tokenizer settings): each member reads the texts itself."""
    import shutil

    from textrnn.inference import accept_edits
    from textrnn.inference.ensemble import EachReadsClassifier

    upper = tmp_path / "upper"  # clf2 with other tokenizer settings: it reads "I" and "i" apart
    shutil.copytree(members["clf2"], upper)
    (upper / "pipeline.yaml").write_text(
        (upper / "pipeline.yaml").read_text().replace("lower: true", "lower: false"), encoding="utf-8"
    )
    accept_edits(upper)
    for other in (members["other"], upper):
        a, b = textrnn.load(members["clf1"]), textrnn.load(other)
        ens = textrnn.ensemble([members["clf1"], other])
        assert isinstance(ens, EachReadsClassifier) and ens.members == (members["clf1"], other)
        mean = (a.predict_proba(TEXTS) + b.predict_proba(TEXTS)) / 2
        assert not np.allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS), atol=1e-3)
        np.testing.assert_allclose(ens.predict_proba(TEXTS), mean, atol=1e-6)
        one_by_one = np.concatenate([ens.predict_proba([t]) for t in TEXTS])
        np.testing.assert_allclose(ens.predict_proba(TEXTS), one_by_one, atol=1e-6)
        calls = []
        read = ens.task.numericalize  # the first run's reading: once per predict, for its labels and counts
        ens.task.numericalize = lambda texts, **kw: calls.append(len(texts)) or read(texts, **kw)  # type: ignore[method-assign]
        got = ens.predict(TEXTS)
        del ens.task.numericalize
        assert calls == [len(TEXTS)]
        assert [p.label for p in got] == [ens.labels[i] for i in mean.argmax(1)]
        assert [(p.unknown, p.tokens) for p in got] == [(p.unknown, p.tokens) for p in a.predict(TEXTS)]
        assert ens.parameters == a.parameters + b.parameters
    rows = [line.split("\t") for line in (members["clf2"].parent / "sent.tsv").read_text().splitlines()[1:]]
    p = ens.predict_proba([t for t, _ in rows])
    y = np.array([ens.labels.index(lab) for _, lab in rows])
    m = ens.evaluate(members["clf2"].parent / "sent.tsv")
    assert m["examples"] == len(rows) and m["accuracy"] == pytest.approx(float((p.argmax(1) == y).mean()))
    assert m["loss"] == pytest.approx(float(-np.log(p[np.arange(len(y)), y]).mean()), rel=1e-5)


def test_reading_each_equals_one_module_where_members_read_alike(members):
    """The each-reads path gives the shared-module path's numbers for members that read alike."""
    from textrnn.inference.ensemble import _each_reads
    from textrnn.inference.opening import open_run

    runs = [members["clf1"], members["clf2"]]
    shared = textrnn.ensemble(runs)
    each = _each_reads([open_run(r, (), "cpu", "fp32", False, True) for r in runs])
    np.testing.assert_allclose(each.predict_proba(TEXTS), shared.predict_proba(TEXTS), atol=1e-6)
    a, b = each.evaluate(), shared.evaluate()
    assert a["confusion"] == b["confusion"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_members_may_order_their_labels_differently(members, tmp_path):
    """A copy of clf2 whose labels (and output rows) are swapped is the same classifier to an ensemble."""
    import shutil

    from safetensors.torch import load_file, save_file

    from textrnn.inference import accept_edits

    run = tmp_path / "swapped"
    shutil.copytree(members["clf2"], run)
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps(labels[::-1]))
    weights = load_file(run / "model.safetensors")
    n = len(labels)
    out = [k for k, v in weights.items() if k.startswith("head.") and v.shape[0] == n]  # the last layer's rows
    assert out
    save_file({k: (v.flip(0).contiguous() if k in out else v) for k, v in weights.items()}, run / "model.safetensors")
    accept_edits(run)
    assert textrnn.load(run).labels == labels[::-1]
    swapped = textrnn.ensemble([members["clf1"], run])
    np.testing.assert_allclose(
        swapped.predict_proba(TEXTS),
        textrnn.ensemble([members["clf1"], members["clf2"]]).predict_proba(TEXTS),
        atol=1e-6,
    )


def test_cli_ensembles_predict_translate_evaluate(members, cli, tmp_path):
    c1, c2 = members["clf1"], members["clf2"]
    code, out, err = cli("predict", c1, "--with", c2, "--json", *TEXTS[:2])
    assert code == 0, err
    probs = textrnn.ensemble([c1, c2]).predict_proba(TEXTS[:2])
    got = [json.loads(line)["probs"] for line in out.splitlines()]
    np.testing.assert_allclose([[g["negative"], g["positive"]] for g in got], probs, atol=1e-5)
    code, out, err = cli("predict", c1, *TEXTS[:2])  # one run: as before
    assert code == 0 and len(out.splitlines()) == 2
    code, out, err = cli("evaluate", c1, c2)
    assert code == 0 and json.loads(out) == textrnn.ensemble([c1, c2]).evaluate(), err

    f = write(tmp_path / "in.de", "\n".join(SOURCES) + "\n")
    code, out, err = cli("translate", members["mt1"], members["mt2"], f, "--beam", "3")
    assert code == 0, err
    assert out.splitlines() == textrnn.ensemble([members["mt1"], members["mt2"]]).translate(SOURCES, beam=3)

    code, out, err = cli("evaluate", c1, members["other"])  # another vocabulary: each member reads
    assert code == 0 and json.loads(out) == textrnn.ensemble([c1, members["other"]]).evaluate(), err

    code, _, err = cli("evaluate", c1, members["mt1"])
    assert code == 2 and "share a task" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("predict", c1, "--with", tmp_path, "good")
    assert code == 2 and "not a textrnn run directory" in err
    code, _, err = cli("translate", members["mt1"], members["clf1"], f)
    assert code == 2 and "a translation model" in err
    code, out, err = cli("chat", members["chat"], "--with", members["chat"], stdin=b"hello\n")
    assert code == 0 and out.strip() == textrnn.load(members["chat"]).reply("hello"), err


def test_valid_seed_fixes_the_carve_and_an_ensemble_selects_on_one_valid_split(tmp_path):
    """train.seed carves valid unless data.valid_seed is set; an ensemble of members that carved
    different valid splits refuses to score "its" valid split (each member trained on part of it)."""
    from textrnn import config
    from textrnn.data.sources import read_splits

    write_tiny_data(tmp_path)
    carved = "name: c\ntask: classify\ndata: {train: {path: sent.tsv}, valid_fraction: 0.3%s}\n"
    body = carved + "tokenizer: {kind: whitespace, lower: true}\nmodel: {embedding: {dim: 8}, encoder: {hidden: 8}}\n"
    body += TRAIN % 1

    def valid_texts(p, seed):
        return read_splits(config.load(p).data, seed)["valid"].texts

    plain, fixed = write(tmp_path / "plain.yaml", body % ""), write(tmp_path / "fixed.yaml", body % ", valid_seed: 7")
    assert valid_texts(plain, 1) != valid_texts(plain, 2)  # the training seed carves by default
    assert valid_texts(fixed, 1) == valid_texts(fixed, 2) == valid_texts(plain, 7)
    run = {
        (name, seed): textrnn.train(
            p, overrides={"train.seed": seed}, output=tmp_path / f"{name}{seed}", progress=False
        ).path
        for name, p in (("plain", plain), ("fixed", fixed))
        for seed in (1, 2)
    }
    ok = textrnn.ensemble([run["fixed", 1], run["fixed", 2]]).evaluate(split="valid")
    assert ok["examples"] == len(valid_texts(fixed, 1))
    with pytest.raises(
        UserError, match=r"plain2's valid split is .* carved with seed 2, .*plain1's .* seed 1: .*data.valid_seed"
    ):
        textrnn.ensemble([run["plain", 1], run["plain", 2]]).evaluate(split="valid")
    ens = textrnn.ensemble([run["plain", 1], run["plain", 2]])
    assert ens.evaluate(test=tmp_path / "sent.tsv")["examples"] > 0  # a test file is the same for all
