"""`textrnn bench`, FLOP counting from layer sizes, precision choice."""

import json

import pytest
import torch
from torch import nn

from textrnn.errors import UserError
from textrnn.tools import flops
from textrnn.training import precision

from helpers import ROOT


def test_flops_of_linear_and_bidirectional_lstm():
    model = nn.ModuleDict(
        {"lstm": nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True), "out": nn.Linear(10, 3)}
    )
    rec = flops.Recorder(model)
    B, T = 3, 7
    h, _ = model["lstm"](torch.randn(B, T, 4))
    model["out"](h)
    rec.close()
    G, H = 4, 5
    layer1 = 2 * (2 * B * T * 4 * G * H + T * 2 * B * H * G * H)  # two directions: input projection + recurrence
    layer2 = 2 * (2 * B * T * 10 * G * H + T * 2 * B * H * G * H)
    assert rec.forward_flops() == layer1 + layer2 + 2 * B * T * 10 * 3
    model["out"](h)  # hooks removed: nothing more counted
    assert rec.forward_flops() == layer1 + layer2 + 2 * B * T * 10 * 3
    assert flops.gemm_seconds(rec.shapes) > 0


def test_encoder_paths_count_the_same_flops():
    from textrnn.config import Encoder as EncCfg
    from textrnn.nn.padded_encoder import PaddedEncoder

    counts = []
    for impl in ("padded", "packed"):
        enc = PaddedEncoder(4, EncCfg(hidden=5, layers=2, impl=impl))
        rec = flops.Recorder(enc)
        enc(torch.randn(3, 6, 4), torch.tensor([6, 6, 6]))  # no padding: both paths do the same work
        counts.append(rec.forward_flops())
    assert counts[0] == counts[1] > 0


def test_attention_flops():
    from textrnn.nn.attention import build

    att = build("general", 6, 8)
    rec = flops.Recorder(att)
    mem = torch.randn(2, 5, 8)
    att(torch.randn(2, 3, 6), att.keys(mem), mem, torch.ones(2, 5, dtype=torch.bool))
    # keys: Linear 8 -> 6 over 10 rows; scores [3, 6] x [6, 5]; context [3, 5] x [5, 8]; per sentence
    assert rec.forward_flops() == 2 * 10 * 8 * 6 + 2 * 2 * 3 * 6 * 5 + 2 * 2 * 3 * 5 * 8


def test_bench_command_prints_training_figures(cli, tmp_path):
    out_file = tmp_path / "b.json"
    code, out, err = cli(
        "bench",
        ROOT / "tests/data/sentiment.yaml",
        "--steps",
        "3",
        "-o",
        out_file,
        "--set",
        "model.embedding.dim=16",
        "--set",
        "model.encoder.hidden=16",
        "--set",
        "train.threads=1",
        "--device",
        "cpu",
    )  # the roofline is a CPU figure
    assert code == 0, err
    r = json.loads(out)
    assert json.loads(out_file.read_text()) == r
    t = r["training"]
    assert t["steps"] == 3 and t["real_tokens"] > 0 and t["tokens_per_s"] > 0 and 0 <= t["pad_fraction"] < 1
    assert t["model_flops_per_token"] > 0 and 0 < t["roofline_fraction"] and r["peak_rss_mb"] > 0
    code, _, err = cli("bench", ROOT / "tests/data/sentiment.yaml", "--steps", "0")
    assert code == 2


def test_precision_choice_on_this_cpu():
    cpu = torch.device("cpu")
    assert precision.resolve("fp32", cpu) is None
    with pytest.raises(UserError, match="fp16"):
        precision.resolve("fp16", cpu)
    assert precision.resolve("auto", cpu) is None  # float32: bf16 autocast cost SST-2 accuracy (precision.py)
    if precision.cpu_native_bf16():
        assert precision.resolve("bf16", cpu) in (torch.bfloat16, None)
    else:  # emulated bf16 is far slower than fp32: refused with a clear line
        with pytest.raises(UserError, match="no native bfloat16"):
            precision.resolve("bf16", cpu)
