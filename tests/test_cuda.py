"""The CUDA path: cuDNN over packed sequences, AMP, min cells' log-space scan against the CPU loop, and
models that move between GPU and CPU.

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


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_min_cells_scan_on_gpu_equals_the_cpu_loop(cell):
    """A padded bidirectional two-layer min-cell encoder: the GPU's log-space scan gives the values and
    gradients of the CPU's step loop (the fused, compiled one where numba is installed)."""
    from textrnn.config import Encoder as EncCfg
    from textrnn.nn.padded_encoder import PaddedEncoder

    torch.manual_seed(0)
    enc = PaddedEncoder(16, EncCfg(cell=cell, hidden=32, layers=2, bidirectional=True, chrono=50))
    x, lengths = torch.randn(5, 40, 16), torch.tensor([40, 3, 17, 1, 29])
    up = torch.randn(5, 40, 64)

    def run(device: str):
        enc.to(device).zero_grad()
        xd = x.to(device).requires_grad_()
        out, h = enc(xd, lengths)  # [B, T, 2H], [L*2, B, H]
        (out * up.to(device)).sum().backward()
        return out.cpu(), h.cpu(), xd.grad.cpu(), [p.grad.cpu() for p in enc.parameters()]

    ref = run("cpu")
    got = run("cuda")
    for a, b in zip(ref[:3], got[:3]):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    for a, b in zip(ref[3], got[3]):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


def test_max_pooling_trains_alike_on_gpu_and_cpu():
    """Training takes torch.max on a GPU and max_pool1d's indices on a CPU: the same values, and the
    gradient at the same steps (a tie's goes to its first step on both)."""
    from textrnn.nn.heads import max_over

    torch.manual_seed(0)
    out = torch.randn(4, 7, 5)
    out[0, 2] = out[0, 5] = 9.0  # a tie in row 0
    mask = torch.arange(7)[None] < torch.tensor([7, 3, 6, 1])[:, None]  # [B, T]
    grads = []
    for device in ("cpu", "cuda"):
        o = out.to(device).requires_grad_()
        v = max_over(o, mask.to(device))
        v.backward(torch.arange(20.0).view(4, 5).to(device))
        grads.append((v.detach().cpu(), o.grad.cpu()))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    assert grads[1][1][0, 2].abs().sum() > 0 and grads[1][1][0, 5].abs().sum() == 0


def test_a_mingru_classifier_trains_on_gpu_and_predicts_on_cpu(tmp_path, cli):
    cells = ["model.encoder.cell=mingru", "model.encoder.layers=2", "model.encoder.chrono=20"]
    cfg = config.load(ROOT / "tests/data/sentiment.yaml", FAST + ["train.precision=fp32"] + cells)
    run, _ = run_pipeline(cfg, output=str(tmp_path / "run"))
    assert json.loads((run / "summary.json").read_text())["device"].startswith("cuda")
    texts = ["an absolute delight", "a dull, lifeless mess"]
    outs = {}
    for dev in ("cuda", "cpu"):
        code, out, err = cli("predict", run, "--device", dev, "--json", *texts)
        assert code == 0, err
        outs[dev] = [json.loads(x)["probs"] for x in out.strip().splitlines()]
    for a, b in zip(outs["cuda"], outs["cpu"]):
        assert a == pytest.approx(b, abs=1e-4)
