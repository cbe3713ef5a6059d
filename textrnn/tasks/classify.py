"""Text classification: embedding → (Bi)RNN encoder → pooling → MLP; accuracy, macro-F1, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Optional, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from textrnn.config import ClassifyModel, Pipeline
from textrnn.data import batching
from textrnn.errors import UserError
from textrnn.nn.embedding import Embedding, pretrained_vectors
from textrnn.nn.heads import MLP
from textrnn.nn.padded_encoder import PaddedEncoder, last_hidden
from textrnn.registry import get, register
from textrnn.rundir import write_json
from textrnn.tasks.base import Task, read_json
from textrnn.text import tokenized
from textrnn.training import transfer


class Classifier(nn.Module):
    recurrence: ClassVar[Literal["padded", "stacked"]] = "padded"  # `encoder`: a PaddedEncoder (see probe)

    def __init__(self, cfg: ClassifyModel, vocab_size: int, pad_id: int, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.embed = Embedding(vocab_size, cfg.embedding.dim, pad_id, cfg.embedding.dropout)
        self.encoder = PaddedEncoder(cfg.embedding.dim, cfg.encoder)
        d = self.encoder.out_dim
        self.pool = get("pooling", cfg.pooling)(d) if cfg.pooling == "attention" else get("pooling", cfg.pooling)()
        self.head = MLP(d * getattr(self.pool, "widen", 1), cfg.head.hidden, n_classes, cfg.head.dropout)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, with_weights: bool = False):
        """ids [B, T], lengths [B] -> logits [B, C] (and pooling weights [B, T] or None)."""
        pooled, weights = self.pooled(self.embed(ids), lengths)
        logits = self.head(pooled)
        return (logits, weights) if with_weights else logits

    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Embedded x [B, T, E], lengths [B] -> what the head reads [B, F], pooling weights [B, T] or None."""
        out, state = self.encoder(x, lengths)  # [B, T, D*H]
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths.to(x.device)[:, None]  # [B, T]
        return self.pool(out, mask, last_hidden(state, self.cfg.encoder))

    @property
    def input_embed(self) -> Embedding:
        """The embedding that feeds the first recurrent layer."""
        return self.embed

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Fine-tuning's layer groups, bottom to top: embedding; encoder layer 0 (both directions); …;
        encoder layer L-1; pooling + head."""
        top = [*self.pool.parameters(), *self.head.parameters()]
        return [list(self.embed.parameters()), *self.encoder.layer_groups(), top]


@register("task", "classify")
class Classify(Task):
    name = "classify"
    metric = "accuracy"
    higher_is_better = True
    transfer_from = ("lm", "classify")  # a classify run: another task's classifier, fine-tuned further

    def __init__(self, cfg: Pipeline):
        super().__init__(cfg)
        self.labels: list[str] = []
        self.targets: dict[str, np.ndarray] = {}  # split -> class indices

    @property
    def m(self) -> ClassifyModel:
        """The pipeline's `model:` block."""
        return cast(ClassifyModel, self.cfg.model)

    def prepare(self, splits, run: Path, resume: bool) -> None:
        self.fresh = not resume  # a new model: pretrained vectors are read (not when loading a run)
        train, splits = self.take_stream(splits)
        lm = transfer.source(self.cfg)
        if resume:
            self.load(run)
        else:
            if lm is not None:  # model.init_from: the source run's tokenizer and vocabulary
                self.load_text(lm)
                self.labels = sorted(self.extend_vocab(train) if self.cfg.vocab.extend else self.train_labels(train))
            elif self.streaming:
                self.labels = sorted(self.fit_stream(train))
            else:
                self.fit_text(train.texts)
                self.labels = sorted(set(train.labels))
            if len(self.labels) < 2:
                raise UserError(
                    f"{train.origin}: the label column has one class only ({self.labels[0]!r}); "
                    f"a classifier needs two or more"
                )
        self.targets = {}
        for name, ex in splits.items():
            self.add_split(name, ex)

    def train_labels(self, train) -> set:
        """The labels of the train split (a stream: one pass)."""
        if not self.streaming:
            return set(train.labels)
        return {lab for _, labs in train.chunks(self.cfg.data.stream_buffer, None) for lab in labs or ()}

    def extend_vocab(self, train) -> set:
        """vocab.extend: the train split's words counted >= vocab.extend times that the source run's
        vocabulary lacks are appended to it (its ids unchanged); returns the train labels."""
        if self.streaming:
            counts, labels = self.stream_counts(train)
        else:
            counts, labels = tokenized.tokenize(self.tok, train.texts).counts(), set(train.labels)
        self.vocab = self.vocab.extended(counts, self.cfg.vocab.extend or 1)
        return labels

    def add_split(self, name: str, ex) -> None:
        index = {lab: i for i, lab in enumerate(self.labels)}
        unknown = sorted(set(ex.labels) - set(index))
        if unknown:
            raise UserError(
                f"{ex.origin}: label {unknown[0]!r} does not occur in the train split "
                f"(train labels: {', '.join(self.labels)})"
            )
        self.data[name] = self.encode_texts(ex.texts)
        self.targets[name] = np.array([index[lab] for lab in ex.labels])

    @property
    def majority_share(self):
        """The share of the valid split's most frequent class (what always answering it scores)."""
        y = self.targets.get("valid")
        return None if y is None or not len(y) else float(np.bincount(y).max() / len(y))

    def load_buffer(self, texts: list[str], labels) -> None:
        index = {lab: i for i, lab in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise UserError(
                f"{self.train_stream.origin}: label {unknown[0]!r} was not seen when the vocabulary "
                f"was built (labels: {', '.join(self.labels)})"
            )
        self.data["train"] = self.encode_texts(texts, cache=False)
        self.targets["train"] = np.array([index[lab] for lab in labels])

    def build_model(self) -> nn.Module:
        m = self.m
        model = Classifier(m, len(self.vocab), self.vocab.pad, len(self.labels))
        pretrained_vectors(model.embed.emb, self.vocab, m.embedding, self.fresh)
        return model

    def collate(self, split: str, idx: list[int], device) -> dict:
        ids, lengths = batching.pad([self.data[split][i] for i in idx], self.vocab.pad)
        y = torch.as_tensor(self.targets[split][idx], dtype=torch.long)
        return {
            "ids": batching.to_device(ids, device),
            "lengths": lengths,
            "y": batching.to_device(y, device),
            "tokens": int(lengths.sum()),
        }

    def loss(self, model, batch):
        logits = model(batch["ids"], batch["lengths"])
        return F.cross_entropy(logits.float(), batch["y"]), batch["tokens"]

    def evaluate(self, model, split: str, device, final: bool = False) -> dict:
        n = len(self.labels)
        conf = np.zeros((n, n), dtype=np.int64)  # [true, predicted]

        def batch_loss(b: dict) -> torch.Tensor:
            logits = model(b["ids"], b["lengths"]).float()
            np.add.at(conf, (b["y"].cpu().numpy(), logits.argmax(-1).cpu().numpy()), 1)
            return F.cross_entropy(logits, b["y"], reduction="sum")

        total_loss, _ = self.summed_loss(model, split, device, batch_loss)
        return metrics_from_confusion(conf, total_loss)

    @torch.no_grad()
    def predict_proba(self, model, texts: list[str], device) -> np.ndarray:
        """Class probabilities [N, C] in input order; batched by length internally."""
        return self.predict_ids(model, self.numericalize(texts, cache=False), device)  # no disk cache at inference

    @torch.no_grad()
    def predict_ids(self, model, ids: list[np.ndarray], device) -> np.ndarray:
        """predict_proba on numericalized texts [N] (an empty array is read as one <unk>)."""
        model.eval()
        ids = self.nonempty(ids)
        out = np.zeros((len(ids), len(self.labels)), dtype=np.float32)
        t = self.cfg.train
        for idx in batching.make_batches([len(a) for a in ids], t.batch_tokens, t.batch_size):
            x, lengths = batching.pad([ids[i] for i in idx], self.vocab.pad)
            out[idx] = model(x.to(device), lengths).float().softmax(-1).cpu().numpy()
        return out

    def save(self, run: Path) -> None:
        self.save_text(run)
        write_json(run / "labels.json", self.labels)

    def load(self, run: Path) -> None:
        self.load_text(run)
        path = run / "labels.json"
        if not path.is_file():
            raise UserError(f"{path}: missing (the run directory is incomplete)")
        labels = read_json(path)
        if not (
            isinstance(labels, list)
            and len(labels) >= 2
            and all(isinstance(x, str) for x in labels)
            and len(set(labels)) == len(labels)
        ):
            raise UserError(f"{path}: not a list of two or more distinct labels")
        self.labels = labels

    def plots(self, model, run: Path, device) -> None:
        from textrnn.tools.plots import confusion

        split = "test" if "test" in self.data else "valid"
        m = self.evaluate(model, split, device)
        confusion(np.array(m["confusion"]), self.labels, run / "confusion.png", f"{self.cfg.name}: {split}")

    def export_fields(self) -> dict:
        from textrnn.export import signature

        return signature.classify_fields(self)


def metrics_from_confusion(conf: np.ndarray, total_loss: float) -> dict:
    n_ex = int(conf.sum())
    tp = np.diag(conf).astype(float)
    prec = tp / np.maximum(conf.sum(0), 1)
    rec = tp / np.maximum(conf.sum(1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    present = conf.sum(1) > 0  # macro over classes that occur in this split
    return {
        "loss": total_loss / max(n_ex, 1),
        "accuracy": float(tp.sum() / max(n_ex, 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "examples": n_ex,
        "confusion": conf.tolist(),
    }
