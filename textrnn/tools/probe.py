"""Inside a trained recurrent network: gate activations step by step, saliency, gradient decay with distance.

`layers(model, task, ids)` re-runs a text through the model's recurrent layers cell by cell,
from the trained weights, and returns every gate activation (LSTM: input, forget, output and
the candidate; GRU: reset, update; plain RNN: the hidden state; minGRU: update and the candidate;
minLSTM: forget, input and the candidate) with the hidden states, which
are checked against the fused layer's own output (`max_abs_diff`). One text, batch of one.
"""

from __future__ import annotations

import torch
from torch import nn

from textrnn.nn.mincells import MinRNN

GATE_NAMES = {"LSTM": ["input", "forget", "candidate", "output"], "GRU": ["reset", "update", "new"], "RNN": []}


def _weights(rnn: nn.RNNBase, layer: int, reverse: bool):
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    get = lambda n: getattr(rnn, n + sfx, None)  # noqa: E731
    return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")


@torch.no_grad()
def step_layer(rnn: nn.RNNBase, layer: int, reverse: bool, x: torch.Tensor) -> dict:
    """One layer and direction of `rnn`, stepped by hand over x [T, I] (already in reading order).

    Returns {"h": [T, H], gate name: [T, H] ...} in reading order.
    """
    if isinstance(rnn, MinRNN):  # its own trace: the plain recurrence, one token at a time
        return {k: v for k, v in rnn.trace(x)[layer].items() if k != "output"}
    w_ih, w_hh, b_ih, b_hh = _weights(rnn, layer, reverse)
    kind, H = type(rnn).__name__, rnn.hidden_size
    b_ih = torch.zeros(w_ih.size(0)) if b_ih is None else b_ih
    b_hh = torch.zeros(w_hh.size(0)) if b_hh is None else b_hh
    h, c = x.new_zeros(H), x.new_zeros(H)
    out: dict[str, list] = {"h": []} | {g: [] for g in GATE_NAMES[kind]}
    for xt in x:
        gi, gh = w_ih @ xt + b_ih, w_hh @ h + b_hh  # [G*H]
        if kind == "LSTM":
            i, f, g, o = (gi + gh).chunk(4)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            vals = {"input": i, "forget": f, "candidate": g, "output": o}
        elif kind == "GRU":
            ri, zi, ni = gi.chunk(3)
            rh, zh, nh = gh.chunk(3)
            r, z = (ri + rh).sigmoid(), (zi + zh).sigmoid()
            n = (ni + r * nh).tanh()
            h = (1 - z) * n + z * h
            vals = {"reset": r, "update": z, "new": n}
        else:
            a = gi + gh
            h = a.tanh() if rnn.nonlinearity == "tanh" else a.relu()
            vals = {}
        out["h"].append(h)
        for k, v in vals.items():
            out[k].append(v)
    return {k: torch.stack(v) for k, v in out.items()}


def _stack(model, task) -> tuple[list[tuple[nn.RNNBase, int, bool]], str]:
    """The model's recurrent layers as (module, layer index, reverse), and how they connect (the
    model class's `recurrence`: "stacked", one multi-layer `rnn`; "padded", a PaddedEncoder `encoder`)."""
    if model.recurrence == "stacked":
        rnn = model.rnn
        return [(rnn, i, False) for i in range(rnn.num_layers)], "stacked"
    enc = model.encoder  # PaddedEncoder: one single-layer module per layer and direction
    out = []
    for i, f in enumerate(enc.fwd):
        out.append((f, 0, False))
        if enc.bwd is not None:
            out.append((enc.bwd[i], 0, False))  # a forward module fed the reversed sequence
    return out, "padded"


def _stacked(rnn: nn.Module, x: torch.Tensor, direction: str) -> list[dict]:
    """One multi-layer module over x [T, E], stepped by hand layer by layer ("backward": it reads x
    right to left, and the records come back in token order); the top layer checked against the
    fused module's output."""
    if direction == "backward":
        x = x.flip(0)
    fused, _ = rnn(x[None])  # [1, T, H]: the top layer's outputs
    recs: list[dict] = []
    if isinstance(rnn, MinRNN):  # residual layers: the trace feeds each layer what the stack does
        trace = rnn.trace(x)
        for i, r in enumerate(trace):
            h = {k: v for k, v in r.items() if k != "output"}
            recs.append({"layer": i + 1, "direction": direction, "kind": type(rnn).__name__, **h})
        top = trace[-1]["output"]
    else:
        assert isinstance(rnn, nn.RNNBase)
        for layer in range(rnn.num_layers):
            r = step_layer(rnn, layer, False, x)
            recs.append({"layer": layer + 1, "direction": direction, "kind": type(rnn).__name__, **r})
            x = r["h"]
        top = x
    recs[-1]["max_abs_diff"] = float((fused[0] - top).abs().max())
    if direction == "backward":
        for rec in recs:
            rec.update({k: v.flip(0) for k, v in rec.items() if isinstance(v, torch.Tensor)})
    return recs


def embed(model, task, ids: torch.Tensor) -> torch.Tensor:
    """ids [T] -> the first recurrent layer's input [T, E] (eval mode: no dropout)."""
    return model.input_embed(ids[None])[0]


@torch.no_grad()
def layers(model, task, ids: torch.Tensor) -> list[dict]:
    """Every recurrent layer and direction, stepped by hand; each record is checked against the fused layer."""
    model.eval()
    x = embed(model, task, ids)  # [T, E]
    mods, how = _stack(model, task)
    recs = []
    if how == "stacked":
        recs = _stacked(mods[0][0], x, "forward")
        if getattr(model, "rnn_bw", None) is not None:  # a bidirectional LM's right-to-left stack
            recs += _stacked(model.rnn_bw, x, "backward")
        return recs
    enc = model.encoder
    inp = inp_b = x  # what layer i reads: one input, or each direction its own (separate_directions)
    for i, f in enumerate(enc.fwd):
        rf = step_layer(f, 0, False, inp)
        recs.append(
            {
                "layer": i + 1,
                "direction": "forward",
                "kind": type(f).__name__,
                **rf,
                "max_abs_diff": float((f(inp[None])[0][0] - rf["h"]).abs().max()),
            }
        )
        outs = [rf["h"]]
        if enc.bwd is not None:
            b = enc.bwd[i]
            rb = step_layer(b, 0, False, inp_b.flip(0))
            fused_b = b(inp_b.flip(0)[None])[0][0]
            rb = {k: v.flip(0) for k, v in rb.items()}  # back to token order
            recs.append(
                {
                    "layer": i + 1,
                    "direction": "backward",
                    "kind": type(b).__name__,
                    **rb,
                    "max_abs_diff": float((fused_b.flip(0) - rb["h"]).abs().max()),
                }
            )
            outs.append(rb["h"])
        if enc.separate:
            res = enc.residual and i
            inp, inp_b = outs[0] + (inp if res else 0), outs[1] + (inp_b if res else 0)
        else:
            inp = inp_b = enc.join(i, torch.cat(outs, -1), inp)
    return recs


def saliency(model, task, ids: torch.Tensor) -> dict:
    """Classification: gradient x embedding of each token for the predicted class's logit."""
    model.eval()
    e = model.embed.emb(ids[None]).detach().requires_grad_(True)  # [1, T, E]
    pooled, weights = model.pooled(e, torch.tensor([len(ids)]))
    logits = model.head(pooled)[0]
    pred = int(logits.argmax())
    logits[pred].backward()
    sal = (e.grad[0] * e[0]).sum(-1).detach()  # [T]
    return {
        "predicted": task.labels[pred],
        "probability": float(logits.detach().softmax(-1)[pred]),
        "saliency": sal.tolist(),
        "pooling_weights": None if weights is None else weights[0].tolist(),
    }


def gradient_by_distance(model, task, ids: torch.Tensor) -> list[float]:
    """||d h_T / d x_t|| (Frobenius) for every step t: how much the last state still depends on
    each earlier input. Index 0 is the last token (distance 0). h_T: the top layer's output at
    the last step (its forward direction)."""
    model.eval()
    x = embed(model, task, ids).detach()  # [T, E]

    def last_state(x_):
        if model.recurrence == "stacked":
            out, _ = model.rnn(x_[None])
            return out[0, -1]
        out, _ = model.encoder(x_[None], torch.tensor([x_.size(0)]))  # [1, T, D*H]
        return out[0, -1, : model.encoder.cfg.hidden]  # forward half at the last step

    jac = torch.autograd.functional.jacobian(last_state, x)  # [H, T, E]
    norms = jac.pow(2).sum((0, 2)).sqrt()  # [T]
    return norms.flip(0).tolist()
