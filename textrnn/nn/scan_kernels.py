"""The min cells' step loop and dropout's masks compiled with numba (optional: `pip install 'textrnn[fast]'`).

The PyTorch step loop of `mincells._LoopScan` costs one operator call per time step and direction
(the forward's lerp, the backward's addcmul) over small [B, H] row blocks, and its backward makes
eight more elementwise passes over [B, T, D·H]. Here the forward (the mask on the gate, the
candidate's g, the recurrence) is one compiled call, and the whole backward (the adjoint
recurrence, the gates' and the candidate's derivatives, dL/dh0) is another, one pass: rows (b) in
parallel over torch's thread count, time sequential inside a row, a step's H columns contiguous
(vectorized). The forward writes only h and g(c) (over σ(c), in the caller's buffer) in one loop a
step; z is read again from the gate and the mask where the backward needs it: on the 2-core VM the
forward over a [30, 400, 512] projection took 1.9 ms where writing z, v and h apart took 3.9 ms.
The forward computes h + z (v - h) where torch's lerp switches to
v - (v - h)(1 - z) for z >= 1/2, so the two steppers agree to rounding (1e-7 in float32), not
bit for bit. numba is imported, and each kernel compiled (cached on disk), on first use; without
numba `available()` is False and the PyTorch steps run.

`dropout` draws and applies a counter-based mask in one parallel pass (textrnn/nn/dropout.py).

Step loop tensors: CPU, contiguous, float32 or float64; [B, T, D·H] with direction d in columns d·H ...
(d+1)·H, direction 0 running forward in time, direction 1 backward.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Optional

import torch

_lock = threading.Lock()
_kernels: dict[str, Any] = {}
_state: list[Optional[bool]] = [None]  # None: not tried yet; then whether numba loaded


def available() -> bool:
    """Whether numba is installed and its kernels can run (imports it on the first call)."""
    if _state[0] is None:
        with _lock:
            if _state[0] is None:
                _state[0] = _build()
    return bool(_state[0])


def _build() -> bool:
    try:
        import numba
        import numpy as np
    except ImportError:
        return False
    if not os.environ.get("NUMBA_THREADING_LAYER"):  # unless the user chose one
        # a thread-safe layer (TBB or OpenMP): a server may run a model from several threads at once
        numba.config.THREADING_LAYER = "threadsafe"  # type: ignore[attr-defined]  # set at import
    jit = numba.njit(parallel=True, cache=True, boundscheck=False, nogil=True)

    # Each time step's H columns are taken as 1-d views first: indexing through views lets LLVM
    # vectorize the inner loop (2.4x faster than indexing the 3-d arrays, the same numbers).

    def steps_forward(Z, zoff, V, voff, P, coff, m, h0, h, D, one, zero):  # pragma: no cover - compiled
        """The forward in one loop a step: z = Z[..., zoff + j] · m (m [B, T], or empty for no mask),
        v = max(V[..., voff + j], P[..., coff + j] + 1/2) = g(c) from σ(c) (in V) and c (in P), written
        over σ(c) in V, then s_t = s_{t-1} + z_t (v_t - s_{t-1}) from s = h0 [B, DH], written to h
        [B, T, DH] as is, or times m_t where `zero` (the state carried through the masked steps).
        z is never stored (the backward reads Z and m again). `one`: as in steps_backward."""
        B, T, DH = h.shape
        H = DH // D
        masked = m.shape[0] > 0
        half = one / (one + one)  # one / 2 would widen float32
        for b in numba.prange(B):
            st = np.empty(H, h.dtype)  # the state
            for d in range(D):
                lo, hi = d * H, (d + 1) * H
                st[:] = h0[b, lo:hi]
                for s in range(T):
                    t = s if d == 0 else T - 1 - s
                    ht = h[b, t, lo:hi]
                    zs, vs = Z[b, t, zoff + lo : zoff + hi], V[b, t, voff + lo : voff + hi]
                    c = P[b, t, coff + lo : coff + hi]
                    mt = m[b, t] if masked else one
                    wt = mt if zero else one
                    for j in range(H):
                        sc, ch = vs[j], c[j] + half
                        vj = sc if sc > ch else ch  # a select, not max(): max() blocks vectorizing
                        vs[j] = vj
                        sj = st[j] + (zs[j] * mt) * (vj - st[j])
                        st[j] = sj
                        ht[j] = sj * wt

    def steps_backward(grad, Z, zoff, V, voff, m, h, h0, omf, omi, dP, dh0, D, one, zero):  # pragma: no cover
        """The whole backward (see mincells._LoopScan) in one pass per row and direction, walking
        each direction's time backwards with the adjoint G [H], z = Z[..., zoff + j] · m and v = g(c) =
        V[..., voff + j] as the forward left them: writes dP [B, T, (NG+1)·DH] (NG gate blocks: minGRU's
        k, or minLSTM's kf, ki when omf / omi = 1 - f, 1 - i are given, else empty) and dh0 [B, DH].
        `one` is 1 in the tensors' dtype (a literal 1 would widen float32). `zero`: the forward wrote
        m_t · s_t, so dL/dh counts only where m_t = 1, and h at a masked step reads as the state 0 (exact
        where the state a masked step carries is 0 whenever a real step follows it: see mincells.loop_scan)."""
        B, T, DH = h.shape
        H = DH // D
        NG = 2 if omf.shape[0] else 1
        masked = m.shape[0] > 0
        half = one / (one + one)  # one / 2 would widen float32
        for b in numba.prange(B):
            G = np.empty(H, h.dtype)
            for d in range(D):
                lo, hi = d * H, (d + 1) * H
                for s in range(T):
                    t = T - 1 - s if d == 0 else s
                    gt, zs, vt = grad[b, t, lo:hi], Z[b, t, zoff + lo : zoff + hi], V[b, t, voff + lo : voff + hi]
                    mt = m[b, t] if masked else one
                    wt = mt if zero else one
                    if s == 0:  # the direction's last step: nothing comes after it
                        for j in range(H):
                            G[j] = gt[j] * wt
                    else:  # G_t = dL/dh_t + (1 - z_next) G_next
                        tn = t + 1 if d == 0 else t - 1
                        zn, mn = Z[b, tn, zoff + lo : zoff + hi], m[b, tn] if masked else one
                        for j in range(H):
                            G[j] = gt[j] * wt + (one - zn[j] * mn) * G[j]
                    hp = h0[b, lo:hi] if s == T - 1 else h[b, t - 1 if d == 0 else t + 1, lo:hi]  # h_prev
                    dc = dP[b, t, NG * DH + lo : NG * DH + hi]
                    for j in range(H):
                        gz = G[j] * (zs[j] * mt)  # dL/dc = G z g'(c): g' = 1 where g(c) >= 1/2, else σ'
                        dc[j] = gz if vt[j] >= half else gz * vt[j] * (one - vt[j])
                    dk = dP[b, t, lo:hi]
                    for j in range(H):  # dL/dz = G (g(c) - h_prev), through z's σ
                        zj = zs[j] * mt
                        dk[j] = G[j] * (vt[j] - hp[j]) * zj * (one - zj)
                    if NG == 2:  # minLSTM: z = σ(log i - log f): dkf = -dz' (1 - f), dki = dz' (1 - i)
                        # (a loop of its own: one loop over all eight arrays is not vectorized)
                        di, of, oi = dP[b, t, DH + lo : DH + hi], omf[b, t, lo:hi], omi[b, t, lo:hi]
                        for j in range(H):
                            di[j] = dk[j] * oi[j]
                        for j in range(H):
                            dk[j] = -dk[j] * of[j]
                tf = 0 if d == 0 else T - 1
                zf, mf = Z[b, tf, zoff + lo : zoff + hi], m[b, tf] if masked else one
                for j in range(H):
                    dh0[b, lo + j] = (one - zf[j] * mf) * G[j]

    gamma, m1, m2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    s27, s30, s31, s32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)

    def drop_kernel(x, out, key, drop, scale):  # pragma: no cover - compiled
        """out[i] = x[i] · scale where the high 32 bits of splitmix64(key + (i + 1) γ) are >= drop, else 0
        (x, out flat): element i's draw is a function of (key, i) alone, so the backward draws it again.
        Chunks of 16,384 in parallel, each through 1-d views (indexing x itself is not vectorized: 5x slower)."""
        n = x.shape[0]
        chunks = (n + 16383) // 16384
        zero = x.dtype.type(0)
        for c in numba.prange(chunks):
            lo = c * 16384
            hi = min(n, lo + 16384)
            xs, os = x[lo:hi], out[lo:hi]
            base = key + np.uint64(lo + 1) * gamma
            for i in range(hi - lo):
                z = base + np.uint64(i) * gamma
                z = (z ^ (z >> s30)) * m1
                z = (z ^ (z >> s27)) * m2
                z = z ^ (z >> s31)
                os[i] = xs[i] * scale if (z >> s32) >= drop else zero

    _kernels["forward"], _kernels["backward"] = jit(steps_forward), jit(steps_backward)
    _kernels["dropout"] = jit(drop_kernel)
    try:  # a machine with neither TBB nor OpenMP for numba: the PyTorch steps
        one = torch.ones(1, 2, 4)
        forward(one, 0, one.clone(), 2, one, 2, None, torch.zeros(1, 2), 2, False)
        dropout(one, 1, 1 << 31, 2.0)
    except Exception:  # noqa: BLE001 - numba's errors for a missing layer vary by version
        return False
    return True


def _threads() -> None:
    import numba

    most = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    numba.set_num_threads(max(1, min(torch.get_num_threads(), most)))


def _np(t: torch.Tensor):
    """A contiguous CPU tensor's numpy view (no copy when it is contiguous already)."""
    return t.detach().contiguous().numpy()


def _one(t: torch.Tensor):
    """1 as a numpy scalar of t's dtype: the kernels' constants, so float32 arithmetic stays float32."""
    return torch.ones((), dtype=t.dtype).numpy()[()]


def forward(
    Z: torch.Tensor,
    zoff: int,
    V: torch.Tensor,
    voff: int,
    P: torch.Tensor,
    coff: int,
    mask: Optional[torch.Tensor],
    h0: torch.Tensor,
    D: int,
    zero: bool,
    out: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """z = Z's gate columns (from zoff) times mask [B, T, 1] (or None), v = g(c) from σ(c) (V's columns
    from voff) and c (P's from coff) -> h [B, T, DH] (DH = h0's width; times the mask where `zero`;
    written into `out`, a contiguous tensor, if given). v is written over σ(c) in V (V must be
    contiguous and the caller's own); z is not stored: backward reads Z and mask again."""
    _threads()
    B, T, DH = P.size(0), P.size(1), h0.size(1)
    h = P.new_empty(B, T, DH) if out is None else out
    m = _np(_mask(mask, P))
    _kernels["forward"](_np(Z), zoff, V.detach().numpy(), voff, _np(P), coff, m, _np(h0), h.numpy(), D, _one(P), zero)
    return h


def backward(
    grad: torch.Tensor,
    Z: torch.Tensor,
    zoff: int,
    V: torch.Tensor,
    voff: int,
    mask: Optional[torch.Tensor],
    h: torch.Tensor,
    h0: torch.Tensor,
    saved: tuple[torch.Tensor, ...],
    D: int,
    zero: bool,
    out: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/dh [B, T, DH], the forward's gate (Z from zoff, with mask), v (V from voff) and h [B, T, DH],
    h0 [B, DH], saved = () for minGRU or (1 - f, 1 - i) for minLSTM, zero as the forward's
    -> dL/dP [B, T, (G+1)·DH] (into `out`, a contiguous tensor, if given), dL/dh0 [B, DH]."""
    _threads()
    DH = h.size(2)
    dP = h.new_empty(*h.shape[:2], (len(saved) or 1) * DH + DH) if out is None else out
    dh0 = h0.new_empty(h0.shape)  # contiguous, whatever h0's strides
    omf, omi = saved if saved else (h.new_empty(0, 1, 1),) * 2
    _kernels["backward"](
        *(_np(grad), _np(Z), zoff, _np(V), voff, _np(_mask(mask, h))),
        *map(_np, (h, h0, omf, omi)),
        *(dP.numpy(), dh0.numpy(), D, _one(h), zero),
    )
    return dP, dh0


def _mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """mask [B, T, 1] -> [B, T] (an empty [0, 0] for None: the kernels' "no mask")."""
    return like.new_empty(0, 0) if mask is None else mask.reshape(like.size(0), like.size(1))


def dropout(x: torch.Tensor, key: int, drop: int, scale: float) -> torch.Tensor:
    """x [*] (CPU, float32 / float64) -> x · scale where element i's counter-based draw (splitmix64 of
    key + (i + 1) γ, its high 32 bits) is >= drop (0 ... 2^32), else 0; the same key gives the same
    mask for any tensor of x's size, so dropout's backward applies it to the gradient without storing it."""
    import numpy as np  # numba's dependency: here only with numba

    _threads()
    out = torch.empty(x.shape, dtype=x.dtype)
    flat = _np(x).reshape(-1)
    _kernels["dropout"](flat, out.numpy().reshape(-1), np.uint64(key), np.uint64(drop), flat.dtype.type(scale))
    return out
