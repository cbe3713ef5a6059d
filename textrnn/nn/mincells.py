"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201).

Both drop the hidden-to-hidden matrix from the gates: every gate and the candidate state
depend on the input alone, so the recurrence is linear in the state,

    h_t = a_t * h_{t-1} + b_t          (a_t in (0, 1), b_t > 0, elementwise)

    minGRU:  z_t = σ(W_z x_t),  h̃_t = g(W_h x_t),  a_t = 1 - z_t,  b_t = z_t h̃_t
    minLSTM: f_t = σ(W_f x_t),  i_t = σ(W_i x_t),  h̃_t = g(W_h x_t),
             a_t = f_t / (f_t + i_t),  b_t = i_t / (f_t + i_t) h̃_t

with g(v) = v + 0.5 for v >= 0 and σ(v) below (positive, so b_t has a logarithm). All T
steps' projections are one matrix product and the recurrence is a prefix scan, computed in
log space (Heinsen 2023): log h_t = a*_t + logcumsumexp(log b - a*)_t, a* = cumsum(log a).
A single step (decoding, `inspect`) is the plain recurrence; both give the same numbers.

Stacking. With no recurrent matrix and no output non-linearity, the paper does not stack the
cells bare: its models wrap each cell in a residual block with normalization, as Transformer
and Mamba blocks do. Here every layer after the first reads LayerNorm(its input) and adds its
input to its output (`x + cell(LayerNorm(x))`); the paper's blocks add an MLP after the cell,
which these layers leave out to stay a drop-in for `nn.GRU` (an encoder adds it after each
layer with `mlp: k`, nn/mlp.py). The module's interface is
nn.GRU's with batch_first=True: forward(x [B, T, I], h0 [L, B, H] | None) -> out [B, T, H],
h_n [L, B, H]; a PackedSequence in gives a PackedSequence out.
"""

from __future__ import annotations

import contextlib
from typing import Optional, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from textrnn.nn import fused_loop, scan_kernels
from textrnn.nn.dropout import Dropout
from textrnn.nn.switches import switched

CHUNK = 64  # scan steps per chunk (see scan)
PATHS = ("auto", "parallel", "loop")
_path = ["auto"]  # how MinLayer.forward runs a sequence; set with `use_path`
STEPPERS = ("auto", "numba", "torch")
_stepper = ["auto"]  # who runs the loop path's steps; set with `use_stepper`


def use_path(path: str) -> contextlib.AbstractContextManager[None]:
    """Run every min cell's sequences through `path` inside the block: auto (the log-space scan on
    a GPU, the step loop on a CPU), parallel (the log-space scan) or loop. Tests and benchmarks."""
    return switched(_path, "path", path, PATHS)


def use_stepper(stepper: str) -> contextlib.AbstractContextManager[None]:
    """Run the loop path's time steps with `stepper` inside the block: auto (numba's compiled loops
    when numba is installed, else torch), numba (the compiled loops; an error without numba) or
    torch (one PyTorch call per step). Tests and benchmarks."""
    if stepper == "numba" and not scan_kernels.available():
        raise RuntimeError("the numba stepper needs numba: pip install 'textrnn[fast]'")
    return switched(_stepper, "stepper", stepper, STEPPERS)


def _compiled(x: torch.Tensor) -> bool:
    """Whether the loop's steps over x run as numba's compiled loops (CPU tensors only)."""
    if x.device.type != "cpu" or _stepper[0] == "torch" or x.dtype not in (torch.float32, torch.float64):
        return False
    return _stepper[0] == "numba" or scan_kernels.available()


def stepper_label(model: nn.Module, device: torch.device) -> Optional[str]:
    """How `model`'s min cells step on `device`, for a run's header line; None without min cells or
    off the CPU (the log-space scan runs there)."""
    if device.type != "cpu" or not any(isinstance(m, MinLayer) for m in model.modules()):
        return None
    if scan_kernels.available():
        return "min cells: compiled step loop (numba)"
    return "min cells: PyTorch steps (pip install 'textrnn[fast]' compiles them: 1.5x faster on IMDB)"


def g(v: torch.Tensor) -> torch.Tensor:
    """The paper's positive activation for the candidate state: v + 0.5 (v >= 0), σ(v) (v < 0).

    Computed as max(σ(v), v + 0.5): σ lies below its tangent 0.5 + v/4 for v > 0 and above it for
    v < 0, so the maximum picks the right branch everywhere, with no comparison mask."""
    return torch.maximum(torch.sigmoid(v), v + 0.5)


def update_gate(kind: str, gates: list[torch.Tensor]) -> torch.Tensor:
    """Gate pre-activations -> z, the share of the candidate taken in: minGRU's update gate σ(k), or
    minLSTM's normalized input gate i / (f + i) = σ(log i - log f) (its f / (f + i) is 1 - z)."""
    if kind == "mingru":
        return torch.sigmoid(gates[0])
    kf, ki = gates
    return torch.sigmoid(F.softplus(-kf) - F.softplus(-ki))


def log_g(v: torch.Tensor) -> torch.Tensor:
    """log g(v), computed without forming g(v) for very negative v."""
    return torch.where(v >= 0, (F.relu(v) + 0.5).log(), -F.softplus(-v))


def scan(
    log_a: torch.Tensor, log_b: torch.Tensor, h0: Optional[torch.Tensor] = None, chunk: int = CHUNK
) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for t = 1..T, from h0 (zeros if None); log_a, log_b [B, T, H], h0 [B, H] -> h [B, T, H].

    Runs in float32 at least (autocast's bf16 / fp16 would lose the scan); returns log_b's dtype.
    h0 may have any sign: it enters as exp(a*_t) h0, outside the logarithms. The scan goes
    `chunk` steps at a time, each chunk starting from the last state of the one before: a*
    then sums at most `chunk` logarithms, so float32 keeps its precision on long sequences
    (one 5,000-step scan drifted by 3e-4 relative; chunks of 64 stay near 1e-6).
    """
    dtype = log_b.dtype
    work = torch.promote_types(dtype, torch.float32)
    log_a, log_b = log_a.to(work), log_b.to(work)
    h = None if h0 is None else h0.to(work)
    outs = []
    for s in range(0, log_a.size(1), chunk):
        a_star = log_a[:, s : s + chunk].cumsum(1)  # [B, C, H]: log of a_s ... a_t
        hc = (a_star + torch.logcumsumexp(log_b[:, s : s + chunk] - a_star, dim=1)).exp()
        if h is not None:
            hc = hc + a_star.exp() * h[:, None]
        outs.append(hc)
        h = hc[:, -1]
    return (outs[0] if len(outs) == 1 else torch.cat(outs, 1)).to(dtype)


class _LoopScan(torch.autograd.Function):
    """Both cells' recurrence h_t = h_{t-1} + z_t (g(c_t) - h_{t-1}) over D directions at once, from
    the raw projections, stepped through time with a hand-written backward (one autograd node, not T).

    P [B, T, (G+1)·D·H] is batch-major, as the projection writes it (no transposes in or out):
    G gate blocks (minGRU: k, z = σ(k); minLSTM: kf, ki, z = i / (f + i) = σ(softplus(-kf) -
    softplus(-ki))), then the candidate block c, each D·H wide with direction d in its columns
    d·H ... (d+1)·H. Direction 0 runs forward in time, direction 1 backward (t = T-1 down to 0).
    mask [B, T, 1] or None: where it is 0, z = 0 and the state stands still, so a right-padded
    row's backward direction starts at its own last token (from h0) and its forward state stops
    there. h0 [B, D·H] -> h [B, T, D·H]; each step reads and writes [B, H] rows (strided views).
    zero: h is 0 where mask is (see loop_scan).
    Backward: G_t = dL/dh_t + (1 - z_next) G_next (next in the direction's own time),
    dL/dz_t = G_t (g(c_t) - h_prev), dL/dc_t = G_t z_t g'(c_t), then through the gates' σ; each
    σ' is one fused `sigmoid_backward` pass (grad · y (1 - y)).
    """

    @staticmethod
    def forward(ctx, P: torch.Tensor, h0: torch.Tensor, mask: Optional[torch.Tensor], kind: str, D: int, zero: bool):
        G = len(MinLayer.GATES[kind])
        DH = P.size(2) // (G + 1)
        H = DH // D
        *gates, c = P.split(DH, dim=-1)  # [B, T, DH] each
        saved = tuple(torch.sigmoid(-k) for k in gates) if kind == "minlstm" else ()  # 1 - f, 1 - i
        ctx.compiled = _compiled(P)  # the backward runs with the forward's stepper
        ctx.kind, ctx.D, ctx.zero = kind, D, zero
        if ctx.compiled:  # the mask, g and the recurrence in one compiled pass; z is never stored
            if kind == "mingru":
                S = torch.sigmoid(P)  # [B, T, 2DH]: z = σ(k), then σ(c) (g(c) once the kernel ran), in one pass
                Z, zoff, V, voff = S, 0, S, DH
            else:
                Z, zoff, V, voff = update_gate(kind, gates), 0, torch.sigmoid(c), 0
            h = scan_kernels.forward(Z, zoff, V, voff, P, G * DH, mask, h0, D, zero)
            ctx.offsets = zoff, voff
            ctx.save_for_backward(Z, V, mask, h, h0, *saved)
            return h
        z = update_gate(kind, gates)
        if mask is not None:
            z.mul_(mask)
        v = g(c)
        h = torch.empty_like(v)
        T = P.size(1)
        runs = [(range(T), slice(0, H))] + ([(range(T - 1, -1, -1), slice(H, DH))] if D == 2 else [])
        for steps, cols in runs:
            vs, zs, hs = v[..., cols].unbind(1), z[..., cols].unbind(1), h[..., cols].unbind(1)
            prev = h0[:, cols]
            for t in steps:
                prev = torch.lerp(prev, vs[t], zs[t], out=hs[t])
        if zero and mask is not None:
            h.mul_(mask)  # 0 at the masked steps: where a real step reads one, the state was 0 (loop_scan)
        ctx.save_for_backward(z, v, h, h0, mask, *saved)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.compiled:
            Z, V, mask, h, h0, *saved = ctx.saved_tensors
            (zoff, voff), D = ctx.offsets, ctx.D
            dP, dh0 = scan_kernels.backward(grad, Z, zoff, V, voff, mask, h, h0, tuple(saved), D, ctx.zero)
            return dP, dh0, None, None, None, None
        z, v, h, h0, mask, *saved = ctx.saved_tensors
        T, D = z.size(1), ctx.D
        DH = z.size(2)
        H = DH // D
        Gr = grad.clone(memory_format=torch.contiguous_format)  # [B, T, DH]: dL/dh_t, then G_t
        if ctx.zero and mask is not None:
            Gr.mul_(mask)  # h is 0 there whatever the parameters
        keep = 1 - z  # a_t
        diff = torch.empty_like(v)  # g(c_t) - h_prev
        dh0 = torch.empty_like(h0)
        for d in range(D):
            cols = slice(d * H, (d + 1) * H)
            gs, ks = Gr[..., cols].unbind(1), keep[..., cols].unbind(1)
            order = range(T - 1, 0, -1) if d == 0 else range(0, T - 1)
            nxt = -1 if d == 0 else 1  # the step the state goes to next in backward-in-time order
            for t in order:
                gs[t + nxt].addcmul_(ks[t], gs[t])
            # the direction's first step (from h0), and the steps with a previous state, and where it lies
            first, rest, prev = (
                (0, slice(1, None), slice(None, -1)) if d == 0 else (T - 1, slice(None, -1), slice(1, None))
            )
            torch.mul(ks[first], gs[first], out=dh0[:, cols])
            torch.sub(v[:, first, cols], h0[:, cols], out=diff[:, first, cols])
            torch.sub(v[:, rest, cols], h[:, prev, cols], out=diff[:, rest, cols])
        G = len(MinLayer.GATES[ctx.kind])
        dP = torch.empty(*z.shape[:2], (G + 1) * DH, dtype=z.dtype, device=z.device)
        dz = diff.mul_(Gr)  # dL/dz = G (g(c) - h_prev)
        Gz = Gr.mul_(z)  # G z
        # through σ: dL/dz · z (1 - z) (zero where masked: z = 0 there)
        dd = dP[..., :DH] if ctx.kind == "mingru" else torch.empty_like(dz)
        _sigmoid_backward(dz, z, dd)
        if ctx.kind == "minlstm":
            one_minus_f, one_minus_i = saved
            torch.mul(dd, one_minus_f, out=dP[..., :DH]).neg_()  # d(log i - log f)/dkf = -(1 - f)
            torch.mul(dd, one_minus_i, out=dP[..., DH : 2 * DH])  # d(log i - log f)/dki = 1 - i
        # g'(c) = 1 for c >= 0 (where g(c) = c + 0.5 >= 0.5), σ'(c) = g (1 - g) below
        dc = dP[..., G * DH :]
        _sigmoid_backward(Gz, v, dc)
        torch.where(v >= 0.5, Gz, dc, out=dc)
        return dP, dh0, None, None, None, None


def _sigmoid_backward(grad: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = grad · y (1 - y) in one pass (σ's derivative at σ = y), written into `out` (a view is fine)."""
    return torch.ops.aten.sigmoid_backward.grad_input(grad, y, grad_input=out)


def loop_scan(
    P: torch.Tensor,
    kind: str,
    D: int = 1,
    h0: Optional[torch.Tensor] = None,
    mask: Optional[torch.Tensor] = None,
    zero_pads: bool = False,
) -> torch.Tensor:
    """The step loop over raw projections P [B, T, (G+1)·D·H] (batch-major; see _LoopScan) -> h [B, T, D·H].

    The scan's sequential twin in linear space, and the fast path on a CPU: logcumsumexp alone
    takes about 18 ns an element on the 2-core test VM, this loop's whole forward about 7 ns
    (docs/min-cells.md); on a GPU each step would be a kernel launch, and the log-space scan is
    used. Runs in float32 at least and returns P's dtype.

    zero_pads: h is 0 where mask is 0 (the state is still carried through those steps), which
    saves the caller a pass that masks the output. Its gradient is exact for right padding (each row's
    real steps first) from h0 = None, as a padded batch's layer runs: the backward then reads a
    masked step's h only where the state it carried was 0.
    """
    if zero_pads and h0 is not None:
        raise ValueError("loop_scan: zero_pads needs h0 = None (the padding then carries the state 0)")
    dtype = P.dtype
    work = torch.promote_types(dtype, torch.float32)
    DH = P.size(2) // (len(MinLayer.GATES[kind]) + 1)
    h0 = P.new_zeros(P.size(0), DH, dtype=work) if h0 is None else h0.to(work)
    m = None if mask is None else mask.to(work)
    return cast(torch.Tensor, _LoopScan.apply(P.to(work), h0, m, kind, D, zero_pads)).to(dtype)


def runs_loop(x: torch.Tensor) -> bool:
    """Whether min cells run x's sequences through the step loop (a CPU, or use_path("loop"))."""
    return not x.is_cuda if _path[0] == "auto" else _path[0] == "loop"


def both_directions(
    fwd_rnn: nn.Module, bwd_rnn: nn.Module, x: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A bidirectional layer (two one-layer MinRNNs) in one projection and one loop: x [B, T, I],
    mask [B, T, 1] of real steps (right padding) -> out [B, T, 2H] (forward, backward; 0 past each
    row's length), h_n [2, B, H] (each direction's state after its last real token).

    The backward direction runs from t = T-1 down with z = 0 on the padding, so it starts from zeros
    at each row's own last token: no reversal of the input or the output is needed.
    """
    fwd, bwd = (cast(MinLayer, cast(MinRNN, m).layers[0]) for m in (fwd_rnn, bwd_rnn))
    xn, w, b = _fold([fwd, bwd], x)  # the product's input, weight [(G+1)·2H, I], bias
    if _compiled(xn) and xn.dtype == w.dtype and not torch.is_autocast_enabled("cpu"):
        h = fused_loop.project_scan(xn, w, b, mask, fwd.kind)  # [B, T, 2H], a few rows at a time
    else:
        h = loop_scan(F.linear(xn, w, b), fwd.kind, 2, mask=mask, zero_pads=True)  # [B, T, 2H]
    H = fwd.hidden_size
    last = (mask[:, :, 0].sum(1, dtype=torch.long) - 1).clamp(min=0)  # [B]: each row's last real step
    return h, torch.stack([_at(h[..., :H], last), h[:, 0, H:]])


def _fold(layers: list["MinLayer"], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input, weight, bias) of one product that computes every layer's projection of x, blocks
    interleaved gate by gate ([gate 0 of each layer], ..., [candidate of each layer]). A layer's
    LayerNorm is shared (same input) and its affine part folded into its weights."""
    ws, bs = [], []
    norm = layers[0].norm
    if norm is not None:
        x = F.layer_norm(x, norm.normalized_shape, None, None, norm.eps)
    for layer in layers:
        w: torch.Tensor = layer.proj.weight  # [(G+1)H, I]
        b: torch.Tensor = layer.proj.bias  # [(G+1)H]
        if layer.norm is not None:
            w, b = w * layer.norm.weight, b + w @ layer.norm.bias
        ws.append(w.view(-1, layer.hidden_size, w.size(1)))  # [G+1, H, I]
        bs.append(b.view(-1, layer.hidden_size))
    return x, torch.stack(ws, 1).flatten(0, 2), torch.stack(bs, 1).flatten()


class MinLayer(nn.Module):
    """One minGRU / minLSTM layer, one direction: x [B, T, I] -> h [B, T, H]."""

    GATES = {"mingru": ("update",), "minlstm": ("forget", "input")}

    def __init__(self, kind: str, input_size: int, hidden_size: int, norm: bool = False):
        super().__init__()
        self.kind, self.hidden_size = kind, hidden_size
        self.norm = nn.LayerNorm(input_size) if norm else None
        # one product for all gates and the candidate: [gates..., candidate] x H
        self.proj = nn.Linear(input_size, (len(self.GATES[kind]) + 1) * hidden_size)

    def _project(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [B, T, I] -> pre-activations [B, T, H] of each gate, then of the candidate."""
        if self.norm is not None:
            x = self.norm(x)
        return list(self.proj(x).chunk(len(self.GATES[self.kind]) + 1, dim=-1))

    def _log_coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, I] -> log a, log b [B, T, H] of the recurrence h_t = a_t h_{t-1} + b_t."""
        *gates, cand = self._project(x)
        if self.kind == "mingru":
            (k,) = gates
            log_a, log_z = -F.softplus(k), -F.softplus(-k)  # log(1 - z), log z
            return log_a, log_z + log_g(cand)
        kf, ki = gates
        d = F.softplus(-kf) - F.softplus(-ki)  # log i - log f
        return -F.softplus(d), -F.softplus(-d) + log_g(cand)  # log f', log i' + log h̃

    def _update(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., I] -> z (update_gate) and the candidate's pre-activation c [..., H]:
        h_t = (1 - z_t) h_{t-1} + z_t g(c_t)."""
        *gates, cand = self._project(x)
        return update_gate(self.kind, gates), cand

    def forward(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x [B, T, I], h0 [B, H] or None -> h [B, T, H].

        On a GPU the log-space parallel scan; on a CPU the linear-space step loop (faster
        there, the same numbers); a single step is the plain recurrence.
        """
        if x.size(1) == 1:
            return self.step(x[:, 0], h0)[:, None]
        return self.loop(x, h0) if runs_loop(x) else self.parallel(x, h0)

    def parallel(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """All steps at once: x [B, T, I] -> h [B, T, H] through the log-space scan."""
        return scan(*self._log_coefficients(x), h0)

    def loop(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """All projections in one product, then the recurrence stepped in linear space: x [B, T, I] -> h [B, T, H]."""
        P = self.proj(self.norm(x) if self.norm is not None else x)  # [B, T, (G+1)H]
        return loop_scan(P, self.kind, 1, h0)

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [B, T, I] -> each gate's value and the candidate g(c), [B, T, H] each (what `inspect` shows)."""
        *pre, cand = self._project(x)
        vals = {name: torch.sigmoid(p) for name, p in zip(self.GATES[self.kind], pre)}
        return vals | {"candidate": g(cand)}

    def step(self, x: torch.Tensor, h: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One step of the plain recurrence: x [B, I], h [B, H] or None -> h [B, H]."""
        z, c = self._update(x)
        v = g(c)
        return z * v if h is None else torch.lerp(h, v, z)

    def sequential(self, x: torch.Tensor, h0: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The recurrence step by step: x [B, T, I], h0 [B, H] or None -> h [B, T, H] (what the scan computes)."""
        h, out = h0, []
        for t in range(x.size(1)):
            h = self.step(x[:, t], h)
            out.append(h)
        return torch.stack(out, 1)


class MinRNN(nn.Module):
    """A stack of min layers with nn.GRU's interface (batch_first=True; one direction)."""

    kind = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = True,
        bidirectional: bool = False,
        norm_input: bool = False,
    ):
        """norm_input: the first layer also reads LayerNorm(x) (an encoder's upper layers, built one at a time)."""
        super().__init__()
        if not batch_first or bidirectional:
            raise ValueError(f"{type(self).__name__} is batch-first and one-directional (the encoder adds the other)")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.batch_first, self.dropout = False, True, dropout
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(
            MinLayer(self.kind, d, hidden_size, norm=norm_input or i > 0) for i, d in enumerate(sizes)
        )
        self.drop = Dropout(dropout)  # between layers, as nn.GRU's dropout (the faster CPU masks)

    def forward(self, x, hx: Optional[torch.Tensor] = None):
        """x [B, T, I] (or a PackedSequence), hx [L, B, H] or None -> out [B, T, H], h_n [L, B, H]."""
        if isinstance(x, PackedSequence):
            padded, lengths = pad_packed_sequence(x, batch_first=True)
            out, h_n = self._run(padded, hx, lengths)
            return pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=False), h_n
        return self._run(x, hx, None)

    def _run(self, x: torch.Tensor, hx: Optional[torch.Tensor], lengths: Optional[torch.Tensor]):
        finals = []
        for i, layer in enumerate(self.layers):
            if i:
                x = self.drop(x)
            h = layer(x, None if hx is None else hx[i])  # [B, T, H]: the layer's state at every step
            finals.append(h[:, -1] if lengths is None else _at(h, lengths - 1))
            x = x + h if i else h  # residual above the first layer (its LayerNorm is inside the layer)
        return x, torch.stack(finals)  # [B, T, H], [L, B, H]

    def trace(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """x [T, I] -> per layer {"h": the state [T, H], "output": what the next layer reads [T, H], gate: [T, H] ...}.

        Stepped one token at a time with the plain recurrence (eval mode: no dropout).
        """
        recs = []
        for i, layer in enumerate(cast(list[MinLayer], self.layers)):
            gates = {k: v[0] for k, v in layer.gates(x[None]).items()}
            h = layer.sequential(x[None])[0]  # [T, H]
            x = x + h if i else h
            recs.append({"h": h, "output": x} | gates)
        return recs


def _at(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, T, H], idx [B] -> x[b, idx[b]] [B, H]."""
    return x.gather(1, idx.to(x.device)[:, None, None].expand(-1, 1, x.size(2)))[:, 0]


class MinGRU(MinRNN):
    kind = "mingru"


class MinLSTM(MinRNN):
    kind = "minlstm"
