"""textrnn's seq2seq training step against a hand-written PyTorch model of the same size, in one process.

    python benchmarks/reference_seq2seq.py pipelines/multi30k-de-en.yaml [--steps 60] [--rounds 3]

The reference is what the project brief describes (the "150-line PyTorch model"): shared
embedding 256, BiLSTM 256 encoder over the padded batch (no packing), LSTM 512 decoder
started from zeros, Luong general attention without input feeding (the teacher-forced decoder
is one fused LSTM call), tanh combine to 256, tied output layer, cross-entropy over the
padded [B*T, V] logits with ignore_index, Adam, clipping. Both models train on textrnn's batches
(the same data, vocabulary and token budget), alternating in rounds so that machine noise hits
both; prints JSON with target tokens/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from textrnn import config
from textrnn.tasks.base import build_task
from textrnn.trainer import make_optimizer, seed_everything


class Reference(nn.Module):
    def __init__(self, V: int, E: int = 256, H: int = 256, D: int = 512, pad: int = 0, dropout: float = 0.2):
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=pad)
        self.enc = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.dec = nn.LSTM(E, D, batch_first=True)
        self.attn = nn.Linear(2 * H, D, bias=False)
        self.comb = nn.Linear(D + 2 * H, E)
        self.out = nn.Linear(E, V)
        self.out.weight = self.emb.weight
        self.drop = nn.Dropout(dropout)

    def forward(self, src, src_len, tgt_in):
        mem, _ = self.enc(self.drop(self.emb(src)))  # [B, S, 2H]
        dec, _ = self.dec(self.drop(self.emb(tgt_in)))  # [B, T, D]
        scores = torch.bmm(dec, self.attn(mem).transpose(1, 2))  # [B, T, S]
        mask = torch.arange(src.size(1))[None, None, :] < src_len[:, None, None]
        w = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        h = torch.tanh(self.comb(torch.cat([dec, torch.bmm(w, mem)], -1)))  # [B, T, E]
        return self.out(self.drop(h))  # [B, T, V]


def run_steps(step, batches, start: int, n: int) -> tuple[int, float]:
    tokens, t0 = 0, time.perf_counter()
    for k in range(start, start + n):
        tokens += step(batches[k % len(batches)])
    return tokens, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=60, help="steps per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    seed_everything(cfg.train.seed)
    task = build_task(cfg)
    task.prepare({"train": task.read_splits()["train"]}, None, resume=False)
    ours = task.build_model()
    ref = Reference(len(task.vocab_tgt), pad=task.vocab.pad)
    opt_ours = make_optimizer(ours.parameters(), cfg.train.optimizer)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=cfg.train.optimizer.lr)
    batches = task.batches("train", shuffle=True, seed=1)
    pad, clip = task.vocab_tgt.pad, cfg.train.clip

    def step_ours(idx):
        ours.train()
        b = task.collate("train", idx, "cpu")
        loss, n = task.loss(ours, b)
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), clip)
        opt_ours.step()
        return n

    def step_ref(idx):
        ref.train()
        b = task.collate("train", idx, "cpu")
        logits = ref(b["src"], b["src_len"], b["tgt_in"])
        loss = F.cross_entropy(logits.flatten(0, 1), b["tgt_out"].flatten(), ignore_index=pad, label_smoothing=0.1)
        opt_ref.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        opt_ref.step()
        return b["tokens"]

    run_steps(step_ours, batches, 0, 5)  # warm-up
    run_steps(step_ref, batches, 0, 5)
    tot = {"textrnn": [0, 0.0], "reference": [0, 0.0]}
    for r in range(a.rounds):
        for name, fn in (("textrnn", step_ours), ("reference", step_ref)):
            n, dt = run_steps(fn, batches, 5 + r * a.steps, a.steps)
            tot[name][0] += n
            tot[name][1] += dt
    tps = {k: n / dt for k, (n, dt) in tot.items()}
    print(
        json.dumps(
            {
                "pipeline": cfg.name,
                "threads": torch.get_num_threads(),
                "steps": a.steps * a.rounds,
                "parameters": {
                    "textrnn": sum(p.numel() for p in ours.parameters()),
                    "reference": sum(p.numel() for p in ref.parameters()),
                },
                "target_tokens_per_s": tps,
                "ratio": tps["textrnn"] / tps["reference"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
