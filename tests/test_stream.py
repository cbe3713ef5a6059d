"""data.train.streaming: training from datasets' IterableDataset, buffer by buffer, never loading the split."""

import json

import torch
from safetensors.torch import load_file

from textrnn import config
from textrnn.data import sources
from textrnn.tasks.base import build_task
from textrnn.training.trainer import run_pipeline

from helpers import ROOT, cut_at, write

FAST = [
    "train.epochs=2",
    "model.embedding.dim=16",
    "model.encoder.hidden=16",
    "train.checkpoint_every=5",
    "train.threads=1",
    "data.train.streaming=true",
    "data.stream_buffer=120",
    "data.stream_sample=50",
]


def cfg(*extra, pipeline="sentiment.yaml"):
    folder = ROOT / "tests/data"  # the tests' own data
    return config.load(folder / pipeline, FAST + list(extra))


def test_stream_reads_every_example_once_and_shuffles(tmp_path):
    c = cfg()
    s = sources.Stream(c.data.train, {}, labelled=True)
    whole = sources.read(c.data.train.model_copy(update={"streaming": False}), {}, labelled=True)
    plain = [t for t, _ in s.rows(None)]
    assert plain == whole.texts
    shuffled = [t for t, _ in s.rows(seed=3)]
    assert sorted(shuffled) == sorted(plain) and shuffled != plain
    sizes = [len(t) for t, _ in s.chunks(120, seed=3)]
    assert sum(sizes) == len(plain) and max(sizes) == 120


def test_streamed_training_counts_the_whole_vocabulary_and_predicts(tmp_path, cli):
    run = tmp_path / "s"
    _, summary = run_pipeline(cfg(), output=str(run))
    whole = sources.read(cfg().data.train.model_copy(update={"streaming": False}), {}, labelled=True)
    plain = build_task(config.load(ROOT / "tests/data/sentiment.yaml", FAST[:5]))
    plain.prepare({"train": whole}, None, resume=False)
    vocab = json.loads((run / "vocab.json").read_text())["itos"]
    assert vocab == plain.vocab.itos  # counted over the whole stream: the same vocabulary as reading it whole
    hist = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 2 and summary["pad_fraction"] is None
    assert summary["valid"]["accuracy"] > 0.5
    code, out, err = cli("predict", run, "a wonderful , moving film")
    assert code == 0 and out.split("\t")[0] in ("positive", "negative")


def test_streamed_resume_matches_uninterrupted(tmp_path):
    a = tmp_path / "a"
    run_pipeline(cfg(), output=str(a))
    b = tmp_path / "b"
    cut_at(cfg(), b, 13)
    run_pipeline(cfg(), output=str(b), resume=True)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_streaming_errors(tmp_path, cli):
    code, _, err = cli(
        "run",
        ROOT / "tests/data/sentiment.yaml",
        "--output",
        tmp_path / "r",
        *sum((["--set", s] for s in FAST + ["data.valid=null"]), []),
    )
    assert code == 2 and "declare a valid split" in err
    code, _, err = cli(
        "run", ROOT / "tests/data/translate.yaml", "--output", tmp_path / "t", "--set", "data.train.streaming=true"
    )
    assert code == 2 and "streaming" in err
    bad = write(tmp_path / "bad.tsv", "text\tlabel\ngood\tpositive\nbad\tmystery\n")
    code, _, err = cli(
        "run",
        ROOT / "tests/data/sentiment.yaml",
        "--output",
        tmp_path / "c",
        *sum((["--set", s] for s in FAST + [f"data.train.path={bad}", "data.train.text=nope"]), []),
    )
    assert code == 2 and "no column 'nope'" in err


def test_streamed_language_model(tmp_path):
    c = config.load(
        ROOT / "tests/data/lm.yaml",
        [
            "train.epochs=1",
            "model.embedding.dim=8",
            "model.hidden=8",
            "data.train.streaming=true",
            "data.stream_buffer=200",
            "train.threads=1",
        ],
    )
    _, summary = run_pipeline(c, output=str(tmp_path / "lm"))
    assert summary["valid"]["perplexity"] > 1 and summary["tokens_per_s"] > 0
