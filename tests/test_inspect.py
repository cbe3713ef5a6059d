"""`inspect` (gates stepped by hand = fused layers, saliency, gradient by distance) and `compare`."""

import json

import pytest
import torch

from textrnn import config
from textrnn.data.sources import Examples
from textrnn.tasks.base import build_task
from textrnn.tools import probe
from textrnn.training.trainer import run_pipeline

from helpers import ROOT

FAST = [
    "train.epochs=2",
    "model.embedding.dim=12",
    "model.encoder.hidden=10",
    "train.checkpoint_every=0",
    "train.threads=1",
]
TEXTS = ["a fine warm film", "a dull cold film", "warm and fine", "cold and dull"] * 3


def classify_task(*extra):
    torch.manual_seed(0)
    cfg = config.load(ROOT / "tests/data/sentiment.yaml", FAST + ["tokenizer.kind=whitespace", *extra])
    task = build_task(cfg)
    ex = Examples(TEXTS, ["pos", "neg"] * 6, "mem")
    task.prepare({"train": ex, "valid": ex}, ROOT, resume=False)
    return task, task.build_model().eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_stepped_gates_equal_the_fused_layers(cell, layers):
    task, model = classify_task(f"model.encoder.cell={cell}", f"model.encoder.layers={layers}")
    ids = torch.tensor(task.vocab.encode("a warm and dull film".split()))
    recs = probe.layers(model, task, ids)
    assert len(recs) == 2 * layers  # both directions of every layer
    for r in recs:
        assert r["max_abs_diff"] < 1e-5
        assert r["h"].shape == (5, 10)
    gates = set(recs[0]) - {"layer", "direction", "kind", "h", "max_abs_diff"}
    assert (
        gates
        == {"lstm": {"input", "forget", "candidate", "output"}, "gru": {"reset", "update", "new"}, "rnn": set()}[cell]
    )
    if cell == "lstm":
        f = recs[0]["forget"]
        assert ((f > 0) & (f < 1)).all()


def test_stepped_lm_layers_equal_fused():
    cfg = config.load(
        ROOT / "tests/data/lm.yaml",
        ["model.embedding.dim=8", "model.hidden=8", "model.layers=2", "tokenizer.kind=whitespace"],
    )
    task = build_task(cfg)
    ex = Examples(TEXTS, None, "mem")
    task.prepare({"train": ex, "valid": ex}, ROOT, resume=False)
    model = task.build_model().eval()
    recs = probe.layers(model, task, torch.tensor(task.vocab.encode("a fine film".split())))
    assert [r["layer"] for r in recs] == [1, 2] and recs[-1]["max_abs_diff"] < 1e-5


def test_saliency_is_zero_for_a_token_that_carries_nothing():
    task, model = classify_task("model.pooling=mean", "model.encoder.cell=rnn")
    film = task.vocab.stoi["film"]
    with torch.no_grad():
        model.embed.emb.weight[film] = 0.0  # "film" carries no information: its embedding is zero
    ids = torch.tensor(task.vocab.encode("a warm film".split()))
    s = probe.saliency(model, task, ids)
    assert s["saliency"][2] == 0.0 and s["saliency"][1] != 0.0 and s["predicted"] in ("pos", "neg")


def test_gradient_by_distance_has_one_point_per_step():
    task, model = classify_task()
    ids = torch.tensor(task.vocab.encode("a warm and dull cold film".split()))
    g = probe.gradient_by_distance(model, task, ids)
    assert len(g) == 6 and all(v >= 0 for v in g) and g[0] > 0


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    for cell in ("lstm", "rnn"):
        cfg = config.load(ROOT / "tests/data/sentiment.yaml", FAST + [f"model.encoder.cell={cell}"])
        run_pipeline(cfg, output=str(d / cell))
    return d


def test_compare_table_and_curves(two_runs, cli, tmp_path):
    code, out, err = cli("compare", two_runs / "lstm", two_runs / "rnn", "-o", tmp_path / "report.md")
    assert code == 0, err
    md = (tmp_path / "report.md").read_text()
    header = md.splitlines()[2]
    assert "model.encoder.cell" in header and "train.epochs" not in header and "parameters" in header
    assert "| lstm | lstm |" in md and "| rnn | rnn |" in md
    assert (tmp_path / "report-curves.png").stat().st_size > 1000


def test_inspect_writes_plots_and_numbers(two_runs, cli, tmp_path):
    code, out, err = cli(
        "inspect", two_runs / "lstm", two_runs / "rnn", "a truly wonderful film", "-o", tmp_path / "i", "--json"
    )
    assert code == 0, err
    rep = json.loads((tmp_path / "i" / "inspect.json").read_text())
    assert set(rep["runs"]) == {"lstm", "rnn"}
    r = rep["runs"]["lstm"]
    assert len(r["gradient_by_distance"]) == len(r["tokens"]) == len(r["saliency"]["saliency"])
    assert {p.name for p in (tmp_path / "i").glob("*.png")} >= {
        "gradient-by-distance.png",
        "lstm-saliency.png",
        "lstm-layer1-forward-gates.png",
        "rnn-layer1-backward-gates.png",
    }


def test_inspect_and_compare_bad_input(two_runs, cli, tmp_path):
    code, _, err = cli("inspect", two_runs / "lstm", "   ", "-o", tmp_path / "x")
    assert code == 2 and "empty" in err
    code, _, err = cli("inspect", tmp_path, "some text")
    assert code == 2 and err.startswith("error:")
    code, _, err = cli("compare", two_runs / "lstm")
    assert code == 2 and "two or more" in err
