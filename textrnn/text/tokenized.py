"""Tokenized corpora as flat id arrays over a type table, cached on disk so a second run skips tokenization."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textrnn.text.tokenizers import Tokenizer
from textrnn.text.vocab import Vocab


@dataclass
class Tokenized:
    types: list[str]  # distinct token strings of this corpus
    flat: np.ndarray  # [N_tokens] int32 indexes into `types`
    offsets: np.ndarray  # [n_texts + 1] int64, text i is flat[offsets[i]:offsets[i+1]]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def counts(self) -> Counter:
        c = np.bincount(self.flat, minlength=len(self.types))
        return Counter({t: int(n) for t, n in zip(self.types, c) if n})

    def tokens(self, i: int) -> list[str]:
        return [self.types[j] for j in self.flat[self.offsets[i] : self.offsets[i + 1]]]

    def numericalize(self, vocab: Vocab) -> list[np.ndarray]:
        """Per-text arrays of vocabulary ids (int64)."""
        table = np.array([vocab.stoi.get(t, vocab.unk) for t in self.types] or [vocab.unk], dtype=np.int64)
        ids = table[self.flat] if len(self.flat) else np.zeros(0, np.int64)
        return np.split(ids, self.offsets[1:-1])


def _from_lists(seqs: list[list[str]]) -> Tokenized:
    index: dict[str, int] = {}
    flat = np.fromiter((index.setdefault(t, len(index)) for s in seqs for t in s), dtype=np.int32)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=offsets[1:])
    return Tokenized(list(index), flat, offsets)


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTRNN_CACHE", Path.home() / ".cache" / "textrnn"))


def _key(tok: Tokenizer, texts: list[str]) -> str:
    h = hashlib.sha256(tok.cfg.model_dump_json().encode())
    h.update(getattr(tok, "proto", b"") or b"")
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def tokenize(tok: Tokenizer, texts: list[str], use_cache: bool = True) -> Tokenized:
    """Tokenize texts, or read the result of an identical earlier call from the cache."""
    if not use_cache:
        return _from_lists(tok.tokenize_many(texts))
    folder = cache_dir() / f"tok-{_key(tok, texts)}"
    try:
        types = json.loads((folder / "types.json").read_text(encoding="utf-8"))
        return Tokenized(types, np.load(folder / "flat.npy"), np.load(folder / "offsets.npy"))
    except (OSError, ValueError):
        pass
    out = _from_lists(tok.tokenize_many(texts))
    try:  # write into a temporary folder, then rename: a crash never leaves half a cache entry
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        (tmp / "types.json").write_text(json.dumps(out.types, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "flat.npy", out.flat)
        np.save(tmp / "offsets.npy", out.offsets)
        os.replace(tmp, folder)
    except OSError:
        pass  # the cache is an optimisation only
    return out
