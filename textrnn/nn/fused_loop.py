"""A bidirectional min-cell layer's projection and compiled step loop, fused over chunks of rows (CPU).

Unfused, an IMDB batch's projection P [B, T, (G+1)·2H] (24 MB for 30 reviews of 400 tokens at
H = 128) goes through memory three times in the forward: the product writes it, σ reads it and
writes σ(P), the loop reads both; the backward's dL/dP likewise between the loop and the two
products and the bias's sum. On the 2-core VM (32 MB of L3 shared with the machine's other
tenants) those elementwise passes ran at DRAM speed: the loop took 0.84 ns an element over 30
rows and 0.17 ns over 4. Here the layer runs `chunk_rows` rows at a time (about CHUNK_TOKENS
tokens), so each chunk's projection and gradient stay in cache from the product to the loop and
back; P is never whole (one chunk's buffer is reused) and the weight's gradient is accumulated
chunk by chunk. The numbers are the unfused path's: the same products on fewer rows, the same
kernels (scan_kernels) on the same values (tests: test_fused_loop.py).

Used by mincells.both_directions where the compiled loop runs (numba, CPU, float32 / float64,
no autocast); elsewhere the layer is F.linear, then mincells.loop_scan.
"""

from __future__ import annotations

from typing import cast

import torch

from textrnn.nn import mincells, scan_kernels  # mincells imports this module: used at call time

CHUNK_TOKENS = 2048  # tokens (rows x steps) a chunk holds: P's chunk is 4 MB at (G+1)·2H = 512 in float32


def chunk_rows(B: int, T: int) -> int:
    """Rows per chunk: about CHUNK_TOKENS tokens, at least one row per thread (the loop's rows run in
    parallel), at most B."""
    return min(B, max(torch.get_num_threads(), CHUNK_TOKENS // max(T, 1)))


def project_scan(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor, kind: str
) -> torch.Tensor:
    """x [B, T, E], the two directions' folded weight [(G+1)·2H, E] and bias, mask [B, T, 1] of real
    steps (right padding) -> h [B, T, 2H], 0 on the padding: what
    loop_scan(F.linear(x, weight, bias), kind, 2, mask=mask, zero_pads=True) computes."""
    return cast(torch.Tensor, _Fused.apply(x.contiguous(), weight, bias, mask.to(x.dtype), kind))


class _Fused(torch.autograd.Function):
    """Forward per chunk: P = x W^T + b (one reused buffer), S = [z, σ(c)] (σ(c) becomes g(c) in the
    loop), h from the compiled loop. Saved: x, W, S, mask, h (and minLSTM's 1 - f, 1 - i).
    Backward per chunk: dP from the compiled backward, then dx = dP W, dW += dP^T x, db += Σ dP."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, kind: str):
        B, T, E = x.shape
        K = W.size(0)  # (G+1)·DH
        G = 1 if kind == "mingru" else 2
        DH = K // (G + 1)
        rows = chunk_rows(B, T)
        S = x.new_empty(B, T, 2 * DH)  # z, then σ(c) -> g(c)
        h = x.new_empty(B, T, DH)
        saved = [x.new_empty(B, T, DH), x.new_empty(B, T, DH)] if kind == "minlstm" else []  # 1 - f, 1 - i
        P = x.new_empty(rows * T, K)  # one chunk's projection
        h0 = x.new_zeros(rows, DH)
        Wt = W.t()
        for r in range(0, B, rows):
            n = min(rows, B - r)
            sl = slice(r, r + n)
            Pc = torch.addmm(b, x[sl].view(n * T, E), Wt, out=P[: n * T]).view(n, T, K)
            Sc = S[sl]
            if kind == "mingru":
                torch.sigmoid(Pc, out=Sc)
            else:
                kf, ki, c = Pc.split(DH, dim=-1)
                Sc[..., :DH] = mincells.update_gate(kind, [kf, ki])  # z = i / (f + i)
                torch.sigmoid(c, out=Sc[..., DH:])
                torch.sigmoid(-kf, out=saved[0][sl])
                torch.sigmoid(-ki, out=saved[1][sl])
            scan_kernels.forward(Sc, 0, Sc, DH, Pc, G * DH, mask[sl], h0[:n], 2, True, out=h[sl])
        ctx.kind, ctx.rows = kind, rows
        ctx.save_for_backward(x, W, S, mask, h, *saved)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, W, S, mask, h, *saved = ctx.saved_tensors
        B, T, E = x.shape
        K, DH = W.size(0), h.size(2)
        rows = ctx.rows
        grad = grad.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]  # a frozen layer's weights need none
        dx = torch.empty_like(x) if need_x else None
        dW = torch.zeros_like(W) if need_w else None
        db = W.new_zeros(K) if need_b else None
        dP = x.new_empty(rows, T, K)  # one chunk's dL/dP
        h0 = x.new_zeros(rows, DH)
        for r in range(0, B, rows):
            n = min(rows, B - r)
            sl = slice(r, r + n)
            Sc = S[sl]
            sv = tuple(s[sl] for s in saved)
            dPc, _ = scan_kernels.backward(grad[sl], Sc, 0, Sc, DH, mask[sl], h[sl], h0[:n], sv, 2, True, out=dP[:n])
            dPf = dPc.view(n * T, K)
            xf = x[sl].view(n * T, E)
            if dx is not None:
                torch.mm(dPf, W, out=dx[sl].view(n * T, E))
            if dW is not None:
                dW.addmm_(dPf.t(), xf)
            if db is not None:
                db.add_(dPf.sum(0))
        return dx, dW, db, None, None
