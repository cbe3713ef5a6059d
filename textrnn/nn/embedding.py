"""Token embedding with dropout and optional pretrained word2vec / GloVe text vectors."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
from torch import nn

from textrnn.config import Embedding as EmbCfg
from textrnn.errors import UserError
from textrnn.nn.dropout import Dropout
from textrnn.text.vocab import Vocab


class Embedding(nn.Module):
    def __init__(self, vocab_size: int, dim: int, pad_id: int, dropout: float = 0.0):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.drop = Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.drop(self.emb(ids))  # [B, T] -> [B, T, E]

    @property
    def weight(self) -> torch.Tensor:
        return self.emb.weight


def pretrained_vectors(emb: nn.Embedding, vocab: Vocab, cfg: EmbCfg, fresh: bool) -> None:
    """model.embedding.pretrained: a fresh model reads the vectors (a resumed or loaded one has its
    weights from the run already); `freeze` holds them on every start, a resume's included."""
    if not cfg.pretrained:
        return
    if fresh:
        load_vectors(emb, vocab, cfg.pretrained)
    emb.weight.requires_grad_(not cfg.freeze)


def load_vectors(emb: nn.Embedding, vocab: Vocab, path: str, freeze: bool = False) -> float:
    """Copy vectors for vocabulary words from a word2vec/GloVe text file; return the share covered."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such vectors file (model.embedding.pretrained)")
    dim, found = emb.weight.shape[1], 0
    opener = gzip.open if path.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8", errors="replace") as f, torch.no_grad():
        for n, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(x.isdigit() for x in parts):
                continue  # word2vec header "count dim"
            if len(parts) != dim + 1:
                raise UserError(
                    f"{path}:{n}: expected a word and {dim} numbers (model.embedding.dim), got {len(parts) - 1} numbers"
                )
            i = vocab.stoi.get(parts[0])
            if i is not None:
                emb.weight[i] = torch.tensor([float(x) for x in parts[1:]])
                found += 1
    emb.weight.requires_grad_(not freeze)
    return found / max(1, len(vocab) - 4)
