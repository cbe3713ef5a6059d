"""Ensembles of trained models that share a vocabulary: modules with their members' interface.

EnsembleClassifier averages the members' class probabilities; EnsembleSeq2Seq presents the
decoding interface of textrnn.decoding.search (start / step / select) and averages the members'
log-probabilities at every step, each member with its own encoder output, attention and decoder
state, so greedy, sampling and batched beam search run on it unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn


class EnsembleClassifier(nn.Module):
    """Classifiers over one vocabulary and one label set; their forward is a member's."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids [B, T], lengths [B] -> logits [B, C] whose softmax is the members' mean probability."""
        if len(self.members) == 1:  # the mean of one distribution is itself: the member's own logits
            return self.members[0](ids, lengths)
        logp = torch.stack([m(ids, lengths).float().log_softmax(-1) for m in self.members])  # [K, B, C]
        return logp.logsumexp(0) - math.log(len(self.members))  # log of the mean probability [B, C]


States = list[Any]  # one decoder state per member
Memories = Optional[list[dict]]  # one encoder memory per member (None: left unchanged by select)


class EnsembleSeq2Seq(nn.Module):
    """Seq2seq models over the same source and target vocabularies, decoding as one model."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.out_dims = [m.decoder.out_dim for m in self.each]  # size of each member's h~

    @property
    def each(self) -> list[Any]:
        """The members (each a textrnn.tasks.seq2seq.Seq2Seq or its int8 copy)."""
        return list(self.members)

    def start(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[States, Memories]:
        """src [B, S], lengths [B] -> each member's decoder state and memory (its own encoder pass)."""
        pairs = [m.start(src, lengths) for m in self.each]
        return [s for s, _ in pairs], [mem for _, mem in pairs]

    def step(self, y: torch.Tensor, states: States, mems: Memories):
        """y [N] -> the members' mean log-probabilities [N, V], their states, mean attention [N, S]."""
        assert mems is not None
        outs = [m.step(y, s, mem) for m, s, mem in zip(self.each, states, mems)]
        logp = torch.stack([lp for lp, _, _ in outs]).mean(0)  # [K, N, V] -> [N, V]
        w = torch.stack([a for _, _, a in outs]).mean(0)  # [K, N, S] -> [N, S]
        return logp, [s for _, s, _ in outs], w

    def select(self, states: States, mems: Memories, idx: torch.Tensor) -> tuple[States, Memories]:
        """Rows `idx` [M] of every member's state (and memory, unless None)."""
        each: list[Optional[dict]] = [None] * len(states) if mems is None else list(mems)
        pairs = [m.select(s, mem, idx) for m, s, mem in zip(self.each, states, each)]
        return [s for s, _ in pairs], None if mems is None else [mem for _, mem in pairs]

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: src [B, S], lengths [B], tgt_in [B, T] -> the members' h~ side by side
        [B, T, sum O] (`logits` reads them), mean attention [B, T, S]."""
        outs = [m(src, lengths, tgt_in) for m in self.each]
        return torch.cat([h for h, _ in outs], -1), torch.stack([w for _, w in outs]).mean(0)

    def logits(self, hh: torch.Tensor) -> torch.Tensor:
        """forward's h~ [..., sum O] -> the members' mean log-probabilities [..., V]."""
        parts = hh.split(self.out_dims, -1)
        return torch.stack([F.log_softmax(m.logits(p).float(), -1) for m, p in zip(self.each, parts)]).mean(0)
