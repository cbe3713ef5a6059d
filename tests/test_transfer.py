"""Transfer from an LM run (model.init_from) and the fine-tuning keys (discriminative, unfreeze, slanted)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import textrnn
from textrnn import config
from textrnn.config import ClassifyModel, LMModel, Seq2SeqModel
from textrnn.errors import UserError
from textrnn.nn.padded_encoder import PaddedEncoder, reverse_within
from textrnn.tasks.classify import Classifier
from textrnn.tasks.lm import LanguageModel
from textrnn.tasks.seq2seq import Seq2Seq
from textrnn.training import transfer
from textrnn.training.step import Step, layer_groups, make_optimizer, make_schedule
from textrnn.training.trainer import Trainer, run_pipeline

from helpers import LM_TEXTS, NEG, POS, ROOT, cut_at, write, write_tiny_data

TRAIN = "train: {epochs: %d, batch_size: 4, threads: 1, checkpoint_every: 0, optimizer: {lr: 0.02}}\n"
LM = (
    "task: lm\ndata: {train: {path: text.txt}, valid: {path: text.txt}}\n"
    "tokenizer: {kind: whitespace, lower: true}\n"
    "model: {embedding: {dim: 8}, cell: %s, hidden: 8, layers: %d, bidirectional: %s, bptt: 6, eval_batch: 2}\n"
)
CLF = (
    "data: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
    "model: {init_from: %s, embedding: {dim: 8},\n"
    "        encoder: {cell: %s, hidden: 8, layers: %d, separate_directions: true}}\n"
)
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """Tiny data and tiny LM runs: lstm (one direction), bilstm, mingru of 2 layers; bilstm1 of 1."""
    d = tmp_path_factory.mktemp("transfer")
    write_tiny_data(d)
    write(d / "text.txt", "\n".join(LM_TEXTS + POS + NEG) + "\n")
    for name, cell, layers, bi in [
        ("lstm", "lstm", 2, "false"),
        ("bilstm", "lstm", 2, "true"),
        ("mingru", "mingru", 2, "false"),
        ("bilstm1", "lstm", 1, "true"),
    ]:
        p = write(d / f"{name}.yaml", f"name: {name}\n" + LM % (cell, layers, bi) + TRAIN % 1)
        run_pipeline(config.load(p), output=str(d / "runs" / name), quiet=True)
    return d


def clf_yaml(d, lm: str, cell: str = "lstm", layers: int = 2, extra: str = "", epochs: int = 1, name: str = "clf"):
    return write(d / f"{name}.yaml", f"name: {name}\n" + CLF % (d / "runs" / lm, cell, layers) + extra + TRAIN % epochs)


def built(path, values=None):
    """The model a run of this pipeline starts training from (built as the trainer builds it; nothing written)."""
    tr = Trainer(config.load(path, values=values), path.parent / "never-written")
    tr.cfg = transfer.resolve(tr.cfg, tr.run, False)
    tr._build(tr._prepare())
    return tr.core, tr


def lm_weights(d, name):
    return load_file(str(d / "runs" / name / "model.safetensors"))


# ---------------------------------------------------------------- weights


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_a_classifier_takes_the_embedding_and_the_forward_layers_of_a_one_direction_lm(d, cell, capsys):
    model, tr = built(clf_yaml(d, cell, cell))
    lm = lm_weights(d, cell)
    assert torch.equal(model.embed.emb.weight, lm["embed.emb.weight"])
    for i, f in enumerate(model.encoder.fwd):
        own = dict(f.named_parameters())
        for name, p in own.items():
            assert torch.equal(p, lm[f"rnn.{transfer.lm_name(name, i)}"]), (i, name)
    first = dict(model.encoder.bwd[0].named_parameters())
    assert not any(torch.equal(p, lm[f"rnn.{transfer.lm_name(n, 0)}"]) for n, p in first.items())  # fresh
    assert "backward layers start fresh" in capsys.readouterr().err
    assert tr.cfg.tokenizer == config.load(d / f"{cell}.yaml").tokenizer  # the LM's tokenizer (lower: true)


def test_a_classifier_takes_both_directions_of_a_bidirectional_lm(d):
    model, _ = built(clf_yaml(d, "bilstm"))
    lm = lm_weights(d, "bilstm")
    assert torch.equal(model.embed.emb.weight, lm["embed.emb.weight"])
    for i in range(2):
        for w in WEIGHTS:
            assert torch.equal(getattr(model.encoder.fwd[i], f"{w}_l0"), lm[f"rnn.{w}_l{i}"])
            assert torch.equal(getattr(model.encoder.bwd[i], f"{w}_l0"), lm[f"rnn_bw.{w}_l{i}"])


@pytest.mark.parametrize("separate", [False, True])
def test_encoder_layers_above_the_lm_start_fresh_and_train(d, separate, capsys):
    """ELMo's task BiLSTM: a 2-layer encoder from a 1-layer BiLM takes layer 1 from the LM (both
    directions); layer 2 is new (it reads both directions of layer 1 unless separate_directions)."""
    p = clf_yaml(d, "bilstm1", name=f"stack-{separate}")
    model, tr = built(p, values={"model.encoder.separate_directions": separate})
    lm = lm_weights(d, "bilstm1")
    for w in WEIGHTS:
        assert torch.equal(getattr(model.encoder.fwd[0], f"{w}_l0"), lm[f"rnn.{w}_l0"])
        assert torch.equal(getattr(model.encoder.bwd[0], f"{w}_l0"), lm[f"rnn_bw.{w}_l0"])
    assert model.encoder.fwd[1].weight_ih_l0.shape[1] == (8 if separate else 16)  # [4H, in]
    assert "encoder layer 2 starts fresh" in capsys.readouterr().err
    out = d / "runs" / f"stack-{separate}"
    run_pipeline(config.load(p, values={"model.encoder.separate_directions": separate}), output=str(out), quiet=True)
    clf = textrnn.load(out)
    assert clf.predict(["good fun"])[0].label in {"positive", "negative"}


@pytest.mark.parametrize("lengths", [[7], [7, 4, 2]])
def test_the_initialised_encoder_computes_the_lm_states_in_both_directions(d, lengths):
    """Not only equal tensors: the classifier's encoder, fed a text, yields the forward LM's top-layer
    states left to right and the backward LM's right to left (each row from its own last token)."""
    model, _ = built(clf_yaml(d, "bilstm"))
    lm = LanguageModel(config.load(d / "bilstm.yaml").model, model.embed.emb.num_embeddings, 0)
    lm.load_state_dict(lm_weights(d, "bilstm"))
    model.eval(), lm.eval()
    g = torch.Generator().manual_seed(0)
    T = max(lengths)
    ids = torch.randint(4, model.embed.emb.num_embeddings, (len(lengths), T), generator=g)
    n = torch.tensor(lengths)
    ids = ids.masked_fill(torch.arange(T)[None, :] >= n[:, None], 0)
    with torch.no_grad():
        out, _ = model.encoder(model.embed(ids), n)  # [B, T, 2H]
        for b, k in enumerate(lengths):
            row = ids[b : b + 1, :k]  # each text alone, no padding: the LM's own view
            fwd, _ = lm.features(row)  # [1, k, H]
            bwd, _ = lm.features(row.flip(1), backward=True)  # [1, k, H], right to left
            torch.testing.assert_close(out[b, :k, :8], fwd[0])
            torch.testing.assert_close(out[b, :k, 8:], bwd[0].flip(0))


@pytest.mark.parametrize("lm", ["lstm", "bilstm"])
def test_an_lm_continues_from_an_lm_with_every_weight(d, lm):
    """ULMFiT's middle stage: the LM trained further on the target task's own texts (labels ignored)."""
    bi = "true" if lm == "bilstm" else "false"
    body = LM.replace("text.txt", "sent.tsv") % ("lstm", 2, bi)
    p = write(
        d / f"more-{lm}.yaml",
        "name: more\n" + body.replace("model: {", f"model: {{init_from: {d / 'runs' / lm}, ") + TRAIN % 1,
    )
    model, _ = built(p)
    src = lm_weights(d, lm)
    own = model.state_dict()
    assert set(src) <= set(own) and all(torch.equal(own[k], t) for k, t in src.items())


def test_a_translate_encoder_takes_the_lm_embedding_and_layers(d):
    p = write(
        d / "mt.yaml",
        "name: mt\ntask: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
        f"model: {{init_from: {d / 'runs' / 'lstm'}, share_vocab: false, embedding: {{dim: 8}}, "
        "encoder: {hidden: 8, layers: 2, separate_directions: true}, decoder: {hidden: 8}}\n" + TRAIN % 1,
    )
    model, tr = built(p)
    lm = lm_weights(d, "lstm")
    assert torch.equal(model.src_embed.emb.weight, lm["embed.emb.weight"])
    for i in range(2):
        assert all(torch.equal(getattr(model.encoder.fwd[i], f"{w}_l0"), lm[f"rnn.{w}_l{i}"]) for w in WEIGHTS)
    assert tr.task.vocab.itos == json.loads((d / "runs" / "lstm" / "vocab.json").read_text())["itos"]
    assert "sleeps" in tr.task.vocab_tgt.stoi and "sleeps" not in tr.task.vocab.stoi  # its own target vocabulary


# ---------------------------------------------------------------- fine-tuning keys


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_gradual_unfreezing_trains_one_more_group_each_epoch(d, monkeypatch):
    """Groups: embedding, encoder layer 0, encoder layer 1, pooling + head. AdamW with weight decay:
    a frozen group must not move at all."""
    p = clf_yaml(d, "lstm", epochs=4, name="unfreeze")
    snaps = []
    orig = Trainer._end_epoch

    def spy(self, task, epoch):
        snaps.append(_params(self.core))
        orig(self, task, epoch)

    monkeypatch.setattr(Trainer, "_end_epoch", spy)
    over = {
        "train.unfreeze": "gradual",
        "train.discriminative": 2.6,
        "train.schedule": {"kind": "slanted"},
        "train.optimizer": {"name": "adamw", "lr": 0.02, "weight_decay": 0.1},
    }
    start = _params(built(p, over)[0])
    run_pipeline(config.load(p, values=over), output=str(d / "runs" / "unfreeze"), quiet=True)
    assert len(snaps) == 4
    groups = {"embed.": 0, "encoder.fwd.0.": 1, "encoder.bwd.0.": 1, "encoder.fwd.1.": 2, "encoder.bwd.1.": 2}
    for name, before in start.items():
        g = next((k for pre, k in groups.items() if name.startswith(pre)), 3)
        for epoch, snap in enumerate(snaps):  # trains from epoch 3 - g (0-based) on
            same = torch.equal(snap[name], before)
            assert same == (epoch < 3 - g), (name, epoch)


def test_discriminative_learning_rates_per_layer_group():
    model = Classifier(ClassifyModel(embedding={"dim": 4}, encoder={"hidden": 4, "layers": 2}), 20, 0, 2)
    t = config.Train(optimizer={"lr": 0.01}, discriminative=2.6)
    step = Step.build(model, lambda m, b: (m(b["ids"], b["lengths"]).logsumexp(-1).mean(), 1), t, torch.device("cpu"))
    groups = step.opt.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.01 / 2.6**3, 0.01 / 2.6**2, 0.01 / 2.6, 0.01])
    assert [g["layer"] for g in groups] == [0, 1, 2, 3] and step.layers == 4
    assert groups[0]["params"] == [model.embed.emb.weight]
    assert groups[1]["params"] == [*model.encoder.fwd[0].parameters(), *model.encoder.bwd[0].parameters()]
    assert groups[3]["params"] == [*model.pool.parameters(), *model.head.parameters()]
    before = _params(model)
    step({"ids": torch.tensor([[3, 4, 5], [6, 7, 0]]), "lengths": torch.tensor([3, 2])})
    after = _params(model)
    # Adam's first update is lr x sign(gradient) wherever the gradient is not tiny: its largest is the group's lr
    for g in groups:
        names = [n for n, p in model.named_parameters() if any(p is q for q in g["params"])]
        largest = max(float((after[n] - before[n]).abs().max()) for n in names)
        assert largest == pytest.approx(g["lr"], rel=1e-3)
    plain = Step.build(model, None, config.Train(), torch.device("cpu"))  # no fine-tuning keys: one group as before
    assert len(plain.opt.param_groups) == 1 and "layer" not in plain.opt.param_groups[0]


def test_every_parameter_is_in_exactly_one_layer_group():
    t = config.Train(discriminative=2.0)
    models = [
        Classifier(ClassifyModel(embedding={"dim": 4}, encoder={"hidden": 4, "layers": 3}), 20, 0, 2),
        LanguageModel(LMModel(embedding={"dim": 4}, hidden=4, layers=2, tie_weights=True, bidirectional=True), 20, 0),
        LanguageModel(
            LMModel(embedding={"dim": 4}, cell="minlstm", hidden=4, layers=2, softmax="adaptive", cutoffs=[8]), 20, 0
        ),
        Seq2Seq(
            Seq2SeqModel(embedding={"dim": 4}, encoder={"hidden": 4, "layers": 2}, decoder={"hidden": 4}),
            20,
            20,
            0,
            True,
        ),
        torch.nn.Linear(3, 2),  # no layer_groups: one group
    ]
    sizes = []
    for m in models:
        groups = layer_groups(m, t)
        ids = [id(p) for g in groups for p in g["params"]]
        assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in m.parameters()}
        sizes.append(len(groups))
    assert sizes == [5, 4, 4, 4, 1]


def test_the_slanted_triangular_schedule():
    """Howard & Ruder, eq. 3: T = 100 steps, cut_frac 0.1, ratio 32: lr/32 at step 0, lr at step 10,
    halfway down at step 55, lr/32 at step 100."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = make_optimizer(
        [{"params": [p], "lr": 0.01}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}],
        config.Optimizer(lr=0.1),
    )
    sched, per_batch = make_schedule(opt, config.Schedule(kind="slanted"), True, 100)
    assert per_batch
    seen = {}
    for t in range(101):
        seen[t] = [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx([0.01 / 32, 0.1 / 32])
    assert seen[5] == pytest.approx([0.01 * (1 + 0.5 * 31) / 32, 0.1 * (1 + 0.5 * 31) / 32])
    assert seen[10] == pytest.approx([0.01, 0.1])
    assert seen[55] == pytest.approx([0.01 * (1 + 0.5 * 31) / 32, 0.1 * (1 + 0.5 * 31) / 32])
    assert seen[100] == pytest.approx([0.01 / 32, 0.1 / 32])


# ---------------------------------------------------------------- a classifier from a classify run


def clf_run(d) -> Path:
    """A 1-layer BiLSTM classify run trained from scratch on sent.tsv (labels negative, positive)."""
    run = d / "runs" / "clf-run"
    if not run.exists():
        p = write(
            d / "plain.yaml", "name: plain\n" + CLF.replace("init_from: %s, ", "%s") % ("", "lstm", 1) + TRAIN % 1
        )
        run_pipeline(config.load(p), output=str(run), quiet=True)
    return run


def test_a_classifier_continues_from_a_classify_run_with_every_weight(d, capsys):
    """Intermediate-task transfer (IMDB classifier -> SST-2): the same labels, pooling and sizes: every
    tensor, the tokenizer and the vocabulary come from that run; the new run trains and predicts."""
    src = clf_run(d)
    p = clf_yaml(d, "clf-run", layers=1, name="from-clf", extra="tokenizer: {max_length: 5}\n")
    model, tr = built(p)
    there = lm_weights(d, "clf-run")
    own = model.state_dict()
    assert set(own) == set(there) and all(torch.equal(own[k], t) for k, t in there.items())
    assert "the pooling and the head (the same labels)" in capsys.readouterr().err
    saved = config.load(src / "pipeline.yaml")
    assert tr.cfg.vocab == saved.vocab and tr.cfg.tokenizer.lower == saved.tokenizer.lower
    assert tr.cfg.tokenizer.max_length == 5  # truncation may differ
    run, _ = run_pipeline(config.load(p), output=str(d / "runs" / "from-clf"), quiet=True)
    assert (run / "vocab.json").read_text() == (src / "vocab.json").read_text()
    assert textrnn.load(run).predict("good fun").label in {"positive", "negative"}


@pytest.mark.parametrize(
    "what, note",
    [
        ("labels", 'the head starts fresh (labels ["bad", "good"] here, ["negative", "positive"] in that run)'),
        ("pooling", 'the head starts fresh (model.pooling "mean" here, "max" in that run)'),
        ("head", "the head starts fresh (model.head has other sizes in that run)"),
        ("layers", "encoder layer 2 starts fresh (above that run's)"),
    ],
)
def test_what_does_not_fit_a_classify_run_starts_fresh(d, capsys, what, note):
    """Other labels (here of the same count: the head's shapes fit, its classes do not), pooling or head
    sizes: the encoder is still taken and the head starts fresh; an encoder layer above the run's
    starts fresh and the head is taken."""
    clf_run(d)
    values: dict = {"model.pooling": "mean"} if what == "pooling" else {"model.head.hidden": [6]}
    if what == "labels":
        text = (d / "sent.tsv").read_text().replace("\tpositive", "\tgood").replace("\tnegative", "\tbad")
        other = write(d / "other.tsv", text)
        values = {"data.train.path": str(other), "data.valid.path": str(other)}
    p = clf_yaml(d, "clf-run", layers=2 if what == "layers" else 1, name=f"fit-{what}")
    model, _ = built(p, values=None if what == "layers" else values)
    there = lm_weights(d, "clf-run")
    own = model.state_dict()
    assert torch.equal(own["embed.emb.weight"], there["embed.emb.weight"])
    enc = [k for k in there if k.startswith("encoder.")]
    assert enc and all(torch.equal(own[k], there[k]) for k in enc)
    assert note in " ".join(capsys.readouterr().err.split())
    top = [k for k in there if k.startswith(("pool.", "head."))]
    if what == "layers":  # layer 2 is new; the head reads 2H as before and is taken
        assert "encoder.fwd.1.weight_ih_l0" in own and "encoder.fwd.1.weight_ih_l0" not in there
        assert all(torch.equal(own[k], there[k]) for k in top)
    else:
        assert not any(k in own and own[k].shape == there[k].shape and torch.equal(own[k], there[k]) for k in top)


# ---------------------------------------------------------------- vocab.extend: the target's words


def ext_data(d) -> Path:
    """sent.tsv plus words the LMs never read: zesty 3 times, romp / slog / tedious once each."""
    extra = "zesty zesty film\tpositive\nzesty romp\tpositive\ntedious slog\tnegative\n"
    return write(d / "ext.tsv", (d / "sent.tsv").read_text() + extra)


def ext_values(d, n: int) -> dict:
    return {"vocab.extend": n, "data.train.path": str(ext_data(d))}


@pytest.mark.parametrize("n, added", [(2, ["zesty"]), (1, ["zesty", "romp", "slog", "tedious"])])
def test_vocab_extend_appends_the_train_words_the_lm_lacks(d, capsys, n, added):
    """ULMFiT's vocabulary: the LM's ids unchanged, then the train split's words counted >= n that it
    lacks (most frequent first, ties alphabetical); their embedding rows start at the mean of the LM's."""
    p = clf_yaml(d, "bilstm", name=f"ext-{n}")
    model, tr = built(p, values=ext_values(d, n))
    lm_itos = json.loads((d / "runs" / "bilstm" / "vocab.json").read_text())["itos"]
    assert tr.task.vocab.itos == lm_itos + added
    lm = lm_weights(d, "bilstm")["embed.emb.weight"]  # (V, 8)
    w = model.embed.emb.weight
    assert w.shape == (len(lm_itos) + len(added), 8) and torch.equal(w[: len(lm_itos)], lm)
    assert all(torch.allclose(row, lm.mean(0)) for row in w[len(lm_itos) :])
    assert f"{len(added):,} added words start at their mean" in " ".join(capsys.readouterr().err.split())
    assert torch.equal(model.encoder.fwd[0].weight_ih_l0, lm_weights(d, "bilstm")["rnn.weight_ih_l0"])
    run, _ = run_pipeline(config.load(p, values=ext_values(d, n)), output=str(d / "runs" / f"ext-{n}"), quiet=True)
    assert json.loads((run / "vocab.json").read_text())["itos"] == lm_itos + added
    clf = textrnn.load(run)  # reads its own vocabulary: the added words are known
    assert clf.unknown(["zesty romp", "zesty slog"]) == ([(0, 2), (0, 2)] if n == 1 else [(1, 2), (1, 2)])
    assert clf.predict("zesty romp").label in {"positive", "negative"}


def test_vocab_extend_counts_a_streamed_train_split_alike(d):
    values = ext_values(d, 1) | {"data.train.streaming": True, "data.stream_buffer": 4}
    _, tr = built(clf_yaml(d, "bilstm", name="ext-stream"), values=values)
    lm_itos = json.loads((d / "runs" / "bilstm" / "vocab.json").read_text())["itos"]
    assert tr.task.vocab.itos == lm_itos + ["zesty", "romp", "slog", "tedious"]
    assert tr.task.labels == ["negative", "positive"]


def test_a_run_from_an_extended_run_keeps_its_vocabulary_and_extends_it_only_when_asked(d, capsys):
    """The source's vocab.extend is not inherited: its vocabulary (with its added words) is taken as it
    is; vocab.extend here adds only what that vocabulary still lacks."""
    src = d / "runs" / "ext-src"
    p = clf_yaml(d, "bilstm", name="ext-src")
    run_pipeline(config.load(p, values=ext_values(d, 2)), output=str(src), quiet=True)
    src_itos = json.loads((src / "vocab.json").read_text())["itos"]
    q = clf_yaml(d, "ext-src", name="from-ext")
    _, tr = built(q, values={"data.train.path": str(ext_data(d))})
    assert tr.cfg.vocab.extend is None and tr.task.vocab.itos == src_itos
    model, tr = built(q, values=ext_values(d, 1))
    assert tr.task.vocab.itos == src_itos + ["romp", "slog", "tedious"]
    there = lm_weights(d, "ext-src")["embed.emb.weight"]
    assert torch.equal(model.embed.emb.weight[: len(src_itos)], there)
    assert "3 added words start at their mean" in " ".join(capsys.readouterr().err.split())


def test_an_extended_run_resumes_with_its_own_vocabulary(d, tmp_path):
    """--resume reads the run's saved (extended) vocabulary and builds the same embedding; it needs
    neither the LM run nor a second count."""
    lm = tmp_path / "lm"
    shutil.copytree(d / "runs" / "bilstm", lm)
    p = clf_yaml(d, "bilstm", name="ext-resume").read_text().replace(str(d / "runs" / "bilstm"), str(lm))
    p = write(d / "ext-resume.yaml", p)
    run, _ = run_pipeline(config.load(p, values=ext_values(d, 1)), output=str(tmp_path / "run"), quiet=True)
    itos = (run / "vocab.json").read_text()
    shutil.rmtree(lm)
    values = ext_values(d, 1) | {"train.epochs": 2}
    _, summary = run_pipeline(config.load(p, values=values), output=str(run), resume=True, quiet=True)
    assert summary["epochs"] == 2 and (run / "vocab.json").read_text() == itos


def test_vocab_extend_refusals(d, cli, tmp_path):
    """Without model.init_from, and in an lm pipeline: one line, exit 2, nothing written."""
    from test_bad_input import one_line_exit_2

    plain = write(
        d / "ext-plain.yaml", clf_yaml(d, "lstm").read_text().replace(f"init_from: {d / 'runs' / 'lstm'}, ", "")
    )
    one_line_exit_2(
        *cli("run", plain, "-o", tmp_path / "new", "--set", "vocab.extend=2")[::2],
        "vocab.extend: only with model.init_from",
    )
    lm = write(
        d / "ext-lm.yaml",
        "name: x\n" + LM.replace("model: {", f"model: {{init_from: {d / 'runs' / 'lstm'}, ") % ("lstm", 2, "false"),
    )
    one_line_exit_2(
        *cli("run", lm, "-o", tmp_path / "new", "--set", "vocab.extend=2")[::2],
        "vocab.extend: for a classify pipeline with model.init_from",
    )
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------- the run stands alone; resume


def test_the_fine_tuned_run_loads_and_predicts_without_the_lm_run(d, tmp_path):
    lm = tmp_path / "lm"
    shutil.copytree(d / "runs" / "lstm", lm)
    p = write(d / "alone.yaml", "name: alone\n" + CLF % (lm, "lstm", 2) + TRAIN % 2)
    run, _ = run_pipeline(config.load(p), output=str(tmp_path / "clf"), quiet=True)
    texts = ["a wonderful film", "I hated it", "zebra"]
    before = textrnn.load(run).predict_proba(texts)
    assert (run / "vocab.json").read_text() == (lm / "vocab.json").read_text()
    shutil.rmtree(lm)
    clf = textrnn.load(run)
    assert (clf.predict_proba(texts) == before).all()
    assert clf.predict("a wonderful film").label in ("positive", "negative")


def test_resume_with_gradual_unfreezing_is_exact_and_needs_no_lm_run(d, tmp_path):
    lm = tmp_path / "lm"
    shutil.copytree(d / "runs" / "lstm", lm)
    fine = "train: {epochs: 3, batch_size: 4, threads: 1, checkpoint_every: 2, unfreeze: gradual, discriminative: 2.6, "
    fine += "optimizer: {lr: 0.02}, schedule: {kind: slanted}}\n"
    p = write(d / "resume.yaml", "name: resume\n" + CLF % (lm, "lstm", 2) + fine)
    cfg = config.load(p)
    _, whole = run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)

    cut_at(cfg, tmp_path / "cut", 7, quiet=True)  # mid-epoch 2 (5 batches an epoch); the last checkpoint is at step 6
    shutil.rmtree(lm)
    _, resumed = run_pipeline(cfg, output=str(tmp_path / "cut"), resume=True, quiet=True)
    assert resumed["valid"] == whole["valid"]

    def history(run):
        return [(h["train_loss"], h["loss"], h["lr"]) for h in map(json.loads, (run / "metrics.jsonl").open())]

    assert history(tmp_path / "cut") == history(tmp_path / "whole")


# ---------------------------------------------------------------- the encoder's separate directions


def test_separate_directions_stack_each_direction_on_its_own():
    torch.manual_seed(0)
    enc = PaddedEncoder(5, config.Encoder(hidden=3, layers=2, separate_directions=True)).eval()
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 4, 1])
    out, h_n = enc(x, lengths)  # [B, T, 6], [4, B, 3]
    assert out.shape == (3, 6, 6) and h_n.shape == (4, 3, 3)
    fwd = enc.fwd[1](enc.fwd[0](x)[0])[0]
    bwd = reverse_within(enc.bwd[1](enc.bwd[0](reverse_within(x, lengths))[0])[0], lengths)
    mask = (torch.arange(6)[None, :] < lengths[:, None])[..., None]
    torch.testing.assert_close(out, torch.cat([fwd, bwd], -1) * mask)
    for b in range(3):  # one by one, no padding: the same
        alone, _ = enc(x[b : b + 1, : lengths[b]], lengths[b : b + 1])
        torch.testing.assert_close(alone[0], out[b, : lengths[b]])


@pytest.mark.parametrize("cell", ["lstm", "minlstm"])
def test_inspect_steps_the_separate_stacks_by_hand(cell):
    from textrnn.tools import probe

    torch.manual_seed(0)
    cfg = ClassifyModel(
        embedding={"dim": 4}, encoder={"cell": cell, "hidden": 3, "layers": 3, "separate_directions": True}
    )
    model = Classifier(cfg, 20, 0, 2)
    recs = probe.layers(model, None, torch.tensor([5, 6, 7, 8]))
    assert [(r["layer"], r["direction"]) for r in recs] == [(i, d) for i in (1, 2, 3) for d in ("forward", "backward")]
    assert max(r["max_abs_diff"] for r in recs) < 1e-5
    with pytest.raises(UserError, match="separate_directions needs impl: padded"):
        config.validate(
            {
                "name": "x",
                "data": {"train": {"path": "t"}},
                "model": {"encoder": {"impl": "packed", "separate_directions": True}},
            },
            "p.yaml",
        )


# ---------------------------------------------------------------- bad input: one line, exit 2, no run directory


@pytest.mark.parametrize(
    "lm, sets, expect",
    [
        ("missing", [], "model.init_from: "),
        ("not-a-run", [], "not a textrnn run directory"),
        ("clf-run", ["model.encoder.hidden=16"], "model.encoder.hidden 16 here, model.encoder.hidden 8 in that run"),
        ("clf-run", ["model.encoder.cell=gru"], 'model.encoder.cell "gru" here, model.encoder.cell "lstm" in that run'),
        (
            "clf-run",
            ["model.encoder.bidirectional=false"],
            "bidirectional false here, model.encoder.bidirectional true in that run",
        ),
        ("lstm", ["model.embedding.dim=12"], "model.embedding.dim 12 here, model.embedding.dim 8 in the LM"),
        ("lstm", ["model.encoder.hidden=16"], "model.encoder.hidden 16 here, model.hidden 8 in the LM"),
        ("lstm", ["model.encoder.layers=1"], "model.encoder.layers 1 here, model.layers 2 in the LM"),
        ("lstm", ["model.encoder.cell=gru"], 'model.encoder.cell "gru" here, model.cell "lstm" in the LM'),
        ("mingru", [], 'model.encoder.cell "lstm" here, model.cell "mingru" in the LM'),
        ("bilstm", ["model.encoder.separate_directions=false"], "set model.encoder.separate_directions: true"),
        ("lstm", ["tokenizer.lower=false"], "tokenizer.lower: false here, true in the LM run"),
        ("lstm", ["vocab.min_freq=2"], "vocab.min_freq: 2 here, 1 in the LM run"),
        ("lstm", ["model.embedding.pretrained=v.txt"], "model.embedding.pretrained: not with model.init_from"),
        ("lstm", ["model.embedding.freeze=true"], "model.embedding.freeze: not with model.init_from"),
        ("lstm", ["vocab.extend=0"], "vocab.extend: Input should be greater than or equal to 1 (got 0)"),
        ("lstm", ["data.train.streaming=true", "train.schedule.kind=slanted"], "slanted: needs the epoch's length"),
    ],
)
def test_bad_init_from_is_one_line_exit_2_and_no_run_directory(d, cli, tmp_path, lm, sets, expect):
    from test_bad_input import one_line_exit_2

    (d / "runs" / "not-a-run").mkdir(exist_ok=True)
    if lm == "clf-run":
        clf_run(d)
    p = clf_yaml(d, lm, name=f"bad-{lm}")
    args = [x for s in sets for x in ("--set", s)]
    one_line_exit_2(*cli("run", p, "-o", tmp_path / "new", *args)[::2], expect)
    assert not (tmp_path / "new").exists()


def test_lm_and_chat_refusals(d, cli, tmp_path):
    from test_bad_input import one_line_exit_2

    p = write(
        d / "lm-bad.yaml",
        "name: x\n"
        + LM.replace("model: {", f"model: {{init_from: {d / 'runs' / 'lstm'}, ") % ("lstm", 1, "false")
        + TRAIN % 1,
    )
    one_line_exit_2(*cli("run", p, "-o", tmp_path / "new")[::2], "model.layers 1 here, model.layers 2 in the LM")
    p = write(d / "lm-from-clf.yaml", p.read_text().replace(str(d / "runs" / "lstm"), str(clf_run(d))))
    one_line_exit_2(
        *cli("run", p, "-o", tmp_path / "new")[::2], "a classify run; task lm starts from a language model (task: lm)"
    )
    p = write(
        d / "chat-bad.yaml",
        "name: x\ntask: chat\ndata: {train: {path: sent.tsv, format: turns}}\n"
        f"model: {{init_from: {d / 'runs' / 'lstm'}}}\n",
    )
    one_line_exit_2(*cli("run", p, "-o", tmp_path / "new")[::2], "model.init_from: not for chat")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["imdb-transfer", "sst2-transfer"])
def test_the_shipped_transfer_pipelines_fit_the_shipped_lm(name, monkeypatch):
    """Their model and text settings fit pipelines/imdb-lm.yaml's (what init_from checks against the run)."""
    monkeypatch.setenv("TEXTRNN_CORPORA", "/c")
    monkeypatch.setenv("TEXTRNN_HELDOUT", "/h")
    cfg, lm = config.load(ROOT / "pipelines" / f"{name}.yaml"), config.load(ROOT / "pipelines" / "imdb-lm.yaml")
    assert cfg.model.init_from == "runs/imdb-lm" and lm.output is None and lm.name == "imdb-lm"
    transfer.check_sizes(cfg, lm, Path("runs/imdb-lm"))
    assert transfer.inherit(cfg, lm, "imdb-lm").tokenizer.model_dump() == {
        **lm.tokenizer.model_dump(),
        "max_length": cfg.tokenizer.max_length,
    }
    t = cfg.train  # what measured best on valid with the CPU LM (docs/transfer.md): all layers from the start
    assert (t.unfreeze, t.discriminative, t.schedule.kind, cfg.model.pooling) == ("none", None, "plateau", "concat")
    assert 0.001 <= t.optimizer.lr <= 0.004


def test_the_shipped_middle_stage_continues_the_shipped_lm(monkeypatch):
    """pipelines/sst2-lm.yaml (ULMFiT's middle stage) has imdb-lm.yaml's model, so init_from takes every weight."""
    monkeypatch.setenv("TEXTRNN_CORPORA", "/c")
    mid, lm = config.load(ROOT / "pipelines" / "sst2-lm.yaml"), config.load(ROOT / "pipelines" / "imdb-lm.yaml")
    assert mid.task == "lm" and mid.model.init_from == "runs/imdb-lm"
    transfer.check_sizes(mid, lm, Path("runs/imdb-lm"))
    assert transfer.inherit(mid, lm, "imdb-lm").tokenizer == lm.tokenizer
