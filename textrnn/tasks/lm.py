"""Next-word language modelling: embedding → RNN → dropout → (tied) softmax; perplexity
(generation: textrnn.decoding.generation).

Two data modes:
* `stream`: each split is one token stream (an <eos> after every line, one <eos> in front as the
  first context), cut into `B` columns read in parallel; truncated BPTT windows of `bptt` steps,
  the hidden state carried from window to window and detached (the PTB / WikiText set-up).
* `sentences`: one line per example, <bos> w1 … wn → w1 … wn <eos>, length-bucketed batches,
  packed sequences, a fresh state per line.
Perplexity is exp(mean NLL) over every target token (<eos> included, padding excluded).

`model.bidirectional` (ELMo): a second recurrent stack `rnn_bw`, built like `rnn`, reads the text
right to left and shares the embedding, the projection and the softmax. Stream mode: it reads the
reversed token stream through its own columns and carried state; sentences mode: each line reversed,
<bos> wn … w1 → wn … w1 <eos>. Both directions predict every target once; the loss is the mean of
the two, `perplexity` is exp of that mean, and `perplexity_fwd` / `perplexity_bwd` are reported
beside it. Generation, completion and export use the forward direction.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import ClassVar, Literal, Optional, Union, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn.config import LMModel, Pipeline
from textrnn.data import batching
from textrnn.errors import UserError
from textrnn.nn.cells import CELLS
from textrnn.nn.chrono import chrono_init
from textrnn.nn.dropout import Dropout
from textrnn.nn.embedding import Embedding, pretrained_vectors
from textrnn.registry import register
from textrnn.tasks.base import Task
from textrnn.training import dist, transfer


class LanguageModel(nn.Module):
    recurrence: ClassVar[Literal["padded", "stacked"]] = "stacked"  # `rnn`: one multi-layer module (see probe)

    def __init__(self, cfg: LMModel, vocab_size: int, pad_id: int):
        super().__init__()
        E, H = cfg.embedding.dim, cfg.hidden
        self.embed = Embedding(vocab_size, E, pad_id, cfg.embedding.dropout)
        self.rnn = self._stack(cfg)
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
        # built last, so that the forward half draws the same initial weights as a unidirectional model
        self.rnn_bw: Optional[nn.Module] = self._stack(cfg) if cfg.bidirectional else None
        if cfg.init_range:
            for p in self.parameters():
                nn.init.uniform_(p, -cfg.init_range, cfg.init_range)
            for m in self.modules():  # a min cell's LayerNorms keep their unit scale and zero shift
                if isinstance(m, nn.LayerNorm):
                    m.reset_parameters()
        if cfg.chrono is not None:  # after init_range, which would overwrite the gate biases
            chrono_init(self, cfg.chrono)
        if cfg.tie_weights:
            if self.out is None:  # the LM task says so in one line before building
                raise ValueError("tie_weights: not with the adaptive softmax (its clusters have their own weights)")
            self.out.weight = self.embed.emb.weight  # [V, E], one tensor

    @staticmethod
    def _stack(cfg: LMModel) -> nn.Module:
        """One direction's recurrent layers: E -> H, `layers` deep."""
        return CELLS[cfg.cell](
            cfg.embedding.dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )

    @property
    def input_embed(self) -> Embedding:
        """The embedding that feeds the first recurrent layer."""
        return self.embed

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Fine-tuning's layer groups, bottom to top: embedding; recurrent layer 0 (both directions);
        …; the softmax (and its projection). A tied softmax weight is the embedding's."""
        stacks = [s for s in (self.rnn, self.rnn_bw) if s is not None]
        by_layer = [(layer_index(name), p) for stack in stacks for name, p in stack.named_parameters()]
        layers: list[list[nn.Parameter]] = [[] for _ in range(1 + max(i for i, _ in by_layer))]
        for i, p in by_layer:
            layers[i].append(p)
        low = [list(self.embed.parameters()), *layers]
        seen = {id(p) for g in low for p in g}
        return [*low, [p for p in self.parameters() if id(p) not in seen]]

    def forward(
        self,
        ids: torch.Tensor,
        state=None,
        lengths: Optional[torch.Tensor] = None,
        features: bool = False,
        ids_bw: Optional[torch.Tensor] = None,
        state_bw=None,
    ):
        """ids [B, T] (lengths [B] for padded sentences), state from the previous window or None.

        Returns scores [B, T, V] (logits; log-probabilities with the adaptive softmax, which
        softmax leaves unchanged) and the final state (h [L, B, H], or (h, c) for an LSTM);
        with `features`, the softmax's input [B, T, F] instead of the scores (training goes
        through forward so that DistributedDataParallel sees it). The forward direction only,
        unless `ids_bw` [B, T] (the text already reversed, same lengths) is given to a
        bidirectional model: then ((out, out_bw), (state, state_bw)), both directions in one call.
        """
        h, state = self.features(ids, state, lengths)
        if ids_bw is None:
            return (h if features else self.scores(h)), state
        h_bw, state_bw = self.features(ids_bw, state_bw, lengths, backward=True)
        if features:
            return (h, h_bw), (state, state_bw)
        return (self.scores(h), self.scores(h_bw)), (state, state_bw)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Features [B, T, F] -> scores [B, T, V] (log-probabilities with the adaptive softmax)."""
        if self.asm is not None:
            return self.asm.log_prob(h.flatten(0, 1)).view(*h.shape[:2], -1)
        assert self.out is not None
        return self.out(h)

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

    def features(self, ids: torch.Tensor, state=None, lengths: Optional[torch.Tensor] = None, backward: bool = False):
        """ids [B, T] -> the softmax's input [B, T, F] (dropout, projection applied), final state.
        `backward`: through `rnn_bw` (ids then hold the text right to left)."""
        rnn = self.rnn_bw if backward else self.rnn
        if rnn is None:
            raise ValueError("backward: this language model has one direction (model.bidirectional: false)")
        x = self.embed(ids)  # [B, T, E]
        if lengths is None:
            out, state = rnn(x, state)  # [B, T, H]
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, state = rnn(packed, state)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.size(1))  # [B, T, H]
        h = self.drop(out)
        if self.proj is not None:
            h = self.proj(h)  # [B, T, E]
        return h, state


State = Union[torch.Tensor, tuple[torch.Tensor, ...], None]  # h [L, B, H], (h, c) for an LSTM, or none yet


def layer_index(name: str) -> int:
    """The layer a multi-layer recurrent module's parameter belongs to: weight_ih_l2 (nn.LSTM / GRU /
    RNN) or layers.2.proj.weight (min cells) -> 2."""
    m = re.search(r"_l(\d+)(?:_reverse)?$", name) or re.match(r"layers\.(\d+)\.", name)
    if m is None:
        raise ValueError(f"{name}: not a per-layer parameter name")
    return int(m.group(1))


def detach(state):
    """Cut the graph at a window boundary (keeps the values)."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def perplexities(loss: float) -> dict:
    """A mean NLL per token (nats) -> loss, perplexity, bits_per_token."""
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2)}


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
    transfer = "all"

    def __init__(self, cfg: Pipeline):
        super().__init__(cfg)
        self.streams: dict[str, np.ndarray] = {}  # split -> [N+1] ids (stream mode)
        # (split, B) -> inputs, targets [B, C]; (split, B, "bwd"): the same over the reversed stream
        self._cols: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._state: State = None  # training hidden state carried between BPTT windows
        self._state_bw: State = None  # the backward direction's (bidirectional)

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
        self.fresh = not resume  # a new model: pretrained vectors are read (not when loading a run)
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

    def _columns(self, split: str, backward: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Inputs, targets [B, C] of a split's stream (`backward`: of the stream reversed)."""
        B = self._train_cols() if split == "train" else self.m.eval_batch
        key = (split, B, "bwd") if backward else (split, B)
        if key not in self._cols:
            stream = self.streams[split][::-1] if backward else self.streams[split]  # <eos> wn … w1 <eos> …
            X, Y = columns(stream, B, self.vocab.pad)
            if split == "train" and dist.world() > 1:  # each process reads its own columns
                if B < dist.world():
                    raise UserError(
                        f"train.batch_size: {B} stream columns cannot be shared by {dist.world()} processes"
                    )
                X, Y = X[dist.rank() :: dist.world()], Y[dist.rank() :: dist.world()]
            self._cols[key] = X, Y
        return self._cols[key]

    def shard(self, batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
        """Stream: every process runs every window over its own columns (see _columns)."""
        return batches if self.m.mode == "stream" else super().shard(batches, rank, world)

    def _window(self, split: str, k: int, backward: bool = False) -> tuple[np.ndarray, np.ndarray]:
        X, Y = self._columns(split, backward)
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
        """x, y [B, T] (and x_bw, y_bw [B, T], the text right to left, when bidirectional); "tokens"
        counts one direction's targets (the other direction has as many)."""
        pad = self.vocab.pad
        if self.m.mode == "stream":
            x, y = self._window(split, idx[0])
            b = {
                "x": batching.to_device(torch.as_tensor(x), device),
                "y": batching.to_device(torch.as_tensor(y), device),
                "lengths": None,
                "reset": idx[0] == 0,
                "tokens": int((y != pad).sum()),
            }
            if self.m.bidirectional:
                xb, yb = self._window(split, idx[0], backward=True)
                b["x_bw"] = batching.to_device(torch.as_tensor(xb), device)
                b["y_bw"] = batching.to_device(torch.as_tensor(yb), device)
            return b
        seqs = [self.data[split][i] for i in idx]
        b = self._sentences(seqs, device)
        if self.m.bidirectional:
            bw = self._sentences([a[::-1] for a in seqs], device)  # wn … w1
            b["x_bw"], b["y_bw"] = bw["x"], bw["y"]
        return b

    def _sentences(self, seqs: list[np.ndarray], device) -> dict:
        """Lines of ids -> <bos> w1 … wn as x, w1 … wn <eos> as y, padded [B, T]."""
        bos, eos = np.array([self.vocab.bos]), np.array([self.vocab.eos])
        xs, lengths = batching.pad([np.concatenate([bos, a]) for a in seqs], self.vocab.pad)  # [B, T]
        ys, _ = batching.pad([np.concatenate([a, eos]) for a in seqs], self.vocab.pad)  # [B, T]
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
        pretrained_vectors(model.embed.emb, self.vocab, self.m.embedding, self.fresh)
        return model

    def _nll(self, model, batch: dict, states: tuple[State, State], reduction: str):
        """NLL of the batch's targets, one per direction ([fwd] or [fwd, bwd]), and the new
        (state, state_bw); both directions go through one call of the model."""
        core = cast(LanguageModel, dist.unwrap(model))
        pad = self.vocab.pad
        if not self.m.bidirectional:
            h, state = model(batch["x"], states[0], batch["lengths"], features=True)  # [B, T, F]
            return [core.nll(h, batch["y"], pad, reduction)], (state, None)
        (h, h_bw), new = model(
            batch["x"], states[0], batch["lengths"], features=True, ids_bw=batch["x_bw"], state_bw=states[1]
        )  # [B, T, F] each
        return [core.nll(h, batch["y"], pad, reduction), core.nll(h_bw, batch["y_bw"], pad, reduction)], new

    def loss(self, model, batch):
        """Mean NLL per target token (bidirectional: the mean of the two directions' means); in stream
        mode the states of the previous window come in detached."""
        states = (None, None) if batch["reset"] else (self._state, self._state_bw)
        nlls, (state, state_bw) = self._nll(model, batch, states, "mean")
        stream = self.m.mode == "stream"
        self._state = detach(state) if stream else None
        self._state_bw = detach(state_bw) if stream else None
        loss = nlls[0] if len(nlls) == 1 else 0.5 * (nlls[0] + nlls[1])
        return loss, batch["tokens"]

    def train_state(self) -> dict:
        """Stream mode: the hidden states carried into the next BPTT window (so a resume is exact)."""
        out = {}
        for key, st in (("hidden", self._state), ("hidden_bw", self._state_bw)):
            if st is not None:
                out[key] = [t.detach().cpu() for t in (st if isinstance(st, tuple) else (st,))]
        return out

    def load_train_state(self, state: dict, device) -> None:
        def restore(h):
            if not h:
                return None
            return tuple(t.to(device) for t in h) if self.m.cell == "lstm" else h[0].to(device)

        self._state, self._state_bw = restore(state.get("hidden")), restore(state.get("hidden_bw"))

    def evaluate(self, model, split: str, device, final: bool = False) -> dict:
        """loss, perplexity, bits_per_token, tokens; bidirectional: over both directions (the mean
        loss), with loss_fwd, perplexity_fwd, loss_bwd, perplexity_bwd beside."""
        states: tuple[State, State] = (None, None)  # stream mode: carried from window to window
        total_bw = 0.0

        def batch_loss(b: dict) -> torch.Tensor:
            nonlocal states, total_bw
            nlls, states = self._nll(model, b, (None, None) if b["reset"] else states, "sum")
            total_bw += float(nlls[1]) if len(nlls) > 1 else 0.0
            return nlls[0]

        total, n = self.summed_loss(model, split, device, batch_loss)
        loss = total / max(n, 1)
        if not self.m.bidirectional:
            return perplexities(loss) | {"tokens": n}
        loss_bw = total_bw / max(n, 1)  # each direction predicts the same n targets
        out = perplexities((loss + loss_bw) / 2) | {"tokens": n}
        return out | {
            "perplexity_fwd": perplexities(loss)["perplexity"],
            "perplexity_bwd": perplexities(loss_bw)["perplexity"],
            "loss_fwd": loss,
            "loss_bwd": loss_bw,
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
