"""The fused projection + step loop (nn/fused_loop.py) computes what F.linear + loop_scan compute, chunk by chunk."""

import pytest
import torch
import torch.nn.functional as F

from textrnn.nn import fused_loop, mincells, scan_kernels
from textrnn.nn.mincells import loop_scan, use_stepper

pytestmark = pytest.mark.skipif(not scan_kernels.available(), reason="needs numba (textrnn[fast])")


def layer(kind: str, B: int, T: int, E: int, H: int, dtype: torch.dtype, seed: int):
    """x [B, T, E], weight [(G+1)·2H, E], bias, a right-padded mask [B, T, 1] (one full row, one of length 1)."""
    g = torch.Generator().manual_seed(seed)
    K = (2 if kind == "mingru" else 3) * 2 * H
    x = torch.randn(B, T, E, generator=g, dtype=dtype)
    w = torch.randn(K, E, generator=g, dtype=dtype)
    b = torch.randn(K, generator=g, dtype=dtype)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0], lengths[-1] = T, 1
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(dtype)[:, :, None]
    return x, w, b, mask


def grads(fn, x, w, b, up):
    """fn(x, w, b) and its gradients for the upstream gradient `up`."""
    x, w, b = (t.clone().requires_grad_(True) for t in (x, w, b))
    h = fn(x, w, b)
    return [h.detach(), *torch.autograd.grad(h, (x, w, b), up)]


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_chunks_give_the_unfused_values_and_gradients(kind, monkeypatch):
    """float64, rows split 2 + 2 + 1 (a last, shorter chunk); gradient nonzero on the padding too."""
    monkeypatch.setattr(fused_loop, "CHUNK_TOKENS", 1)  # one row per thread: chunks of 2 on 2 threads
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert fused_loop.chunk_rows(5, 7) == 2
    x, w, b, mask = layer(kind, 5, 7, 3, 2, torch.double, 1)
    up = torch.randn(5, 7, 4, dtype=torch.double)
    fused = grads(lambda x, w, b: fused_loop.project_scan(x, w, b, mask, kind), x, w, b, up)
    plain = grads(lambda x, w, b: loop_scan(F.linear(x, w, b), kind, 2, mask=mask, zero_pads=True), x, w, b, up)
    for a, r in zip(fused, plain):
        assert torch.allclose(a, r, atol=1e-12)
    assert not fused[0][-1, 1:].any()  # 0 on the padding
    assert torch.autograd.gradcheck(
        lambda x, w, b: fused_loop.project_scan(x, w, b, mask, kind), tuple(t.requires_grad_(True) for t in (x, w, b))
    )


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_float32_at_a_training_shape(kind):
    """Several chunks of the default size at float32: the same numbers as unfused to rounding."""
    x, w, b, mask = layer(kind, 12, 300, 16, 24, torch.float32, 2)
    assert fused_loop.chunk_rows(12, 300) < 12  # more than one chunk
    up = torch.randn(12, 300, 48)
    fused = grads(lambda x, w, b: fused_loop.project_scan(x, w, b, mask, kind), x, w, b, up)
    plain = grads(lambda x, w, b: loop_scan(F.linear(x, w, b), kind, 2, mask=mask, zero_pads=True), x, w, b, up)
    for a, r in zip(fused, plain):
        assert torch.allclose(a, r, rtol=1e-4, atol=1e-4 * r.abs().max().item())


def test_the_bidirectional_layer_runs_fused_only_where_the_compiled_loop_runs(monkeypatch):
    fwd, bwd = mincells.MinGRU(3, 2), mincells.MinGRU(3, 2)
    x, mask = torch.randn(2, 5, 3), torch.ones(2, 5, 1, dtype=torch.bool)
    calls = []
    real = fused_loop.project_scan
    monkeypatch.setattr(fused_loop, "project_scan", lambda *a: calls.append(1) or real(*a))
    out, _ = mincells.both_directions(fwd, bwd, x, mask)
    assert calls == [1]
    with use_stepper("torch"):
        ref, _ = mincells.both_directions(fwd, bwd, x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mincells.both_directions(fwd, bwd, x, mask)
    assert calls == [1] and torch.allclose(out, ref, atol=1e-6)


def test_a_frozen_layer_gets_only_its_input_s_gradient():
    x, w, b, mask = layer("mingru", 3, 5, 2, 2, torch.double, 3)
    x.requires_grad_(True)
    h = fused_loop.project_scan(x, w, b, mask, "mingru")
    (gx,) = torch.autograd.grad(h.sum(), x)
    xr = x.detach().clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(loop_scan(F.linear(xr, w, b), "mingru", 2, mask=mask, zero_pads=True).sum(), xr)
    assert torch.allclose(gx, gr, atol=1e-12) and w.grad is None and b.grad is None
