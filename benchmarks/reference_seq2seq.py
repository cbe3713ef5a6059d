"""textrnn's seq2seq training step against a hand-written PyTorch model of the same size, in one process.

    python benchmarks/reference_seq2seq.py pipelines/multi30k-de-en.yaml [--steps 60] [--rounds 3]

The reference is what the project brief describes (the "150-line PyTorch model"): shared
embedding 256, BiLSTM 256 encoder over the padded batch (no packing), LSTM 512 decoder
started from zeros, Luong general attention without input feeding (the teacher-forced decoder
is one fused LSTM call), tanh combine to 256, tied output layer, cross-entropy over the
padded [B*T, V] logits with ignore_index, Adam, clipping. Both models train on textrnn's batches
(the same data, vocabulary and token budget), alternating in rounds so that machine noise hits
both; prints JSON with target tokens/s of each and their ratio.

The two time different steps on purpose: textrnn's model runs the trainer's step (textrnn.training.step:
fused Adam, `train.precision`, the gradient scaler where fp16), the reference its own
hand-written step (plain `torch.optim.Adam`, float32, no scaler), as a 150-line script would.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from textrnn import config
from textrnn.tools import bench
from textrnn.training.step import Step


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--steps", type=int, default=60, help="steps per model per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    cfg = config.load(a.pipeline, a.set)
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    task = bench.prepared_task(cfg)
    batches = task.batches("train", shuffle=True, seed=1)
    cpu, total = torch.device("cpu"), cfg.train.epochs * len(batches)
    ours = Step.build(task.build_model(), task.loss, cfg.train, cpu, task.higher_is_better, total)
    ref = Reference(len(task.vocab_tgt), pad=task.vocab.pad)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=cfg.train.optimizer.lr)
    pad, clip = task.vocab_tgt.pad, cfg.train.clip

    def step_ref(b: dict) -> tuple[torch.Tensor, int]:
        """The reference's own step: not textrnn's (see the module's docstring)."""
        ref.train()
        logits = ref(b["src"], b["src_len"], b["tgt_in"])
        loss = F.cross_entropy(logits.flatten(0, 1), b["tgt_out"].flatten(), ignore_index=pad, label_smoothing=0.1)
        opt_ref.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        opt_ref.step()
        return loss.detach(), b["tokens"]

    def collate(idx: list[int]) -> dict:
        return task.collate("train", idx, "cpu")

    runs = {"textrnn": partial(bench.run_steps, ours, collate, batches)}
    runs["reference"] = partial(bench.run_steps, step_ref, collate, batches)
    for run in runs.values():
        run(0, 5)  # warm-up
    tps = bench.alternating(runs, 5, a.steps, a.rounds)
    print(
        json.dumps(
            {
                "pipeline": cfg.name,
                "threads": torch.get_num_threads(),
                "steps": a.steps * a.rounds,
                "parameters": {
                    "textrnn": sum(p.numel() for p in ours.model.parameters()),
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
