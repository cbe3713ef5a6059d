"""Next-word language modelling: embedding → RNN → dropout → (tied) softmax; perplexity
(generation: textrnn.generation).

Two data modes:
* `stream`: each split is one token stream (an <eos> after every line, one <eos> in front as the
  first context), cut into `B` columns read in parallel; truncated BPTT windows of `bptt` steps,
  the hidden state carried from window to window and detached (the PTB / WikiText set-up).
* `sentences`: one line per example, <bos> w1 … wn → w1 … wn <eos>, length-bucketed batches,
  packed sequences, a fresh state per line.
Perplexity is exp(mean NLL) over every target token (<eos> included, padding excluded).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal, Optional, Union, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn import dist, transfer
from textrnn.config import LMModel, Pipeline
from textrnn.data import batching
from textrnn.errors import UserError
from textrnn.nn.cells import CELLS
from textrnn.nn.dropout import Dropout
from textrnn.nn.embedding import Embedding, load_vectors
from textrnn.registry import register
from textrnn.tasks.base import Task


class LanguageModel(nn.Module):
    recurrence: ClassVar[Literal["padded", "stacked"]] = "stacked"  # `rnn`: one multi-layer module (see probe)

    def __init__(self, cfg: LMModel, vocab_size: int, pad_id: int):
        super().__init__()
        E, H = cfg.embedding.dim, cfg.hidden
        self.embed = Embedding(vocab_size, E, pad_id, cfg.embedding.dropout)
        self.rnn = CELLS[cfg.cell](
            E, H, num_layers=cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.drop = Dropout(cfg.output_dropout)
        self.proj = nn.Linear(H, E) if cfg.tie_weights and H != E else None
        F_ = E if cfg.tie_weights else H
        self.out: Optional[nn.Linear] = None
        self.asm: Optional[nn.AdaptiveLogSoftmaxWithLoss] = None
        if cfg.softmax == "adaptive":
            # the vocabulary is frequency-ranked (specials first), as the adaptive softmax needs
            cut = [c for c in cfg.cutoffs if 0 < c < vocab_size - 1]
            self.asm = nn.AdaptiveLogSoftmaxWithLoss(F_, vocab_size, cut, div_value=cfg.div_value)
        else:
            self.out = nn.Linear(F_, vocab_size)
        if cfg.init_range:
            for p in self.parameters():
                nn.init.uniform_(p, -cfg.init_range, cfg.init_range)
            for m in self.modules():  # a min cell's LayerNorms keep their unit scale and zero shift
                if isinstance(m, nn.LayerNorm):
                    m.reset_parameters()
        if cfg.tie_weights:
            if self.out is None:  # the LM task says so in one line before building
                raise ValueError("tie_weights: not with the adaptive softmax (its clusters have their own weights)")
            self.out.weight = self.embed.emb.weight  # [V, E], one tensor

    @property
    def input_embed(self) -> Embedding:
        """The embedding that feeds the first recurrent layer."""
        return self.embed

    def forward(self, ids: torch.Tensor, state=None, lengths: Optional[torch.Tensor] = None, features: bool = False):
        """ids [B, T] (lengths [B] for padded sentences), state from the previous window or None.

        Returns scores [B, T, V] (logits; log-probabilities with the adaptive softmax, which
        softmax leaves unchanged) and the final state (h [L, B, H], or (h, c) for an LSTM);
        with `features`, the softmax's input [B, T, F] instead of the scores (training goes
        through forward so that DistributedDataParallel sees it).
        """
        h, state = self.features(ids, state, lengths)
        if features:
            return h, state
        if self.asm is not None:
            return self.asm.log_prob(h.flatten(0, 1)).view(*h.shape[:2], -1), state
        assert self.out is not None
        return self.out(h), state

    def nll(self, h: torch.Tensor, y: torch.Tensor, pad: int, reduction: str) -> torch.Tensor:
        """Negative log-likelihood of targets y [B, T] (pad excluded) given features h [B, T, F]."""
        if self.out is not None:
            return F.cross_entropy(
                self.out(h).flatten(0, 1).float(), y.flatten(), ignore_index=pad, reduction=reduction
            )
        assert self.asm is not None
        mask = y != pad
        lp = self.asm(h[mask].float(), y[mask]).output  # [N]: log P(target), the real targets only
        return -lp.sum() if reduction == "sum" else -lp.mean()

    def features(self, ids: torch.Tensor, state=None, lengths: Optional[torch.Tensor] = None):
        """ids [B, T] -> the softmax's input [B, T, F] (dropout, projection applied), final state."""
        x = self.embed(ids)  # [B, T, E]
        if lengths is None:
            out, state = self.rnn(x, state)  # [B, T, H]
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.size(1))  # [B, T, H]
        h = self.drop(out)
        if self.proj is not None:
            h = self.proj(h)  # [B, T, E]
        return h, state


State = Union[torch.Tensor, tuple[torch.Tensor, ...], None]  # h [L, B, H], (h, c) for an LSTM, or none yet


def detach(state):
    """Cut the graph at a window boundary (keeps the values)."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def columns(stream: np.ndarray, n_cols: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """A stream [N+1] (starting with its first context token) -> inputs, targets [B, C].

    Column b holds targets stream[1 + b*C : 1 + (b+1)*C], so reading the columns one after
    the other gives back every target exactly once; the tail of the last column is padding.
    """
    x, y = stream[:-1], stream[1:]
    n = len(y)
    C = max(1, math.ceil(n / n_cols))
    X = np.full(n_cols * C, pad, dtype=np.int64)
    Y = np.full(n_cols * C, pad, dtype=np.int64)
    X[:n], Y[:n] = x, y
    return X.reshape(n_cols, C), Y.reshape(n_cols, C)


@register("task", "lm")
class LM(Task):
    name = "lm"
    metric = "perplexity"
    higher_is_better = False
    labelled = False

    def __init__(self, cfg: Pipeline):
        super().__init__(cfg)
        self.streams: dict[str, np.ndarray] = {}  # split -> [N+1] ids (stream mode)
        self._cols: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # (split, B) -> inputs, targets [B, C]
        self._state: State = None  # training hidden state carried between BPTT windows

    @property
    def m(self) -> LMModel:
        """The pipeline's `model:` block."""
        return cast(LMModel, self.cfg.model)

    # -- data
    def prepare(self, splits, run: Path, resume: bool) -> None:
        train, splits = self.take_stream(splits)
        if self.streaming and self.m.mode != "sentences":
            raise UserError("data.train.streaming: language models stream in model.mode: sentences")
        lm = transfer.source(self.cfg)
        if resume:
            self.load(run)
        elif lm is not None:  # model.init_from: the LM run's tokenizer and vocabulary
            self.load_text(lm)
        elif self.streaming:
            self.fit_stream(train)
        else:
            self.fit_text(train.texts)
        self._cols.clear()
        for name, ex in splits.items():
            self.add_split(name, ex)

    def add_split(self, name: str, ex) -> None:
        self.drop_split(name)
        self.data[name] = self.encode_texts(ex.texts)
        if self.m.mode == "stream":  # <eos> w … <eos> w … <eos>: the first <eos> is context only
            eos = self.vocab.eos
            self.streams[name] = np.concatenate([[eos]] + [np.append(a, eos) for a in self.data[name]])

    def drop_split(self, name: str) -> None:
        super().drop_split(name)
        for key in [k for k in self._cols if k[0] == name]:
            del self._cols[key]

    def _train_cols(self) -> int:
        t = self.cfg.train
        return t.batch_size or max(1, (t.batch_tokens or 0) // self.m.bptt)  # Train asks for one of the two

    def _columns(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        B = self._train_cols() if split == "train" else self.m.eval_batch
        if (split, B) not in self._cols:
            X, Y = columns(self.streams[split], B, self.vocab.pad)
            if split == "train" and dist.world() > 1:  # each process reads its own columns
                if B < dist.world():
                    raise UserError(
                        f"train.batch_size: {B} stream columns cannot be shared by {dist.world()} processes"
                    )
                X, Y = X[dist.rank() :: dist.world()], Y[dist.rank() :: dist.world()]
            self._cols[(split, B)] = X, Y
        return self._cols[(split, B)]

    def shard(self, batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
        """Stream: every process runs every window over its own columns (see _columns)."""
        return batches if self.m.mode == "stream" else super().shard(batches, rank, world)

    def _window(self, split: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        X, Y = self._columns(split)
        s = k * self.m.bptt
        return X[:, s : s + self.m.bptt], Y[:, s : s + self.m.bptt]  # [B, T] each

    def lengths(self, split: str) -> list[int]:
        """Target tokens per batch unit: per BPTT window (stream) or per line (sentences)."""
        if self.m.mode == "stream":
            n = math.ceil(self._columns(split)[1].shape[1] / self.m.bptt)
            return [int((self._window(split, k)[1] != self.vocab.pad).sum()) for k in range(n)]
        return [len(a) + 1 for a in self.data[split]]

    def batches(self, split: str, shuffle: bool, seed: int = 0) -> list[list[int]]:
        """Stream: the windows in order (never shuffled: the state runs through them). Sentences: buckets."""
        if self.m.mode == "stream":
            return [[k] for k in range(math.ceil(self._columns(split)[1].shape[1] / self.m.bptt))]
        return super().batches(split, shuffle, seed)

    def collate(self, split: str, idx: list[int], device) -> dict:
        pad = self.vocab.pad
        if self.m.mode == "stream":
            x, y = self._window(split, idx[0])
            return {
                "x": batching.to_device(torch.as_tensor(x), device),
                "y": batching.to_device(torch.as_tensor(y), device),
                "lengths": None,
                "reset": idx[0] == 0,
                "tokens": int((y != pad).sum()),
            }
        seqs = [self.data[split][i] for i in idx]
        bos, eos = np.array([self.vocab.bos]), np.array([self.vocab.eos])
        xs, lengths = batching.pad([np.concatenate([bos, a]) for a in seqs], pad)  # [B, T]
        ys, _ = batching.pad([np.concatenate([a, eos]) for a in seqs], pad)  # [B, T]
        return {
            "x": batching.to_device(xs, device),
            "y": batching.to_device(ys, device),
            "lengths": lengths,
            "reset": True,
            "tokens": int(lengths.sum()),
        }

    # -- model
    def build_model(self) -> nn.Module:
        if self.m.softmax == "adaptive" and self.m.tie_weights:
            raise UserError("model.tie_weights: not with model.softmax: adaptive (its clusters have their own weights)")
        if self.m.softmax == "adaptive" and not [c for c in self.m.cutoffs if 0 < c < len(self.vocab) - 1]:
            raise UserError(
                f"model.cutoffs {self.m.cutoffs}: none is below the vocabulary size ({len(self.vocab):,}); "
                f"give smaller cutoffs or use softmax: full"
            )
        model = LanguageModel(self.m, len(self.vocab), self.vocab.pad)
        if self.m.embedding.pretrained:
            load_vectors(model.embed.emb, self.vocab, self.m.embedding.pretrained, self.m.embedding.freeze)
        return model

    def _nll(self, model, batch: dict, state, reduction: str):
        h, state = model(batch["x"], state, batch["lengths"], features=True)  # [B, T, F]
        return cast(LanguageModel, dist.unwrap(model)).nll(h, batch["y"], self.vocab.pad, reduction), state

    def loss(self, model, batch):
        """Mean NLL per target token; in stream mode the state of the previous window comes in detached."""
        state = None if batch["reset"] else self._state
        loss, state = self._nll(model, batch, state, "mean")
        self._state = detach(state) if self.m.mode == "stream" else None
        return loss, batch["tokens"]

    def train_state(self) -> dict:
        """Stream mode: the hidden state carried into the next BPTT window (so a resume is exact)."""
        if self._state is None:
            return {}
        h = self._state if isinstance(self._state, tuple) else (self._state,)
        return {"hidden": [t.detach().cpu() for t in h]}

    def load_train_state(self, state: dict, device) -> None:
        h = state.get("hidden")
        if h:
            self._state = tuple(t.to(device) for t in h) if self.m.cell == "lstm" else h[0].to(device)

    def evaluate(self, model, split: str, device) -> dict:
        state = None  # stream mode: carried from window to window

        def batch_loss(b: dict) -> torch.Tensor:
            nonlocal state
            nll, state = self._nll(model, b, None if b["reset"] else state, "sum")
            return nll

        total, n = self.summed_loss(model, split, device, batch_loss)
        loss = total / max(n, 1)
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_token": loss / math.log(2),
            "tokens": n,
        }

    def save(self, run: Path) -> None:
        self.save_text(run)

    def load(self, run: Path) -> None:
        self.load_text(run)

    def plots(self, model, run: Path, device) -> None:
        """The learning curves (written by the trainer) are the plots of a language model."""

    def export_fields(self) -> dict:
        from textrnn.export import signature

        return signature.lm_fields(self)
