"""Train → save → load → predict round trips on the shipped sample, resume, and the CLI's errors."""

import json

import pytest
import torch
from safetensors.torch import load_file

from textrnn import config
from textrnn.training.trainer import run_pipeline

from helpers import ROOT, cut_at, write

FAST = ["train.epochs=3", "model.embedding.dim=16", "model.encoder.hidden=16", "train.checkpoint_every=5"]


def sample_cfg(*extra):
    return config.load(ROOT / "tests/data/sentiment.yaml", FAST + list(extra))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "sentiment"
    _, summary = run_pipeline(sample_cfg(), output=str(run))
    return run, summary


def test_run_directory_contract(trained):
    run, summary = trained
    for f in [
        "pipeline.yaml",
        "vocab.json",
        "labels.json",
        "model.safetensors",
        "last.pt",
        "metrics.jsonl",
        "summary.json",
        "curves.png",
        "confusion.png",
        "textrnn.json",
    ]:
        assert (run / f).is_file(), f
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["epoch"] == 1
    s = json.loads((run / "summary.json").read_text())
    assert {"valid", "test", "tokens_per_s", "train_seconds"} <= set(s)
    assert s["test"]["accuracy"] > 0.5
    assert not list(run.glob(".*"))  # no temporary files left behind


def test_predict_obvious_cases_batched_equals_one_by_one(trained, cli):
    run, _ = trained
    texts = [
        "an absolute delight",
        "a dull, lifeless mess",
        "the film is superb and I loved it",
        "boring, a waste of time",
        "zzz unknownword",
    ]
    code, out, err = cli("predict", run, *texts)
    assert code == 0, err
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert [r[0] for r in rows[:2]] == ["positive", "negative"]
    for text, (label, prob) in zip(texts, rows):
        c1, o1, _ = cli("predict", run, text)
        label1, prob1 = o1.strip().split("\t")
        assert label1 == label and abs(float(prob1) - float(prob)) < 1e-4


def test_predict_json_and_stdin(trained, cli):
    run, _ = trained
    code, out, _ = cli("predict", run, "--json", stdin="an absolute delight\n\nfine\n".encode())
    rows = [json.loads(x) for x in out.strip().splitlines()]
    assert code == 0 and len(rows) == 3
    assert set(rows[0]["probs"]) == {"negative", "positive"}
    assert abs(sum(rows[0]["probs"].values()) - 1) < 1e-4
    code, _, err = cli("predict", run, stdin=b"good\n\xff\xfe bad\n")
    assert code == 2 and "<stdin>:2: bytes that are not valid UTF-8" in err


def test_evaluate_and_info(trained, cli, tmp_path):
    run, summary = trained
    code, out, _ = cli("evaluate", run)
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    other = write(tmp_path / "o.tsv", "text\tlabel\nan absolute delight\tpositive\na dull, lifeless mess\tnegative\n")
    code, out, _ = cli("evaluate", run, "--set", f"data.test.path={other}")
    assert code == 0 and json.loads(out)["examples"] == 2
    code, out, _ = cli("info", run)
    assert code == 0 and "parameters" in out and "negative, positive" in out


def test_same_seed_same_metrics(trained, tmp_path):
    _, summary = trained
    _, again = run_pipeline(sample_cfg(), output=str(tmp_path / "again"))
    assert again["valid"] == summary["valid"] and again["test"] == summary["test"]


def test_resume_after_interruption_matches_uninterrupted(trained, tmp_path):
    run, summary = trained
    out = tmp_path / "resumed"
    cut_at(sample_cfg(), out, 23)  # mid-epoch 2; the last checkpoint is at step 20
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    _, resumed = run_pipeline(sample_cfg(), output=str(out), resume=True)
    assert resumed["valid"] == summary["valid"] and resumed["test"] == summary["test"]
    a, b = load_file(run / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (out / "metrics.jsonl").read_text().count("\n") == 3


def test_resume_refuses_changed_pipeline_and_missing_checkpoint(trained, tmp_path, cli):
    run, _ = trained
    code, _, err = cli("run", ROOT / "tests/data/sentiment.yaml", "--output", tmp_path / "none", "--resume")
    assert code == 2 and "nothing to resume" in err
    code, _, err = cli(
        "run",
        ROOT / "tests/data/sentiment.yaml",
        "--output",
        run,
        "--resume",
        *sum((["--set", s] for s in FAST), []),
        "--set",
        "model.encoder.hidden=8",
    )
    assert code == 2 and "pipeline changed" in err
    code, _, err = cli(  # its best score so far is in the metric it selected by
        "run", ROOT / "tests/data/sentiment.yaml", "--output", run, "--resume", "--set", "train.select=loss"
    )
    assert code == 2 and "pipeline changed" in err and "select" in err


def _pipeline(tmp_path, train_rows, extra=""):
    write(tmp_path / "train.tsv", "text\tlabel\n" + train_rows)
    write(tmp_path / "valid.tsv", "text\tlabel\ngood\tpos\nbad\tneg\n")
    return write(
        tmp_path / "p.yaml",
        f"name: t\ndata:\n  train: {{path: train.tsv}}\n  valid: {{path: valid.tsv}}\ntrain: {{epochs: 1}}\n{extra}",
    )


def test_cli_errors_are_one_line_exit_2(tmp_path, cli):
    cases = [
        (_pipeline(tmp_path / "a", "good\tpos\nfine\tpos\n"), "one class only ('pos')"),
        (
            _pipeline(tmp_path / "b", "good\tpos\nbad\tneg\n", "model:\n  encoder: {hiden: 3}\n"),
            "unknown key 'model.encoder.hiden' (did you mean 'model.encoder.hidden'?)",
        ),
        (_pipeline(tmp_path / "c", "good\tpos\nbad\tneg\n", "data:\n  train: {path: x.tsv}\n"), "x.tsv: no such file"),
        (tmp_path / "missing.yaml", "missing.yaml: no such pipeline file"),
    ]
    for path, message in cases:
        code, out, err = cli("run", path, "--output", tmp_path / "run")
        assert code == 2, (path, err)
        assert message in err, err
        assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ")
    code, _, err = cli("predict", tmp_path, "hello")
    assert code == 2 and "not a textrnn run directory" in err


def test_unknown_valid_label_is_named(tmp_path, cli):
    p = _pipeline(tmp_path, "good\tpos\nbad\tbad_label\n")
    code, _, err = cli("run", p, "--output", tmp_path / "run")
    assert code == 2 and "label 'neg' does not occur in the train split" in err


def test_inference_precision_option(trained, cli):
    from textrnn.training import precision

    run, _ = trained
    texts = ["an absolute delight", "a dull, lifeless mess", "the film is superb and I loved it"]
    code, fp32, err = cli("predict", run, "--json", *texts)
    assert code == 0, err
    code, auto, err = cli("predict", run, "--json", "--precision", "auto", *texts)
    assert code == 0, err
    code, bf16, err = cli("predict", run, "--json", "--precision", "bf16", *texts)
    if precision.cpu_native_bf16():  # autocast bf16: the same labels, probabilities to bf16's precision
        assert code == 0, err
        a, b = [[json.loads(x) for x in out.strip().splitlines()] for out in (fp32, bf16)]
        assert [r["label"] for r in a] == [r["label"] for r in b]
        assert all(abs(p - q) < 0.05 for r, s in zip(a, b) for p, q in zip(r["probs"].values(), s["probs"].values()))
    else:  # emulated bf16 would be tens of times slower: refused, and auto stays in float32
        assert code == 2 and "no native bfloat16" in err and "--precision" in err
        assert auto == fp32
    for bad in (["--precision", "fp16"], ["--precision", "bf16", "--quantize"], ["--precision", "fp64"]):
        code, _, err = cli("predict", run, *bad, "fine")
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)
