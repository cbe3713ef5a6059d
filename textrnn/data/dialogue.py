"""Dialogues from chatterbot-corpus YAML, DailyDialog text, JSONL turns or TSV pairs → (context, reply) pairs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import yaml

from textrnn.errors import UserError

EOU = "__eou__"


def _lines(path: Path, encoding: str):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding=encoding) as f:
            for n, line in enumerate(f, 1):
                yield n, line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(f"{path}: bytes that are not valid {encoding}") from None


def chatterbot_files(where: str) -> list[Path]:
    """A folder (or a file) of chatterbot YAML, or a language of the installed `chatterbot_corpus` package."""
    p = Path(where)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(p.glob("*.yml")) + sorted(p.glob("*.yaml"))
        if not files:
            raise UserError(f"{p}: no chatterbot .yml files in this folder")
        return files
    try:
        import chatterbot_corpus
    except ImportError:
        raise UserError(f"{where}: no such folder, and the chatterbot-corpus package is not installed") from None
    lang = Path(chatterbot_corpus.__file__).parent / "data" / p.name  # `path: english` (made absolute by config)
    if not lang.is_dir():
        raise UserError(f"{where}: no such folder or chatterbot-corpus language")
    return chatterbot_files(str(lang))


def read_chatterbot(where: str) -> list[list[str]]:
    dialogues = []
    for f in chatterbot_files(where):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise UserError(f"{f}: not a chatterbot YAML file ({str(e).splitlines()[0]})") from None
        for conv in (doc or {}).get("conversations") or []:
            if isinstance(conv, list):
                dialogues.append([str(t).strip() for t in conv if t is not None and str(t).strip()])
    return dialogues


def read_dailydialog(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    """One dialogue per line, turns separated by __eou__."""
    out = []
    for _, line in _lines(path, encoding):
        turns = [t.strip() for t in line.split(EOU)]
        out.append([t for t in turns if t])
    return out


def read_turns_jsonl(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    """{"turns": ["hi", "hello", ...]} per line."""
    out = []
    for n, line in _lines(path, encoding):
        if not line.strip():
            continue
        try:
            turns = json.loads(line)["turns"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f'{path}:{n}: expected a JSON object with a "turns" list') from None
        out.append([str(t).strip() for t in turns if str(t).strip()])
    return out


def read_pairs_tsv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    """context<TAB>reply per line: each line is a two-turn dialogue."""
    out = []
    for n, line in _lines(path, encoding):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 2:
            raise UserError(f"{path}:{n}: expected context<TAB>reply, got {len(cols)} columns")
        out.append([c.strip() for c in cols])
    return out


READERS = {"dailydialog": read_dailydialog, "turns": read_turns_jsonl, "pairs": read_pairs_tsv}


def read(fmt: str, path: str, encoding: str = "utf-8") -> list[list[str]]:
    if fmt == "chatterbot":
        return read_chatterbot(path)
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    return READERS[fmt](p, encoding)


def make_pairs(dialogues: list[list[str]], history: int) -> tuple[list[list[str]], list[str]]:
    """Every turn after the first becomes a reply; its context is the `history` turns before it, in order."""
    contexts, replies = [], []
    for turns in dialogues:
        for i in range(1, len(turns)):
            contexts.append(turns[max(0, i - history) : i])
            replies.append(turns[i])
    return contexts, replies
