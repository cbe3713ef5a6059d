"""Chat: the seq2seq model trained on (context → reply) pairs cut from dialogues.

A context is the `history` turns before a reply; its turns are tokenized one by one and
joined with a `<sep>` token, and only its last `tokenizer.max_length` tokens are kept (the
most recent words matter most). Best checkpoint by valid perplexity; evaluation also decodes
the replies with the pipeline's `generate:` settings and reports BLEU, distinct-1/2 and the
share of the single most frequent reply.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, cast

import numpy as np

from textrnn.config import ChatModel, Data, SearchCfg, Source
from textrnn.data import dialogue, parallel
from textrnn.data.parallel import Pairs
from textrnn.errors import UserError
from textrnn.registry import register
from textrnn.tasks.seq2seq import Translate
from textrnn.text import tokenized
from textrnn.text.vocab import Vocab

SEP = "<sep>"
TURN_BREAK = "\n"  # turns of a context, joined in one string


def read_pairs(src: Source, history: int) -> Pairs:
    fmt = src.format if src.format in ("chatterbot", "dailydialog", "turns", "pairs") else None
    if fmt is None or not isinstance(src.path, str):
        raise UserError("a chat split needs `path:` and `format: chatterbot | dailydialog | turns | pairs`")
    dialogues = dialogue.read(fmt, src.path, src.encoding)
    contexts, replies = dialogue.make_pairs([[t.replace(TURN_BREAK, " ") for t in d] for d in dialogues], history)
    if src.limit is not None:
        contexts, replies = contexts[: src.limit], replies[: src.limit]
    if not replies:
        raise UserError(f"{src.path}: no dialogue with two turns or more (nothing to learn a reply from)")
    return Pairs([TURN_BREAK.join(c) for c in contexts], replies, src.path)


def read_splits(data: Data, history: int, seed: int) -> dict[str, Pairs]:
    """train / valid / test pairs; valid carved from train's pairs (fixed seed) when not declared."""
    return parallel.read_splits(data, seed, reader=lambda src: read_pairs(src, history))


def distinct(replies: list[list[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of all replies."""
    grams = [tuple(r[i : i + n]) for r in replies for i in range(len(r) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@register("task", "chat")
class Chat(Translate):
    name = "chat"
    transfer = None
    no_transfer = "its <sep> token is not in a language model's vocabulary"
    metric = "perplexity"
    higher_is_better = False

    @property
    def m(self) -> ChatModel:
        """The pipeline's `model:` block."""
        return cast(ChatModel, self.cfg.model)

    def read_splits(self, data: Optional[Data] = None) -> dict:
        return read_splits(data or self.cfg.data, self.m.history, self.cfg.train.seed)

    def read_test(self, source=None):
        return read_pairs(source or self.cfg.data.test, self.m.history)

    def fit(self, train: Pairs) -> None:
        turns = [t for c in train.src for t in c.split(TURN_BREAK)] + train.tgt
        self.tok.fit(turns)
        counts = tokenized.tokenize(self.tok, turns).counts()
        v = self.cfg.vocab
        self.vocab = self.vocab_tgt = Vocab.build(counts, v.min_freq, v.max_size, extra=[SEP])

    def encode_side(self, texts: list[str], target: bool, cache: bool = True):
        if target:
            return super().encode_side(texts, True, cache)
        turns = [c.split(TURN_BREAK) for c in texts]
        flat = tokenized.tokenize(self.tok, [t for ts in turns for t in ts], use_cache=cache).numericalize(self.vocab)
        sep, out, cut, k = self.vocab.stoi[SEP], [], 0, 0
        for ts in turns:
            parts = flat[k : k + len(ts)]
            k += len(ts)
            ids = np.concatenate([np.concatenate([p, [sep]]) for p in parts])[:-1]  # turn <sep> turn ...
            if len(ids) > self.max_src:
                cut += 1
                ids = ids[-self.max_src :]
            out.append(ids)
        return out, cut

    def reply(self, model, context: list[str], device, s) -> str:
        """One reply to a conversation (its last turns, oldest first)."""
        return self.replies(model, [context], device, s)[0]

    def replies(self, model, contexts: list[list[str]], device, s) -> list[str]:
        """The reply to each conversation, in one batched search."""
        texts = [TURN_BREAK.join(t.replace(TURN_BREAK, " ") for t in c[-self.m.history :]) for c in contexts]
        return [h[0][0] for h in self.translate(model, texts, device, s)]

    def eval_search(self, final: bool = False) -> SearchCfg:
        """How evaluate() decodes, per epoch and finished: the pipeline's own `generate:` settings (one reply each)."""
        return self.search.model_copy(update={"n_best": 1})

    def text_metrics(self, hyps: list[str], refs: list[str]) -> dict:
        """BLEU, distinct-1/2 and the share of the single most frequent reply."""
        import sacrebleu

        toks = [h.split() for h in hyps]
        return {
            "bleu": sacrebleu.corpus_bleu(hyps, [refs], force=True).score,  # corpora may be pre-tokenized
            "distinct_1": distinct(toks, 1),
            "distinct_2": distinct(toks, 2),
            "top_reply_share": Counter(hyps).most_common(1)[0][1] / max(len(hyps), 1),
        }

    def export_fields(self) -> dict:
        from textrnn.export import signature

        return signature.chat_fields(self)
