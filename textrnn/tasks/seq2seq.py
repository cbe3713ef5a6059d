"""Sequence to sequence (translate; chat reuses it): BiRNN encoder → attentional RNN decoder.

Teacher-forced training with masked, label-smoothed cross-entropy; validation loss,
perplexity, BLEU and chrF (sacrebleu on detokenized text) every epoch; the best checkpoint by
valid BLEU. Decoding is `textrnn.decoding.search` (batched greedy / beam search).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar, Literal, Optional, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from rich.console import Console
from torch import nn

from textrnn import config
from textrnn.config import SearchCfg, Seq2SeqModel
from textrnn.data import batching, parallel
from textrnn.decoding import search
from textrnn.errors import UserError
from textrnn.nn.decoder import Decoder, select_state
from textrnn.nn.embedding import Embedding, pretrained_vectors
from textrnn.nn.padded_encoder import PaddedEncoder
from textrnn.registry import register
from textrnn.tasks.base import Task
from textrnn.text import tokenized, tokenizers
from textrnn.text.vocab import Vocab
from textrnn.training import dist, transfer

console = Console(stderr=True, soft_wrap=True)
DEFAULT_MAX_LENGTH = 200  # tokens kept per side when tokenizer.max_length is not set


class Seq2Seq(nn.Module):
    recurrence: ClassVar[Literal["padded", "stacked"]] = "padded"  # `encoder`: a PaddedEncoder (see probe)

    def __init__(self, cfg: Seq2SeqModel, src_vocab: int, tgt_vocab: int, pad_id: int, shared: bool):
        super().__init__()
        E, enc = cfg.embedding.dim, cfg.encoder
        self.bidirectional = enc.bidirectional
        self.src_embed = Embedding(src_vocab, E, pad_id, cfg.embedding.dropout)
        self.tgt_embed = self.src_embed if shared else Embedding(tgt_vocab, E, pad_id, cfg.embedding.dropout)
        self.encoder = PaddedEncoder(E, enc)  # padded, on fused kernels; equals the packed result
        self.decoder = Decoder(self.tgt_embed, E, self.encoder.out_dim, self.encoder.out_dim, cfg.decoder, tgt_vocab)

    @property
    def input_embed(self) -> Embedding:
        """The embedding that feeds the first recurrent layer (the encoder's)."""
        return self.src_embed

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Fine-tuning's layer groups, bottom to top: source embedding; each encoder layer; the rest
        (bridge, attention, decoder, target embedding and output layer)."""
        low = [list(self.src_embed.parameters()), *self.encoder.layer_groups()]
        seen = {id(p) for g in low for p in g}
        return [*low, [p for p in self.parameters() if id(p) not in seen]]

    def _top(self, s: torch.Tensor) -> torch.Tensor:
        """Final encoder states [L*D, B, H] -> top layer, directions concatenated [B, D*H]."""
        return torch.cat([s[-2], s[-1]], -1) if self.bidirectional else s[-1]

    def start(self, src: torch.Tensor, lengths: torch.Tensor):
        """src [B, S], lengths [B] -> decoder state, memory {memory [B, S, D], keys [B, S, K], mask [B, S]}."""
        out, st = self.encoder(self.src_embed(src), lengths)  # [B, S, D]
        mask = torch.arange(src.size(1), device=src.device)[None, :] < lengths.to(src.device)[:, None]
        state = self.decoder.init_state(self._top(st))  # st: final hidden states [L*D, B, H] (no cell states)
        return state, {"memory": out, "keys": self.decoder.attn.keys(out), "mask": mask}

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: src [B, S], lengths [B], tgt_in [B, T] -> h~ [B, T, O], attention [B, T, S]."""
        state, mem = self.start(src, lengths)
        return self.decoder(tgt_in, state, mem)

    def logits(self, hh: torch.Tensor) -> torch.Tensor:
        return self.decoder.out(hh)  # [..., O] -> [..., V]

    def step(self, y, state, mem):
        """y [N] -> log-probabilities [N, V], state, attention [N, S]."""
        hh, state, w = self.decoder.step(y, state, mem)
        return F.log_softmax(self.logits(hh).float(), -1), state, w

    @staticmethod
    def select(state, mem, idx):
        mem = None if mem is None else {k: v.index_select(0, idx) for k, v in mem.items()}
        return select_state(state, idx), mem


def search_cfg(cfg: config.Pipeline, **override) -> SearchCfg:
    """The pipeline's `generate:` section validated, with overrides (None = keep) validated too."""
    try:
        s = SearchCfg.model_validate(cfg.generate)
    except ValidationError as err:
        raise UserError(config.explain(err, SearchCfg, "pipeline", prefix=("generate",))) from None
    return search.settings(s, **override) if any(v is not None for v in override.values()) else s


@register("task", "translate")
class Translate(Task):
    name = "translate"
    metric = "bleu"
    higher_is_better = True

    def __init__(self, cfg: config.Pipeline):
        super().__init__(cfg)
        # tokenizers never truncate here: the task truncates and counts what it cut
        self.max_src = cfg.tokenizer.max_length or DEFAULT_MAX_LENGTH
        self.tok = tokenizers.build(cfg.tokenizer.model_copy(update={"max_length": None}))
        tcfg = self.m.tokenizer_tgt
        self.max_tgt = (tcfg.max_length if tcfg else None) or self.max_src
        self.tok_tgt = self.tok if tcfg is None else tokenizers.build(tcfg.model_copy(update={"max_length": None}))
        self._vocab_tgt: Optional[Vocab] = None
        self.search = search_cfg(cfg)
        self.tgt: dict[str, list[np.ndarray]] = {}  # split -> target id arrays
        self.refs: dict[str, list[str]] = {}  # split -> raw target sentences (BLEU references)
        self.first: dict[str, str] = {}  # split -> its first source sentence (attention plot)

    @property
    def m(self) -> Seq2SeqModel:
        """The pipeline's `model:` block."""
        return cast(Seq2SeqModel, self.cfg.model)

    @property
    def vocab_tgt(self) -> Vocab:
        """The target-side vocabulary (the source side's with model.share_vocab)."""
        if self._vocab_tgt is None:
            raise RuntimeError(f"{type(self).__name__}: no target vocabulary before prepare() or load()")
        return self._vocab_tgt

    @vocab_tgt.setter
    def vocab_tgt(self, vocab: Vocab) -> None:
        self._vocab_tgt = vocab

    @property
    def joint(self) -> bool:
        return self.tok_tgt is self.tok

    # -- data
    def read_splits(self, data: Optional[config.Data] = None) -> dict:
        return parallel.read_splits(data or self.cfg.data, self.cfg.train.seed)

    def read_test(self, source=None):
        return parallel.read(source or self.cfg.data.test)

    def fit(self, train: parallel.Pairs) -> None:
        """Tokenizer(s) and vocabulary from the train split: joint (one model, one vocab) or per side."""
        if self.joint:
            self.tok.fit(train.src + train.tgt)
        else:
            self.tok.fit(train.src)
            self.tok_tgt.fit(train.tgt)
        cs = tokenized.tokenize(self.tok, train.src).counts()
        ct = tokenized.tokenize(self.tok_tgt, train.tgt).counts()
        v = self.cfg.vocab
        if self.m.share_vocab:
            self.vocab = self.vocab_tgt = Vocab.build(cs + ct, v.min_freq, v.max_size)
        else:
            self.vocab = Vocab.build(cs, v.min_freq, v.max_size)
            self.vocab_tgt = Vocab.build(ct, v.min_freq, v.max_size)

    def fit_from(self, lm: Path, train: parallel.Pairs) -> None:
        """model.init_from: the source tokenizer and vocabulary are the LM run's; the target side shares
        them (model.share_vocab), or has its own vocabulary counted on the train targets (and its own
        tokenizer fitted, with model.tokenizer_tgt; else the LM's tokenizer, not refitted)."""
        self.tok.load(lm)
        self.vocab = Vocab.load(lm / "vocab.json")
        if self.m.share_vocab:
            self.vocab_tgt = self.vocab
            return
        if not self.joint:
            self.tok_tgt.fit(train.tgt)
        v = self.cfg.vocab
        self.vocab_tgt = Vocab.build(tokenized.tokenize(self.tok_tgt, train.tgt).counts(), v.min_freq, v.max_size)

    def encode_side(self, texts: list[str], target: bool, cache: bool = True) -> tuple[list[np.ndarray], int]:
        """Token ids of one side, truncated to the side's max length; also how many were cut."""
        tok, vocab, n = (self.tok_tgt, self.vocab_tgt, self.max_tgt) if target else (self.tok, self.vocab, self.max_src)
        ids = tokenized.tokenize(tok, texts, use_cache=cache).numericalize(vocab)
        cut = sum(len(a) > n for a in ids)
        return [a[:n] for a in ids], cut

    def prepare(self, splits, run: Path, resume: bool) -> None:
        self.fresh = not resume  # a new model: pretrained vectors are read (not when loading a run)
        lm = transfer.source(self.cfg)
        if resume:
            self.load(run)
        elif lm is not None:
            self.fit_from(lm, splits["train"])
        else:
            self.fit(splits["train"])
        for name, ex in splits.items():
            self.add_split(name, ex)

    def add_split(self, name: str, ex) -> None:
        src, cut_s = self.encode_side(ex.src, False)
        tgt, cut_t = self.encode_side(ex.tgt, True)
        self.data[name] = self.nonempty(src)
        self.tgt[name], self.refs[name], self.first[name] = tgt, list(ex.tgt), ex.src[0]
        if cut_s or cut_t:
            console.print(
                f"[dim]{name}: {cut_s:,} source / {cut_t:,} target sentences truncated to "
                f"{self.max_src} / {self.max_tgt} tokens[/]"
            )

    # -- model
    def build_model(self) -> nn.Module:
        m = self.m
        if m.share_vocab and self.vocab is not self.vocab_tgt:
            raise UserError("model.share_vocab: the run directory has two vocabularies")
        try:
            model = Seq2Seq(m, len(self.vocab), len(self.vocab_tgt), self.vocab.pad, m.share_vocab)
        except ValueError as e:
            raise UserError(f"model.decoder.attention: {e}") from None
        pretrained_vectors(model.src_embed.emb, self.vocab, m.embedding, self.fresh)
        return model

    # -- batching
    def lengths(self, split: str) -> list[int]:
        return [max(len(a), len(b) + 1) for a, b in zip(self.data[split], self.tgt[split])]

    def collate(self, split: str, idx: list[int], device) -> dict:
        v = self.vocab_tgt
        src, src_len = batching.pad([self.data[split][i] for i in idx], self.vocab.pad)
        ys = [self.tgt[split][i] for i in idx]
        tgt_in, _ = batching.pad([np.concatenate([[v.bos], y]) for y in ys], v.pad)  # [B, T]
        tgt_out, tlen = batching.pad([np.concatenate([y, [v.eos]]) for y in ys], v.pad)  # [B, T]
        return {
            "src": batching.to_device(src, device),
            "src_len": src_len,
            "tgt_in": batching.to_device(tgt_in, device),
            "tgt_out": batching.to_device(tgt_out, device),
            "tokens": int(tlen.sum()),
        }

    def _logits(self, model, b: dict):
        hh, _ = model(b["src"], b["src_len"], b["tgt_in"])  # [B, T, O]
        mask = b["tgt_out"] != self.vocab_tgt.pad  # [B, T]
        logits = cast(Seq2Seq, dist.unwrap(model)).logits(hh[mask]).float()
        return logits, b["tgt_out"][mask]  # [N, V], [N]: real target tokens only

    def loss(self, model, batch):
        logits, gold = self._logits(model, batch)
        return F.cross_entropy(logits, gold, label_smoothing=self.m.label_smoothing), batch["tokens"]

    # -- decoding
    def decode_ids(self, model, src: list[np.ndarray], device, s: SearchCfg) -> list[list[search.Hyp]]:
        """n-best token-id hypotheses for id arrays, in input order; batched by length internally."""
        out: list = [None] * len(src)
        budget = max(1, s.batch_tokens // max(1, s.beam))
        for idx in batching.make_batches([len(a) for a in src], budget):
            x, lengths = batching.pad([src[i] for i in idx], self.vocab.pad)
            res = search.search(model, x.to(device), lengths, s, self.vocab_tgt.bos, self.vocab_tgt.eos)
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def detok(self, ids: list[int]) -> str:
        return self.tok_tgt.detokenize(self.vocab_tgt.decode(ids))

    @torch.no_grad()
    def translate(self, model, texts: list[str], device, s: SearchCfg) -> list[list[tuple[str, float]]]:
        """n-best (text, score) per input text; an empty (blank) text gives [("", 0.0)]."""
        return self.translate_counted(model, texts, device, s)[0]

    @torch.no_grad()
    def translate_counted(self, model, texts: list[str], device, s: SearchCfg):
        """translate, and (unknown tokens, tokens) of each source text from the same encoding."""
        model.eval()
        real = [i for i, t in enumerate(texts) if t.strip()]
        out: list = [[("", 0.0)] for _ in texts]
        counts = [(0, 0)] * len(texts)
        if real:
            ids, _ = self.encode_side([texts[i] for i in real], False, cache=False)
            for i, c in zip(real, self.unknown_of(ids)):
                counts[i] = c
            for i, hyps in zip(real, self.decode_ids(model, self.nonempty(ids), device, s)):
                out[i] = [(self.detok(t), sc) for t, sc in hyps]
        return out, counts

    # -- metrics
    def mean_loss(self, model, split: str, device) -> float:
        """Mean cross-entropy (no smoothing) over every real target token of a split."""

        def batch_loss(b: dict) -> torch.Tensor:
            logits, gold = self._logits(model, b)
            return F.cross_entropy(logits, gold, reduction="sum")

        total, n_tok = self.summed_loss(model, split, device, batch_loss)
        return total / max(n_tok, 1)

    @torch.no_grad()
    def evaluate(self, model, split: str, device, final: bool = False) -> dict:
        """Loss and perplexity, then the split decoded with eval_search(final) and scored by
        text_metrics(); `beam` says how it was decoded (1: greedy)."""
        loss = self.mean_loss(model, split, device)
        s = self.eval_search(final)
        hyps = [self.detok(h[0][0]) for h in self.decode_ids(model, self.data[split], device, s)]
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            **self.text_metrics(hyps, self.refs[split]),
            "sentences": len(hyps),
            "beam": s.beam,
        }

    def eval_search(self, final: bool = False) -> SearchCfg:
        """How evaluate() decodes: greedy for the per-epoch score; the pipeline's `generate:` settings
        (beam search, length penalty) for a finished model's figure."""
        if final:
            return self.search.model_copy(update={"n_best": 1})
        return self.search.model_copy(update={"beam": 1, "n_best": 1})

    def text_metrics(self, hyps: list[str], refs: list[str]) -> dict:
        """The metrics of decoded sentences against their references (evaluate's hook)."""
        import sacrebleu

        return {
            "bleu": sacrebleu.corpus_bleu(hyps, [refs]).score,
            "chrf": sacrebleu.corpus_chrf(hyps, [refs]).score,
        }

    # -- run directory
    def save(self, run: Path) -> None:
        self.tok.save(run)
        self.vocab.save(run / "vocab.json")
        if not self.joint:
            (run / "target").mkdir(exist_ok=True)
            self.tok_tgt.save(run / "target")
        if self.vocab_tgt is not self.vocab:
            self.vocab_tgt.save(run / "vocab_tgt.json")

    def load(self, run: Path) -> None:
        self.tok.load(run)
        self.vocab = Vocab.load(run / "vocab.json")
        if not self.joint:
            self.tok_tgt.load(run / "target")
        self.vocab_tgt = self.vocab if self.m.share_vocab else Vocab.load(run / "vocab_tgt.json")

    # -- plots
    @torch.no_grad()
    def attention(self, model, text: str, device, s: SearchCfg):
        """Best translation of one text and its attention: (source tokens, target tokens, weights [T, S])."""
        model.eval()
        ids, _ = self.encode_side([text], False, cache=False)
        src = self.nonempty(ids)[0]
        hyp = self.decode_ids(model, [src], device, s)[0][0][0]
        v = self.vocab_tgt
        x = torch.as_tensor(src)[None].to(device)
        _, w = model(x, torch.tensor([len(src)]), torch.as_tensor([v.bos] + hyp)[None].to(device))  # [1, T+1, S]
        return self.vocab.decode(src.tolist()), v.decode(hyp) + ["<eos>"], w[0].float().cpu().numpy()

    def plots(self, model, run: Path, device) -> None:
        split = "test" if "test" in self.first else "valid"
        s, t, w = self.attention(model, self.first[split], device, self.search.model_copy(update={"beam": 1}))
        plot_attention(w, s, t, run / "attention.png", f"{self.cfg.name}: {split} sentence 1")

    def export_fields(self) -> dict:
        from textrnn.export import signature

        return signature.seq2seq_fields(self, self.max_src)


def plot_attention(w: np.ndarray, src: list[str], tgt: list[str], path: Path, title: str) -> None:
    """Heat map of attention weights [T, S]: target tokens down, source tokens across."""
    from textrnn.tools.plots import _save, subplots

    fig, ax = subplots(figsize=(max(4, 0.45 * len(src) + 2), max(3, 0.4 * len(tgt) + 1.5)))
    im = ax.imshow(w, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(src)), src, rotation=60, ha="right")
    ax.set_yticks(range(len(tgt)), tgt)
    ax.set_xlabel("source"), ax.set_ylabel("target (generated)")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    ax.set_title(title)
    _save(fig, path)
