"""Parallel text: line-aligned `src:` / `tgt:` files (plain or .gz), or two columns of one csv/tsv/jsonl file."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from textrnn.config import Data, Source
from textrnn.errors import UserError
from textrnn.text.lines import decoded


@dataclass
class Pairs:
    src: list[str]
    tgt: list[str]
    origin: str  # what to name in messages
    skipped_empty: int = 0  # pairs dropped because one side was empty

    def __len__(self) -> int:
        return len(self.src)

    @property
    def texts(self) -> list[str]:  # the source side, for code that expects sources.Examples
        return self.src


def read_lines(path: str, encoding: str = "utf-8") -> list[str]:
    """All lines of a text file (plain or .gz) without their line ends; bad bytes name file and line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(p, "rb") as f:
        try:
            return list(decoded(f, path, encoding))
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: unreadable ({e})") from None


def _table_pairs(src: Source) -> tuple[list, list, str]:
    from textrnn.data import sources

    if src.target is None:
        raise UserError(f"{src.path}: a parallel table needs `target:` (the target column; `text:` is the source)")
    origin = src.path if isinstance(src.path, str) else ", ".join(src.path or [])
    ds = sources._table(src, origin)
    return (
        sources._column(ds, src.text, "source text", origin),
        sources._column(ds, src.target, "target", origin),
        origin,
    )


def read(src: Source) -> Pairs:
    """Sentence pairs of one split; pairs with an empty side are skipped and counted."""
    if src.src is not None and src.tgt is not None:
        a, b = read_lines(src.src, src.encoding), read_lines(src.tgt, src.encoding)
        if len(a) != len(b):
            raise UserError(
                f"parallel files differ in length: {src.src} has {len(a):,} lines, {src.tgt} has {len(b):,}"
            )
        origin = f"{src.src} + {src.tgt}"
    elif src.path is not None:
        a, b, origin = _table_pairs(src)
    else:
        raise UserError("a translation split needs `src:` + `tgt:` files or a table `path:` with `text:` and `target:`")
    keep = [
        i for i in range(len(a)) if a[i] is not None and b[i] is not None and str(a[i]).strip() and str(b[i]).strip()
    ]
    skipped = len(a) - len(keep)
    if src.limit is not None:
        keep = keep[: src.limit]
    if not keep:
        raise UserError(f"{origin}: no sentence pairs (the split is empty)")
    return Pairs([str(a[i]).strip() for i in keep], [str(b[i]).strip() for i in keep], origin, skipped)


def read_splits(data: Data, seed: int, reader: Callable[[Source], Pairs] = read) -> dict[str, Pairs]:
    """train / valid / test pairs; valid carved from train with a fixed seed when not declared."""
    from textrnn.data.sources import carve, carve_seed

    if data.train.streaming:
        raise UserError("data.train.streaming: classify and language-model (sentences) pipelines only")
    out = {"train": reader(data.train)}
    if data.valid is not None:
        out["valid"] = reader(data.valid)
    else:
        tr = out["train"]
        vi, ti = carve(len(tr), data.valid_fraction, carve_seed(data, seed), tr.origin)
        out["valid"] = Pairs([tr.src[i] for i in vi], [tr.tgt[i] for i in vi], tr.origin + " (valid part)")
        out["train"] = Pairs([tr.src[i] for i in ti], [tr.tgt[i] for i in ti], tr.origin, tr.skipped_empty)
    if data.test is not None:
        out["test"] = reader(data.test)
    return out
