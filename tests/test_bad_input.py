"""The bad-input catalogue: pipeline values, run-directory damage, command options, REPL commands and
data files, each ending in one line and exit 2 (never a traceback, never a changed file); plus a
property test that feeds random values to every numeric field of every schema."""

import json
import shutil
import typing

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from safetensors.torch import load_file, save_file

from textrnn import config, rundir
from textrnn.errors import UserError

from helpers import write

TRAIN = "train: {epochs: 2, batch_tokens: 60, optimizer: {lr: 0.02}, threads: 1, checkpoint_every: 0}\n"
PIPES = {
    "classify": "task: classify\ndata: {train: {path: s.tsv}, valid: {path: s.tsv}}\ntokenizer: {kind: whitespace}\n"
    "model: {embedding: {dim: 8}, encoder: {hidden: 8}}\n",
    "lm": "task: lm\ndata: {train: {path: l.txt}, valid: {path: l.txt}}\ntokenizer: {kind: whitespace}\n"
    "model: {embedding: {dim: 8}, hidden: 8, layers: 1, bptt: 5}\n",
    "translate": "task: translate\ndata: {train: {src: m.de, tgt: m.en}, valid: {src: m.de, tgt: m.en}}\n"
    "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, encoder: {hidden: 8}, decoder: {hidden: 8}}\n",
    "chat": "task: chat\ndata: {train: {path: c.jsonl, format: turns}}\ntokenizer: {kind: whitespace}\n"
    "model: {embedding: {dim: 8}, encoder: {hidden: 8}, decoder: {hidden: 8}}\n",
}


def _files(d):
    write(d / "s.tsv", "text\tlabel\n" + "good film\tpos\nbad film\tneg\ngreat fun\tpos\ndull mess\tneg\n" * 5)
    write(d / "l.txt", "the cat sat on the mat\na dog and a cat\n" * 10)
    write(d / "m.de", "ein hund\neine katze\n" * 10)
    write(d / "m.en", "a dog\na cat\n" * 10)
    write(d / "c.jsonl", '{"turns": ["hello", "hi there", "how are you", "fine"]}\n' * 10)
    return {task: write(d / f"{task}.yaml", f"name: {task}\n{body}{TRAIN}") for task, body in PIPES.items()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    return d, _files(d)


@pytest.fixture(scope="module")
def runs(folder):
    from textrnn.training.trainer import run_pipeline

    d, pipes = folder
    return {
        task: run_pipeline(config.load(pipes[task]), output=str(d / "runs" / task), quiet=True)[0]
        for task in ("classify", "lm", "translate")
    }


def one_line_exit_2(code, err, expect=""):
    """Exit 2 and one error line (a `run` may have printed what it read before it)."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err and lines[-1].startswith("error: "), err
    assert sum(line.startswith("error") for line in lines) == 1 and expect in lines[-1], (expect, err)


# ---------------------------------------------------------------- every numeric field of every schema


def _numeric_fields(cls: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, "int" | "float" | "ints") for every number (or list of numbers) in a schema."""
    out = []
    for name, f in cls.model_fields.items():
        ann = f.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
        base = args[0]
        if typing.get_origin(base) is typing.Annotated:
            base = typing.get_args(base)[0]
        if typing.get_origin(base) is list:
            inner = typing.get_args(base)[0]
            if typing.get_origin(inner) is typing.Annotated:
                inner = typing.get_args(inner)[0]
            if inner is int:
                out.append((prefix + name, "ints"))
        elif isinstance(base, type) and issubclass(base, BaseModel):
            out += _numeric_fields(base, f"{prefix}{name}.")
        elif base in (int, float):
            out.append((prefix + name, base.__name__))
    return out


def _field_cases():
    """(task, key, bad value) for every numeric field: the shared sections with a classifier, each
    task's model: and generate: sections with that task."""
    kinds = {"data.train.limit": ("classify", "int")}
    for part in ("data", "tokenizer", "vocab", "train"):
        for n, t in _numeric_fields(config.Pipeline.model_fields[part].annotation):
            kinds[f"{part}.{n}"] = ("classify", t)
    for task in ("classify", "lm", "translate", "chat"):
        for n, t in _numeric_fields(config.MODEL_SCHEMAS[task]):
            kinds.setdefault(f"model.{n}", (task, t))
        if task in config.GENERATE_SCHEMAS:
            for n, t in _numeric_fields(config.GENERATE_SCHEMAS[task]):
                kinds.setdefault(f"generate.{n}", (task, t))
    bad = {"int": ["-1", "x", "1.5"], "float": ["-1", ".nan", ".inf"], "ints": ["[-5]", "[x]", "7"]}
    return [(task, key, value) for key, (task, kind) in sorted(kinds.items()) for value in bad[kind]]


# the values a hostile user tried, as given, and sizes torch cannot allocate (refused when the model is built)
FIELD_CASES = _field_cases() + [
    ("classify", "model.encoder.hidden", "0"),
    ("classify", "train.optimizer.lr", ".nan"),
    ("classify", "train.batch_size", "0"),
    ("classify", "train.seed", str(2**70)),
    ("classify", "train.threads", "-1"),
    ("classify", "model.embedding.dropout", "1.5"),
    ("lm", "model.bptt", "0"),
    ("lm", "model.eval_batch", "0"),
    ("classify", "tokenizer.vocab_size", "0"),
    ("classify", "model.head.hidden", "[-5]"),
    ("classify", "train.batch_tokens", "0"),
    ("classify", "data.valid_fraction", "-1"),
    ("classify", "data.train.limit", "-700"),
    ("classify", "train.epochs", "0"),
    ("classify", "train.patience", "0"),
    ("classify", "model.encoder.hidden", "100000000000"),
    ("lm", "model.hidden", "100000000000"),
]


@pytest.mark.parametrize("task,key,value", FIELD_CASES, ids=[f"{k}={v}" for _, k, v in FIELD_CASES])
def test_every_numeric_field_refuses_bad_values(folder, cli, task, key, value):
    d, pipes = folder
    out = d / "never"
    code, _, err = cli("run", pipes[task], "-o", out, "--set", f"{key}={value}")
    one_line_exit_2(code, err, "model: cannot be built" if value == "100000000000" else key.split(".")[-1])
    assert not out.exists()


def test_the_catalogue_is_large():
    assert len(FIELD_CASES) >= 150


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(sorted({(t, k) for t, k, _ in FIELD_CASES})),
    value=st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=5),
        st.booleans(),
        st.none(),
        st.lists(st.integers(-3, 3), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),
)
def test_random_values_give_a_pipeline_or_one_line(field, value):
    task, key = field
    raw = {"name": "p", "task": task, "data": {"train": {"path": "x.tsv"}}}
    config.apply_value(raw, key, value)
    try:
        cfg = config.validate(raw, "p.yaml")
    except UserError as e:
        assert "\n" not in str(e) and str(e).startswith("p.yaml: ")
    else:
        assert isinstance(cfg, config.Pipeline)


# ---------------------------------------------------------------- run-directory damage


def _nan_weights(run):
    w = load_file(str(run / "model.safetensors"))
    k = next(iter(w))
    w[k] = torch.full_like(w[k], float("nan"))
    save_file(w, str(run / "model.safetensors"))


DAMAGE = [
    (
        "vocab.json",
        lambda r: (r / "vocab.json").write_text("garbage"),
        False,
        "vocab.json: changed since textrnn wrote it",
    ),
    ("vocab.json", lambda r: (r / "vocab.json").write_text("garbage"), True, "vocab.json: not a textrnn vocabulary"),
    (
        "vocab.json",
        lambda r: (r / "vocab.json").write_text('{"itos": [1, 2]}'),
        True,
        "vocab.json: not a textrnn vocabulary",
    ),
    (
        "vocab.json",
        lambda r: (r / "vocab.json").write_text(
            json.dumps({"itos": json.loads((r / "vocab.json").read_text())["itos"] + ["extra"]})
        ),
        True,
        "vocab.json",
    ),
    ("labels.json", lambda r: (r / "labels.json").write_text("{}"), True, "labels.json: not a list of two or more"),
    ("labels.json", lambda r: (r / "labels.json").unlink(), False, "labels.json: missing"),
    ("textrnn.json", lambda r: (r / "textrnn.json").write_text("garbage"), False, "textrnn.json: unreadable"),
    ("textrnn.json", lambda r: (r / "textrnn.json").write_text("[]"), False, "textrnn.json: unreadable"),
    ("textrnn.json", lambda r: (r / "textrnn.json").write_text('{"format": 99}'), False, "run format 99"),
    ("pipeline.yaml", lambda r: (r / "pipeline.yaml").write_text("name: [unclosed\n"), False, "pipeline.yaml: line"),
    ("pipeline.yaml", lambda r: (r / "pipeline.yaml").write_text("- a list\n"), False, "pipeline.yaml: not a pipeline"),
    (
        "model.safetensors",
        lambda r: (r / "model.safetensors").write_bytes(b"\0" * 30),
        False,
        "model.safetensors: changed",
    ),
    ("model.safetensors", lambda r: (r / "model.safetensors").write_bytes(b"\0" * 30), True, "unreadable weights file"),
    ("model.safetensors", _nan_weights, True, "model.safetensors: embed.emb.weight holds NaN"),
    ("model.safetensors", lambda r: (r / "model.safetensors").unlink(), False, "model.safetensors: missing"),
    ("manifest.json", lambda r: (r / "manifest.json").write_text("garbage"), False, "manifest.json: unreadable"),
    (
        "summary.json",
        lambda r: (r / "summary.json").write_text("garbage"),
        True,
        "summary.json: not a run summary (not valid JSON)",
    ),
]


@pytest.mark.parametrize("name,damage,accept,expect", DAMAGE, ids=[f"{n}-{e[:20]}" for n, _, _, e in DAMAGE])
def test_damaged_run_directory_is_named(runs, tmp_path, cli, name, damage, accept, expect):
    run = tmp_path / "run"
    shutil.copytree(runs["classify"], run)
    damage(run)
    if accept:
        rundir.write_manifest(run)  # what `textrnn info RUN --accept-edits` does for an intended edit
    args = ("info", run) if name == "summary.json" else ("predict", run, "good film")  # predict never reads it
    code, _, err = cli(*args)
    one_line_exit_2(code, err, expect)


def test_accept_edits_and_the_remaining_run_files(runs, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(runs["classify"], run)
    labels = json.loads((run / "labels.json").read_text())
    (run / "labels.json").write_text(json.dumps(labels[::-1]))  # an intended rename of the classes
    one_line_exit_2(*cli("predict", run, "good film")[::2], "labels.json: changed")
    code, out, err = cli("info", run, "--accept-edits")
    assert code == 0 and "manifest written anew" in err
    assert cli("predict", run, "good film")[0] == 0
    (run / "metrics.jsonl").write_text("garbage\n")
    one_line_exit_2(*cli("compare", run, runs["classify"])[::2], "metrics.jsonl:1: not a JSON object")
    (run / "last.pt").write_bytes(b"garbage")
    one_line_exit_2(*cli("run", run / "pipeline.yaml", "-o", run, "--resume")[::2], "last.pt: unreadable checkpoint")
    torch.save({"model": {}}, run / "last.pt")
    one_line_exit_2(*cli("run", run / "pipeline.yaml", "-o", run, "--resume")[::2], "last.pt: not a checkpoint")
    one_line_exit_2(*cli("predict", tmp_path, "x")[::2], "not a textrnn run directory")
    one_line_exit_2(*cli("predict", tmp_path / "nothing", "x")[::2], "no such run directory")


# ---------------------------------------------------------------- command options and the REPL


def test_command_options(runs, tmp_path, cli):
    c, lm, mt = runs["classify"], runs["lm"], runs["translate"]
    f = write(tmp_path / "in.de", "ein hund\n")
    cases = [
        (("predict", c, "--device", "gpu", "x"), "device 'gpu'"),
        (("predict", c, "--precision", "fp64", "x"), "--precision fp64"),
        (("predict", c, "--quantize", "--precision", "bf16", "x"), "--precision bf16"),  # either message
        (("translate", mt, f, "-o", tmp_path), "is a folder"),
        (("translate", mt, f, "-o", f), "would overwrite an input"),
        (("translate", mt, f, "--alpha", "nan"), "alpha"),
        (("translate", mt, f, "--beam", "0"), "beam"),
        (("translate", mt, f, "--batch-tokens", "0"), "batch_tokens"),
        (("translate", mt, f, "--n-best", "3", "--beam", "2"), "n-best 3 is more than beam 2"),
        (("generate", lm, "--temperature", "nan"), "--temperature nan"),
        (("generate", lm, "--max-tokens", "-5"), "--max-tokens -5"),
        (("generate", lm, "--top-p", "5"), "--top-p 5.0"),
        (("generate", lm, "--top-k", "-4"), "--top-k -4"),
        (("generate", lm, "--num", "0"), "--num 0"),
        (("generate", lm, "--seed", "-1"), "--seed -1"),
        (("complete", lm, "the", "-k", "0"), "-k 0"),
        (("chat", mt, "--beam", "0"), "beam"),
        (("chat", mt, "--top-p", "5"), "top_p"),
        (("chat", mt, "--top-k", "-4"), "top_k"),
        (("chat", mt, "--temperature", "-1"), "temperature"),
        (("evaluate", c), "declares no test split"),
        (("inspect", c, "good", "-o", f), "exists and is not a folder"),
        (("compare", c), "two or more run directories"),
        (("predict", lm, "x"), "predict needs a classifier"),
        (("translate", c, f), "translate needs a translation model"),
        (("translate", mt, tmp_path, f), "a folder, neither a file nor a run directory"),
        (("translate", mt, c, f), "translate needs a translation model"),  # an ensemble's member
        (("predict", c, "--with", lm, "x"), "predict needs a classifier"),
        (("predict", c, "--with", tmp_path, "x"), "not a textrnn run directory"),
        (("evaluate", c, mt), "share a task"),
        (("evaluate", lm, lm), "ensembles are of classify, translate or chat runs"),
        (("run", tmp_path / "nope.yaml"), "no such pipeline file"),
        (("run", c / "pipeline.yaml", "--set", "novalue"), "expected key.sub=value"),
    ]
    for args, expect in cases:
        code, _, err = cli(*args, stdin=b"")
        one_line_exit_2(code, err, expect)
    assert f.read_text() == "ein hund\n"


def test_repl_refuses_bad_settings_and_goes_on(runs, cli):
    mt = runs["translate"]
    code, out, err = cli(
        "chat",
        mt,
        stdin=b"/set temperature nan\n/set repetition_penalty 0\n/set beam 0\n/set top_p 5\n/set top_k -1\nein hund\n",
    )
    assert code == 0 and out.count("\n") == 1 and "Traceback" not in err  # one reply line (maybe empty)
    assert err.count("is out of range") == 5
    code, _, err = cli("chat", mt, stdin=b"ein hund\n\xff\xfe\n")
    one_line_exit_2(code, err, "<stdin>:2: bytes that are not valid UTF-8")


# ---------------------------------------------------------------- data files


def test_data_files(folder, tmp_path, cli):
    d, pipes = folder
    base = "name: t\ndata: {train: {path: %s}, valid: {path: %s}}\ntokenizer: {kind: whitespace}\n" + TRAIN
    cases = [
        ("r.tsv", "text\tlabel\ngood\tpos\nbad\tneg\textra\n", "r.tsv:3: 3 fields where the first row has 2"),
        ("e.tsv", "text\tlabel\ngood\tpos\nbad\t\n", "e.tsv:3: the label is empty"),
        (
            "j.jsonl",
            '{"text": "good", "label": "pos"}\n{"text": ["a", "list"], "label": "neg"}\n',
            "j.jsonl:2: the text is a list",
        ),
        (
            "n.jsonl",
            '{"text": "good", "label": "pos"}\n{"text": "bad", "label": null}\n',
            "n.jsonl:2: the label is empty",
        ),
        ("z.tsv.gz", "not gzip at all", "z.tsv.gz"),
        ("empty.tsv", "", "no examples"),
    ]
    for name, text, expect in cases:
        write(tmp_path / name, text)
        p = write(tmp_path / f"{name}.yaml", base % (name, name))
        code, _, err = cli("run", p, "-o", tmp_path / f"run-{name}")
        one_line_exit_2(code, err, expect)
        assert not (tmp_path / f"run-{name}").exists()
    write(tmp_path / "s.tsv", "text\tlabel\n" + "good film\tpos \nbad film\t neg\ngreat\tpos\n" * 4)
    p = write(tmp_path / "s.yaml", base % ("s.tsv", "s.tsv"))
    code, _, err = cli("run", p, "-o", tmp_path / "strip")
    assert code == 0, err
    assert json.loads((tmp_path / "strip" / "labels.json").read_text()) == ["neg", "pos"]  # labels are stripped


def test_damaged_sentencepiece_model_is_named(folder, tmp_path, cli):
    d, pipes = folder
    run = tmp_path / "sp"
    code, _, err = cli(
        "run",
        pipes["classify"],
        "-o",
        run,
        "--set",
        "tokenizer.kind=sentencepiece",
        "--set",
        "tokenizer.vocab_size=30",
        "--set",
        "train.epochs=1",
    )
    assert code == 0, err
    (run / "sentencepiece.model").write_bytes(b"garbage")
    one_line_exit_2(*cli("predict", run, "good film")[::2], "sentencepiece.model: changed")
    rundir.write_manifest(run)
    one_line_exit_2(*cli("predict", run, "good film")[::2], "sentencepiece.model: not a sentencepiece model")
