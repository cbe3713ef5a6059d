"""Vocabulary: specials first (pad=0, unk=1, bos=2, eos=3), then tokens by frequency; JSON on disk."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Container, Iterable, Optional, Sequence

from textrnn.errors import UserError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = [PAD, UNK, BOS, EOS]


class Vocab:
    def __init__(self, itos: list[str]):
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad, self.unk, self.bos, self.eos = (self.stoi[s] for s in SPECIALS)

    @classmethod
    def build(
        cls, counts: Counter, min_freq: int = 1, max_size: Optional[int] = None, extra: Sequence[str] = ()
    ) -> "Vocab":
        """Keep tokens counted >= min_freq, most frequent first (ties alphabetical), after the specials."""
        specials = SPECIALS + [e for e in extra if e not in SPECIALS]
        words = _ranked(counts, min_freq, set(specials))
        if max_size is not None:
            words = words[: max(0, max_size - len(specials))]
        return cls(specials + words)

    def extended(self, counts: Counter, min_freq: int) -> "Vocab":
        """This vocabulary with the counted tokens it lacks (>= min_freq, most frequent first, ties
        alphabetical) appended: every id it had keeps its token (vocab.extend, model.init_from)."""
        return Vocab(self.itos + _ranked(counts, min_freq, self.stoi))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        get, unk = self.stoi.get, self.unk
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"itos": self.itos}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        if not path.is_file():
            raise UserError(f"{path}: missing (the run directory is incomplete)")
        try:
            itos = json.loads(path.read_text(encoding="utf-8"))["itos"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not a textrnn vocabulary ({e})") from None
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos) or len(set(itos)) != len(itos):
            raise UserError(f"{path}: not a textrnn vocabulary (itos must be a list of distinct strings)")
        if itos[: len(SPECIALS)] != SPECIALS:
            raise UserError(f"{path}: not a textrnn vocabulary (it must start with {', '.join(SPECIALS)})")
        return cls(itos)


def _ranked(counts: Counter, min_freq: int, exclude: Container[str]) -> list[str]:
    """The counted tokens >= min_freq not in `exclude`, most frequent first (ties alphabetical)."""
    return sorted((w for w, c in counts.items() if c >= min_freq and w not in exclude), key=lambda w: (-counts[w], w))
