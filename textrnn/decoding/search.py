"""Batched greedy and beam search over any model with the seq2seq decoding interface.

The model provides
  start(src [B, S], lengths [B]) -> (state, mem)       encoder pass, initial decoder state
  step(y [N], state, mem) -> (logp [N, V], state, w)   one decoder step, log-probabilities
  select(state, mem, idx [M]) -> (state, mem)          keep / reorder / repeat rows (mem may be None)

All sentences of a batch (and all beams of each sentence) decode together in one tensor;
finished sentences are dropped from the batch as they end. `constrain` is the one place that
edits the next-token distribution (min length, n-gram blocking, max length); chat adds its
own rules (repetition penalty) and a sampling `pick` on top of the same loop.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from textrnn.config import SearchCfg  # the settings' schema (with every pipeline schema)
from textrnn.decoding import sampling

NEG = float("-inf")


def settings(base: SearchCfg | dict, origin: str = "search settings", **override) -> SearchCfg:
    """`base` with `override` applied (None = keep), validated: a one-line UserError names the bad value."""
    from pydantic import ValidationError

    from textrnn.config import explain
    from textrnn.errors import UserError

    raw = base.model_dump() if isinstance(base, SearchCfg) else dict(base)
    raw.update({k: v for k, v in override.items() if v is not None})
    try:
        s = SearchCfg.model_validate(raw)
    except ValidationError as err:
        raise UserError(explain(err, SearchCfg, origin)) from None
    if s.n_best > s.beam:
        raise UserError(f"{origin}: n-best {s.n_best} is more than beam {s.beam} (need 1 <= n-best <= beam)")
    return s


Hyp = tuple[list[int], float]  # tokens (no <bos>/<eos>), score


def max_lengths(lengths: torch.Tensor, s: SearchCfg) -> torch.Tensor:
    return (lengths.float() * s.max_ratio).long() + s.max_extra  # [B]


def constrain(logp: torch.Tensor, hist: torch.Tensor, s: SearchCfg, max_len: torch.Tensor, eos: int) -> torch.Tensor:
    """Edit log-probabilities of the next token in place. logp [N, V], hist [N, t] tokens so far, max_len [N]."""
    t = hist.size(1)
    if s.repetition_penalty != 1.0 and t:
        seen = torch.zeros_like(logp).scatter_(1, hist, 1.0)  # [N, V]: 1 where the token was output
        logp -= seen * math.log(s.repetition_penalty)
    if t < s.min_length:
        logp[:, eos] = NEG
    n = s.block_ngram
    if n and t >= n:
        grams = hist.unfold(1, n, 1)  # [N, t-n+1, n]: every n-gram so far
        hit = (grams[:, :, :-1] == hist[:, None, t - n + 1 :]).all(-1)  # [N, W]: its prefix ends the history
        rows, w = hit.nonzero(as_tuple=True)
        logp[rows, grams[rows, w, -1]] = NEG
    over = t >= max_len  # [N]: must end now
    if over.any():
        logp[over] = NEG
        logp[over, eos] = 0.0
    return logp


def pick(logp: torch.Tensor, s: SearchCfg, gen: Optional[torch.Generator]) -> torch.Tensor:
    """Next tokens [N] from log-probabilities [N, V]: argmax, or a sample (temperature, top-k, top-p)."""
    if s.temperature <= 0:
        return logp.topk(1, dim=-1).indices[:, 0]  # as beam search ranks: beam 1 == greedy
    z = sampling.filter_logits(logp / s.temperature, s.top_k, s.top_p)  # [N, V]
    return torch.multinomial(z.softmax(-1), 1, generator=gen)[:, 0]


@torch.no_grad()
def greedy(
    model,
    src: torch.Tensor,
    lengths: torch.Tensor,
    s: SearchCfg,
    bos: int,
    eos: int,
    gen: Optional[torch.Generator] = None,
) -> list[list[Hyp]]:
    """The most probable (or a sampled) next token at each step, for all sentences at once."""
    state, mem = model.start(src, lengths)
    B, dev = src.size(0), src.device
    max_len = max_lengths(lengths, s).to(dev)
    alive = torch.arange(B, device=dev)  # sentence of each row
    y = torch.full((B,), bos, dtype=torch.long, device=dev)
    hist = torch.zeros(B, 0, dtype=torch.long, device=dev)
    score = torch.zeros(B, device=dev)
    out: list[Optional[list[Hyp]]] = [None] * B
    while alive.numel():
        logp, state, _ = model.step(y, state, mem)  # [N, V]
        logp = constrain(logp, hist, s, max_len[alive], eos)
        y = pick(logp, s, gen)  # [N]
        score = score + logp.gather(1, y[:, None])[:, 0]
        hist = torch.cat([hist, y[:, None]], 1)
        done = y == eos
        if done.any():
            rows = done.nonzero()[:, 0]
            for r, sent, toks, sc in zip(
                rows.tolist(), alive[rows].tolist(), hist[rows, :-1].tolist(), score[rows].tolist()
            ):
                out[sent] = [(toks, sc)]
            keep = (~done).nonzero()[:, 0]
            state, mem = model.select(state, mem, keep)
            alive, y, hist, score = alive[keep], y[keep], hist[keep], score[keep]
    return [o or [] for o in out]  # every sentence ends (max_len forces <eos>)


def length_penalty(n: int, alpha: float) -> float:
    return ((5 + n) / 6) ** alpha if alpha else 1.0


@torch.no_grad()
def beam_search(model, src: torch.Tensor, lengths: torch.Tensor, s: SearchCfg, bos: int, eos: int) -> list[list[Hyp]]:
    """Beam search over all sentences at once: B sentences × K beams in one [B*K, …] batch.

    Each step takes the 2K best extensions per sentence; those among the top K that end in
    <eos> are finished, the best K others go on. A sentence stops when its best extension ends
    in <eos> (once n_best have finished) or K hypotheses have finished (so beam 1 is exactly
    greedy). Finished hypotheses are ranked by score / length_penalty; the n_best first are returned.
    """
    K = s.beam
    B, dev = src.size(0), src.device
    state, mem = model.start(src, lengths)
    state, mem = model.select(state, mem, torch.arange(B, device=dev).repeat_interleave(K))
    max_len = max_lengths(lengths, s).to(dev)
    alive = torch.arange(B, device=dev)  # sentence of each group of K rows
    scores = torch.full((B, K), NEG, device=dev)
    scores[:, 0] = 0.0  # only the first beam is live at the start
    y = torch.full((B * K,), bos, dtype=torch.long, device=dev)
    hist = torch.zeros(B * K, 0, dtype=torch.long, device=dev)
    finished: list[list[tuple[float, list[int], float]]] = [[] for _ in range(B)]
    n_fin = torch.zeros(B, dtype=torch.long, device=dev)
    ar = torch.arange(2 * K, device=dev)
    while alive.numel():
        nb = alive.numel()
        logp, state, _ = model.step(y, state, mem)  # [nb*K, V]
        V = logp.size(-1)
        logp = constrain(logp, hist, s, max_len[alive].repeat_interleave(K), eos)
        cand = (scores.view(-1, 1) + logp).view(nb, K * V)
        top, idx = cand.topk(2 * K, dim=1)  # [nb, 2K]
        beam, tok = idx // V, idx % V
        is_eos = (tok == eos) & (top > NEG)
        fin = is_eos & (ar < K)  # finished now: <eos> among the top K
        if fin.any():
            b_, j_ = fin.nonzero(as_tuple=True)
            rows = b_ * K + beam[b_, j_]
            for b, sent, toks, sc in zip(b_.tolist(), alive[b_].tolist(), hist[rows].tolist(), top[b_, j_].tolist()):
                finished[sent].append((sc / length_penalty(len(toks) + 1, s.alpha), toks, sc))
            n_fin[alive] += fin.sum(1)
        # the first K extensions that do not end in <eos> go on
        order = torch.where(tok == eos, ar + 2 * K, ar).argsort(dim=1)[:, :K]  # [nb, K]
        scores = top.gather(1, order)
        rows = (torch.arange(nb, device=dev)[:, None] * K + beam.gather(1, order)).view(-1)
        y = tok.gather(1, order).view(-1)
        hist = torch.cat([hist[rows], y[:, None]], 1)
        state, _ = model.select(state, None, rows)  # rows stay within their sentence: memory unchanged
        done = (is_eos[:, 0] & (n_fin[alive] >= s.n_best)) | (n_fin[alive] >= K)  # [nb]
        if done.any():
            keep = (~done).nonzero()[:, 0]
            rows = (keep[:, None] * K + torch.arange(K, device=dev)).view(-1)
            state, mem = model.select(state, mem, rows)
            alive, scores, y, hist = alive[keep], scores[keep], y[rows], hist[rows]
    out = []
    for f in finished:
        f.sort(key=lambda h: -h[0])
        out.append([(toks, sc) for _, toks, sc in f[: s.n_best]])
    return out


def search(model, src, lengths, s: SearchCfg, bos: int, eos: int) -> list[list[Hyp]]:
    """Sampling when temperature > 0, greedy for beam 1, else beam search."""
    if s.temperature > 0:
        gen = torch.Generator(device=src.device)
        gen.manual_seed(s.seed) if s.seed is not None else gen.seed()
        return greedy(model, src, lengths, s, bos, eos, gen)
    if s.beam == 1:
        return greedy(model, src, lengths, s, bos, eos)
    return beam_search(model, src, lengths, s, bos, eos)
