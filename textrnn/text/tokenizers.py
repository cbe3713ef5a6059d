"""Tokenizers: spacy (rule-based, spacy.blank), sentencepiece (trained on train), whitespace, char."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterable

from textrnn.config import Tokenizer as TokCfg
from textrnn.errors import UserError
from textrnn.registry import get, register

_TAG = re.compile(r"<[^>]+>")


class Tokenizer:
    """Base: normalise (lower, strip html), split, truncate. Subclasses implement `_split`."""

    def __init__(self, cfg: TokCfg):
        self.cfg = cfg

    def normalise(self, text: str) -> str:
        if self.cfg.strip_html:
            text = _TAG.sub(" ", text)
        return text.lower() if self.cfg.lower else text

    def fit(self, texts: list[str]) -> None:
        """Learn from the train split (only sentencepiece learns anything)."""

    def _split(self, texts: list[str]) -> Iterable[list[str]]:
        raise NotImplementedError

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        out = self._split([self.normalise(t) for t in texts])
        n = self.cfg.max_length
        return [toks[:n] if n else toks for toks in out]

    def tokenize(self, text: str) -> list[str]:
        return self.tokenize_many([text])[0]

    def detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def save(self, folder: Path) -> None:
        """Write any learned files into the run directory."""

    def load(self, folder: Path) -> None:
        """Read learned files back from the run directory."""


@register("tokenizer", "whitespace")
class Whitespace(Tokenizer):
    def _split(self, texts):
        return [t.split() for t in texts]


@register("tokenizer", "char")
class Char(Tokenizer):
    def _split(self, texts):
        return [list(t) for t in texts]

    def detokenize(self, tokens):
        return "".join(tokens)


@register("tokenizer", "spacy")
class Spacy(Tokenizer):
    def __init__(self, cfg):
        super().__init__(cfg)
        import spacy

        try:
            self.nlp = spacy.blank(cfg.lang)
        except Exception:
            raise UserError(f"tokenizer.lang: spaCy has no language '{cfg.lang}'") from None

    def _split(self, texts):
        return [[t.text for t in doc if not t.is_space] for doc in self.nlp.tokenizer.pipe(texts, batch_size=1000)]

    def detokenize(self, tokens):
        text = " ".join(tokens)
        return re.sub(r" ([.,!?;:%)\]}]|n't|'s|'re|'ve|'ll|'d|'m)", r"\1", re.sub(r"([(\[{]) ", r"\1", text))


@register("tokenizer", "sentencepiece")
class SentencePiece(Tokenizer):
    FILE = "sentencepiece.model"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.sp = None

    def fit(self, texts):
        import sentencepiece as spm

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter([self.normalise(t) for t in texts]),
            model_writer=buf,
            vocab_size=self.cfg.vocab_size,
            model_type=self.cfg.model_type,
            character_coverage=self.cfg.character_coverage,
            hard_vocab_limit=False,
            bos_id=-1,
            eos_id=-1,
            unk_surface="<unk>",
            minloglevel=2,
            num_threads=2,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
        )
        self._set(buf.getvalue())

    def _set(self, proto: bytes):
        import sentencepiece as spm

        self.proto = proto
        self.sp = spm.SentencePieceProcessor(model_proto=proto)

    def _split(self, texts):
        if self.sp is None:
            raise RuntimeError("sentencepiece tokenizer used before fit() or load()")
        return self.sp.encode(texts, out_type=str)

    def detokenize(self, tokens):
        return self.sp.decode_pieces(tokens)

    def save(self, folder):
        (folder / self.FILE).write_bytes(self.proto)

    def load(self, folder):
        path = folder / self.FILE
        if not path.is_file():
            raise UserError(f"{path}: missing (the run directory is incomplete)")
        try:
            self._set(path.read_bytes())
        except (RuntimeError, OSError, TypeError) as e:
            raise UserError(f"{path}: not a sentencepiece model ({str(e).splitlines()[0] if str(e) else e})") from None


def build(cfg: TokCfg) -> Tokenizer:
    return get("tokenizer", cfg.kind)(cfg)
