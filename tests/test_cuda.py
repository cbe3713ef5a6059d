"""The CUDA path: cuDNN over packed sequences, AMP, and models that move between GPU and CPU.

Skipped where there is no GPU (CI has none); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

import json

import pytest
import torch
from test_seq2seq import sources, tiny_model

from textrnn import config
from textrnn.decoding import search
from textrnn.training.trainer import run_pipeline

from helpers import ROOT

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
FAST = ["train.epochs=2", "model.embedding.dim=16", "model.encoder.hidden=16", "train.device=cuda"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cudnn_packed_equals_padded_and_cpu(cell):
    from textrnn.config import Encoder as EncCfg
    from textrnn.nn.padded_encoder import PaddedEncoder

    torch.manual_seed(0)
    cfg = EncCfg(cell=cell, hidden=32, layers=2, bidirectional=True)
    enc = PaddedEncoder(16, cfg).double().eval()
    x, lengths = torch.randn(5, 9, 16, dtype=torch.double), torch.tensor([9, 2, 5, 1, 7])
    ref, h_ref = enc(x, lengths)  # CPU, padded path
    enc.cuda()
    for impl in ("packed", "padded"):
        enc.cfg = cfg.model_copy(update={"impl": impl})
        out, h = enc(x.cuda(), lengths)
        assert torch.allclose(out.cpu(), ref, atol=1e-9) and torch.allclose(h.cpu(), h_ref, atol=1e-9), impl


def test_beam_on_gpu_batched_equals_one_by_one():
    model = tiny_model().cuda()
    src, lengths = sources()
    s = search.SearchCfg(beam=4, n_best=2, alpha=0.6, max_ratio=1.0, max_extra=4)
    batched = search.beam_search(model, src.cuda(), lengths, s, 2, 3)
    on_cpu = search.beam_search(model.cpu(), src, lengths, s, 2, 3)
    assert [[h[0] for h in b] for b in batched] == [[h[0] for h in b] for b in on_cpu]
    model.cuda()
    for i in range(len(src)):
        n = int(lengths[i])
        single = search.beam_search(model, src[i : i + 1, :n].cuda(), lengths[i : i + 1], s, 2, 3)[0]
        assert [h[0] for h in single] == [h[0] for h in batched[i]]


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_sentiment_trains_on_gpu_and_predicts_on_cpu(precision, tmp_path, cli):
    cfg = config.load(ROOT / "tests/data/sentiment.yaml", FAST + [f"train.precision={precision}"])
    run, summary = run_pipeline(cfg, output=str(tmp_path / "run"))
    s = json.loads((run / "summary.json").read_text())
    assert s["device"].startswith("cuda") and s["precision"] == precision
    assert summary["test"]["accuracy"] > 0.5
    texts = ["an absolute delight", "a dull, lifeless mess", "zzz unknownword"]
    outs = {}
    for dev in ("cuda", "cpu"):
        code, out, err = cli("predict", run, "--device", dev, "--json", *texts)
        assert code == 0, err
        outs[dev] = [json.loads(x) for x in out.strip().splitlines()]
    for a, b in zip(outs["cuda"], outs["cpu"]):
        assert a["label"] == b["label"]
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)


def test_translation_trains_on_gpu_and_translates_on_both(tmp_path, cli):
    cfg = config.load(ROOT / "tests/data/translate.yaml", FAST + ["train.precision=bf16"])
    run, summary = run_pipeline(cfg, output=str(tmp_path / "run"))
    assert {"bleu", "chrf"} <= set(summary["test"])
    lines = "ein Mann fährt Fahrrad .\n\nzwei Hunde spielen im Schnee .\n"
    outs = {}
    for dev in ("cuda", "cpu"):
        code, out, err = cli("translate", run, "--device", dev, "--beam", "3", stdin=lines.encode())
        assert code == 0, err
        outs[dev] = out.split("\n")
    assert len(outs["cuda"]) == len(lines.split("\n")) and outs["cuda"][1] == ""
    assert outs["cuda"] == outs["cpu"]
