"""minGRU / minLSTM: the scan equals the recurrence, padding never leaks, state carries, runs round-trip."""

import json

import pytest
import torch

import textrnn
from textrnn.config import Encoder
from textrnn.errors import UserError
from textrnn.nn import scan_kernels
from textrnn.nn.mincells import MinGRU, MinLSTM, loop_scan, use_path, use_stepper
from textrnn.nn.padded_encoder import PaddedEncoder

from helpers import TINY_TRAIN, assert_padded_batch_equals_each_alone, write, write_tiny_data

CELLS = [MinGRU, MinLSTM]


def stack_by_hand(m, x, h0, how):
    """The residual stack with each layer run by `how` (parallel | loop | sequential)."""
    finals = []
    for i, layer in enumerate(m.layers):
        h = getattr(layer, how)(x, None if h0 is None else h0[i])
        finals.append(h[:, -1])
        x = x + h if i else h
    return x, torch.stack(finals)


@pytest.mark.parametrize("cls", CELLS)
def test_scan_and_loop_equal_the_recurrence_values_and_gradients(cls):
    torch.manual_seed(0)
    m = cls(5, 7, num_layers=3).double()
    x0 = torch.randn(3, 150, 5, dtype=torch.double)  # 150 steps: more than one scan chunk
    h0 = torch.randn(3, 3, 7, dtype=torch.double)
    res = {}
    for how in ("parallel", "loop", "sequential"):
        x = x0.clone().requires_grad_(True)
        m.zero_grad()
        out, fin = stack_by_hand(m, x, h0, how)
        (out.sin().sum() + fin.pow(2).sum()).backward()
        res[how] = (out.detach(), x.grad, [p.grad.clone() for p in m.parameters()])
    ref = res["sequential"]
    for how in ("parallel", "loop"):
        assert torch.allclose(res[how][0], ref[0], atol=1e-10)
        assert torch.allclose(res[how][1], ref[1], atol=1e-9)
        assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(res[how][2], ref[2]))
    for how in ("parallel", "loop"):  # the module's own forward takes the same path
        with use_path(how):
            out, h_n = m(x0, h0)
        assert torch.allclose(out, ref[0], atol=1e-10)
        assert torch.allclose(h_n, stack_by_hand(m, x0, h0, "sequential")[1], atol=1e-10)


@pytest.mark.parametrize("stepper", ["numba", "torch"])
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("D", [1, 2])
def test_the_step_loop_gradient_is_exact(kind, D, stepper):
    """The hand-written backward of the loop (gates, candidate, h0; both directions; a padding mask),
    with the steps as numba's compiled loops and as PyTorch calls."""
    torch.manual_seed(1)
    G = 1 if kind == "mingru" else 2
    P = torch.randn(3, 9, (G + 1) * D * 2, dtype=torch.double, requires_grad=True)  # [B, T, .], H = 2
    h0 = torch.randn(3, D * 2, dtype=torch.double, requires_grad=True)
    mask = (torch.arange(9)[None, :] < torch.tensor([9, 5, 1])[:, None]).double()[:, :, None]  # [B, T, 1]
    with use_stepper(stepper):
        assert torch.autograd.gradcheck(lambda P, h0: loop_scan(P, kind, D, h0, mask), (P, h0))
        assert torch.autograd.gradcheck(lambda P, h0: loop_scan(P, kind, D, h0), (P, h0))


@pytest.mark.parametrize("stepper", ["numba", "torch"])
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("D", [1, 2])
def test_zero_pads_is_the_masked_output_with_its_exact_gradient(kind, D, stepper):
    """loop_scan(zero_pads=True) (right padding, h0 None) equals the output times the mask, and its
    gradient is exact (gradcheck) and equals that product's, whatever the gradient on the padding."""
    torch.manual_seed(3)
    G = 1 if kind == "mingru" else 2
    P = torch.randn(3, 9, (G + 1) * D * 2, dtype=torch.double, requires_grad=True)  # [B, T, .], H = 2
    mask = (torch.arange(9)[None, :] < torch.tensor([9, 5, 1])[:, None]).double()[:, :, None]  # [B, T, 1]
    up = torch.randn(3, 9, D * 2, dtype=torch.double)  # nonzero on the padding too
    with use_stepper(stepper):
        assert torch.autograd.gradcheck(lambda P: loop_scan(P, kind, D, mask=mask, zero_pads=True), (P,))
        got = loop_scan(P, kind, D, mask=mask, zero_pads=True)
        (g,) = torch.autograd.grad(got, P, up)
        ref = loop_scan(P, kind, D, mask=mask) * mask
        (gr,) = torch.autograd.grad(ref, P, up)
    assert torch.equal(got, ref) and torch.allclose(g, gr, atol=1e-12)
    with pytest.raises(ValueError, match="zero_pads needs h0 = None"):
        loop_scan(P, kind, D, torch.zeros(3, D * 2, dtype=torch.double), mask, zero_pads=True)


def loop_run(P, kind, D, h0, mask, stepper):
    """(h, dL/dP, dL/dh0) of one loop_scan under `stepper`, for a fixed random upstream gradient."""
    P, h0 = P.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    with use_stepper(stepper):
        h = loop_scan(P, kind, D, h0, mask)
    h.backward(torch.randn(h.shape, generator=torch.Generator().manual_seed(9), dtype=h.dtype))
    return h.detach(), P.grad, h0.grad


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
@pytest.mark.parametrize("D", [1, 2])
def test_the_compiled_steps_equal_the_pytorch_steps_in_float32(kind, D):
    """numba's loops against PyTorch's per-step calls at a training shape: values and every gradient,
    padded rows of random lengths, large pre-activations (gates near 0 and 1, g on both branches)."""
    torch.manual_seed(7)
    G = 1 if kind == "mingru" else 2
    B, T, H = 6, 37, 24
    P = 3 * torch.randn(B, T, (G + 1) * D * H)
    h0 = torch.randn(B, D * H)
    mask = (torch.arange(T)[None, :] < torch.randint(1, T + 1, (B,))[:, None]).float()[:, :, None]
    numba_run, torch_run = (loop_run(P, kind, D, h0, mask, s) for s in ("numba", "torch"))
    for a, b in zip(numba_run, torch_run):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
    assert numba_run[1].abs().max() > 0.1  # the gradients are not trivially zero


def test_without_numba_the_pytorch_steps_run(monkeypatch):
    torch.manual_seed(8)
    P, h0 = torch.randn(2, 5, 8), torch.randn(2, 4)
    ref = loop_run(P, "mingru", 1, h0, None, "torch")
    monkeypatch.setattr(scan_kernels, "available", lambda: False)
    called = []
    monkeypatch.setattr(scan_kernels, "forward", lambda *a: called.append(a))
    monkeypatch.setattr(scan_kernels, "backward", lambda *a: called.append(a))
    got = loop_run(P, "mingru", 1, h0, None, "auto")
    assert not called and all(torch.equal(a, b) for a, b in zip(got, ref))
    with pytest.raises(RuntimeError, match=r"pip install 'textrnn\[fast\]'"):
        with use_stepper("numba"):
            pass
    with pytest.raises(ValueError, match="stepper 'fast': one of auto, numba, torch"):
        with use_stepper("fast"):
            pass


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("path", ["parallel", "loop"])
def test_padded_batch_equals_each_sequence_alone_both_directions(cell, path):
    torch.manual_seed(2)
    enc = PaddedEncoder(6, Encoder(cell=cell, hidden=5, layers=3, bidirectional=True)).double().eval()
    assert_padded_batch_equals_each_alone(enc, path)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_the_one_loop_bidirectional_layer_has_the_per_direction_gradients(cell):
    """On the loop path both directions share one projection (LayerNorm affine folded in) and one
    loop; its outputs and every gradient equal the log-space path's, which runs each direction alone."""
    torch.manual_seed(6)
    enc = PaddedEncoder(6, Encoder(cell=cell, hidden=5, layers=3, bidirectional=True)).double()
    for p in enc.parameters():  # LayerNorm's affine part away from its (1, 0) start, so folding it matters
        p.data.add_(0.1 * torch.randn_like(p))
    lengths = torch.tensor([9, 4, 1, 7])
    x0 = torch.randn(4, 9, 6, dtype=torch.double)
    res = {}
    for path in ("parallel", "loop"):
        x = x0.clone().requires_grad_(True)
        enc.zero_grad()
        with use_path(path):
            out, h_n = enc(x, lengths)
        (out.sin().sum() + h_n.pow(2).sum()).backward()
        res[path] = [out.detach(), h_n.detach(), x.grad] + [p.grad.clone() for p in enc.parameters()]
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(res["loop"], res["parallel"]))


@pytest.mark.parametrize("cls", CELLS)
def test_state_carried_across_windows_equals_one_long_sequence(cls):
    torch.manual_seed(3)
    m = cls(4, 6, num_layers=2).double()
    x = torch.randn(2, 30, 4, dtype=torch.double)
    whole, h_whole = m(x)
    state, outs = None, []
    for s in range(0, 30, 7):  # BPTT windows of 7, the last one shorter
        out, state = m(x[:, s : s + 7], state)
        outs.append(out)
    assert torch.allclose(torch.cat(outs, 1), whole, atol=1e-10)
    assert torch.allclose(state, h_whole, atol=1e-10)
    step_state, last = None, None
    for t in range(30):  # one token at a time, as decoding does
        last, step_state = m(x[:, t : t + 1], step_state)
    assert torch.allclose(last[:, 0], whole[:, -1], atol=1e-10)


@pytest.mark.parametrize("cls", CELLS)
def test_packed_input_gives_the_padded_result(cls):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(4)
    m = cls(3, 4, num_layers=2).double()
    x, lengths = torch.randn(3, 8, 3, dtype=torch.double), torch.tensor([8, 3, 5])
    packed, h_n = m(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(packed, batch_first=True)
    for b, n in enumerate(lengths.tolist()):
        one, h1 = m(x[b : b + 1, :n])
        assert torch.allclose(out[b, :n], one[0], atol=1e-10) and torch.allclose(h_n[:, b], h1[:, 0], atol=1e-10)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("path", ["parallel", "loop"])
def test_five_thousand_steps_stay_finite_and_close_in_float32(cls, path):
    torch.manual_seed(5)
    m = cls(8, 16, num_layers=2)
    x = (4 * torch.randn(2, 5000, 8)).requires_grad_(True)  # large inputs: gates near 0 and 1
    with use_path(path):
        out, h_n = m(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(h_n).all() and torch.isfinite(x.grad).all()
    ref, _ = stack_by_hand(m.double(), x.detach().double(), None, "sequential")
    assert (out.double() - ref).abs().max() / ref.abs().max() < 1e-4


def test_packed_impl_refuses_min_cells():
    with pytest.raises(ValueError, match="impl: packed runs cuDNN's fused cells"):
        Encoder(cell="mingru", impl="packed")


def tiny_runs(tmp_path, cell):
    """Tiny classify, LM and translate runs of `cell` (chrono-initialised: every place that takes it)."""
    write_tiny_data(tmp_path)
    pipes = {
        "classify": "task: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}, test: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        f"model: {{embedding: {{dim: 16}}, encoder: {{cell: {cell}, hidden: 16, layers: 2, chrono: 8}}}}\n"
        + TINY_TRAIN
        % 15,
        "lm": "task: lm\ndata: {train: {path: lm.txt}, valid: {path: lm.txt}, test: {path: lm.txt}}\n"
        "tokenizer: {kind: whitespace}\n"
        f"model: {{embedding: {{dim: 16}}, cell: {cell}, chrono: 8, hidden: 24, layers: 2, bptt: 8, eval_batch: 2}}\n"
        + TINY_TRAIN
        % 12,
        "translate": "task: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        f"model: {{embedding: {{dim: 16}}, encoder: {{cell: {cell}, hidden: 16}}, "
        f"decoder: {{cell: {cell}, hidden: 32, chrono: 8}}}}\n"
        "generate: {beam: 3, max_extra: 4}\n" + TINY_TRAIN % 40,
    }
    return {
        task: textrnn.train(
            write(tmp_path / f"{task}.yaml", f"name: {task}\n{body}"), output=tmp_path / task, progress=False
        )
        for task, body in pipes.items()
    }


def test_stacked_mingru_runs_train_save_load_and_use(tmp_path, cli, runs):
    r = tiny_runs(tmp_path, "mingru")
    clf = textrnn.load(r["classify"].path, device="cpu")
    texts = ["a wonderful and superb story", "dull and awful", "I loved it"]
    assert [p.label for p in clf.predict(texts)] == ["positive", "negative", "positive"]
    assert [clf.predict(t).prob for t in texts] == pytest.approx([p.prob for p in clf.predict(texts)], abs=1e-5)
    lm = textrnn.load(r["lm"].path, device="cpu")
    assert r["lm"].summary["test"]["perplexity"] < 20
    gen = lm.generate("the", max_tokens=8, seed=3, num=2)
    assert len(gen) == 2 and gen == lm.generate("the", max_tokens=8, seed=3, num=2)
    assert {w for w, _ in lm.complete("I'll be there in", k=3)} & {"five", "ten"}
    mt = textrnn.load(r["translate"].path, device="cpu")
    many = mt.translate(["der hund läuft", "eine rote katze", "ein hund"])
    assert many[0] == "the dog runs" and many == [
        mt.translate(t) for t in ["der hund läuft", "eine rote katze", "ein hund"]
    ]
    code, out, err = cli("inspect", r["classify"].path, "a wonderful story", "-o", tmp_path / "insp", "--json")
    assert code == 0, err
    layers = json.loads((tmp_path / "insp" / "inspect.json").read_text())["runs"]["classify"]["layers"]
    assert [(x["layer"], x["direction"], x["cell"]) for x in layers][:2] == [
        (1, "forward", "MinGRU"),
        (1, "backward", "MinGRU"),
    ]
    assert all(x["max_abs_diff_vs_fused"] < 1e-5 for x in layers) and "update" in layers[0]["gate_means"]
    code, out, err = cli("compare", runs["classify"].path, r["classify"].path)  # an LSTM run beside it
    assert code == 0, err
    assert "| lstm |" in out and "| mingru |" in out
    from textrnn.export import export

    with pytest.raises(UserError, match="cell mingru has no ONNX graph yet"):
        export(r["classify"].path, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_flops_counts_the_projections_and_the_scan():
    from textrnn.tools import flops

    enc = PaddedEncoder(6, Encoder(cell="mingru", hidden=5, layers=2, bidirectional=True))
    rec = flops.Recorder(enc)
    enc(torch.randn(3, 7, 6), torch.tensor([7, 7, 7]))
    rec.close()
    assert rec.shapes == {("scan", (7, 3, 5)): 4, ("mm", (21, 6, 10)): 2, ("mm", (21, 10, 10)): 2}
    assert rec.forward_flops() == 4 * 3 * 21 * 5 + 2 * 2 * 21 * 6 * 10 + 2 * 2 * 21 * 10 * 10
    assert flops.gemm_seconds(rec.shapes) > 0


def test_the_run_header_says_how_the_min_cells_step(tmp_path, cli, monkeypatch):
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "c.yaml",
        "name: c\ntask: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, encoder: {cell: mingru, hidden: 8}}\n"
        + TINY_TRAIN
        % 1,
    )
    code, out, err = cli("run", p, "-o", tmp_path / "a")
    assert code == 0, err
    assert "min cells: compiled step loop (numba)" in out + err
    monkeypatch.setattr(scan_kernels, "available", lambda: False)
    code, out, err = cli("run", p, "-o", tmp_path / "b")
    assert code == 0, err
    assert "min cells: PyTorch steps (pip install 'textrnn[fast]' compiles them" in (out + err).replace("\n", " ")


def test_the_compiled_loop_runs_from_several_threads_at_once():
    """A server runs one model from several threads: each thread's result equals the serial one."""
    import threading

    torch.manual_seed(10)
    enc = PaddedEncoder(6, Encoder(cell="mingru", hidden=32, layers=2, bidirectional=True)).eval()
    xs = [torch.randn(8, 40, 6) for _ in range(6)]
    lengths = torch.full((8,), 40)
    with torch.no_grad(), use_stepper("numba"):
        ref = [enc(x, lengths)[0] for x in xs]
        got: dict[int, torch.Tensor] = {}

        def work(i):
            for _ in range(5):
                got[i] = enc(xs[i], lengths)[0]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(torch.equal(got[i], ref[i]) for i in range(6))
