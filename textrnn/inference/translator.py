"""Loaded sequence-to-sequence models: a Translator (translate) and a Chatbot (reply, sessions)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from textrnn.decoding import search
from textrnn.errors import UserError
from textrnn.inference.base import TaskModel, texts_arg
from textrnn.inference.session import ChatSession

Hyps = list[tuple[str, float]]  # n-best (text, score), best first


class Translator(TaskModel):
    """A translation model: `translate(texts, beam=…, n_best=…)`."""

    task_name = "translate"
    kind = "a translation model"
    methods = (
        "translate",
        "translate_nbest",
        "translate_counted",
        "attention",
        "session",
        "respond_to",
        "respond_many",
        "evaluate",
        "plot",
    )

    def settings(self, **override) -> search.SearchCfg:
        """The pipeline's `generate:` settings with `override` (None = keep), validated."""
        from textrnn.tasks.seq2seq import search_cfg

        return search_cfg(self.pipeline, **override)

    def _details(self) -> dict:
        return {"generate": self.settings().model_dump(exclude={"batch_tokens"})}

    def translate_nbest(self, texts: Sequence[str], s: Optional[search.SearchCfg] = None) -> list[Hyps]:
        """The n-best (text, score) of each text in input order, under settings `s` (default: the
        pipeline's). Batched by length internally; an empty (blank) text gives [("", 0.0)]."""
        return self.translate_counted(texts, s)[0]

    def translate_counted(self, texts: Sequence[str], s: Optional[search.SearchCfg] = None):
        """translate_nbest, and (unknown tokens, tokens) of each source text from the same encoding."""
        items, _ = texts_arg(texts, "translate")
        s = s or self.task.search
        if not items:
            return [], []
        with self._lock, self.task.amp():
            return self.task.translate_counted(self.model, items, self.device, s)

    def translate(
        self,
        texts: Union[str, Sequence[str]],
        beam: Optional[int] = None,
        n_best: Optional[int] = None,
        alpha: Optional[float] = None,
        **settings,
    ) -> Union[str, list]:
        """Translate a text (→ str) or a list of texts (→ list, input order kept, empty stays empty).

        beam (1 = greedy), n_best (> 1: a list of the n best translations per text), alpha (length
        penalty) and any other search setting (max_ratio, block_ngram, temperature, seed, …) default
        to the pipeline's `generate:` section."""
        items, single = texts_arg(texts, "translate")
        s = self.settings(beam=beam, n_best=n_best, alpha=alpha, **settings)
        hyps = self.translate_nbest(items, s)
        out = [[t for t, _ in h] if s.n_best > 1 else (h[0][0] if h else "") for h in hyps]
        return out[0] if single else out

    def attention(self, text: str, **settings) -> tuple[list[str], list[str], np.ndarray]:
        """The best translation of one text and its attention: (source tokens, target tokens, weights [T, S])."""
        if not isinstance(text, str) or not text.strip():
            raise UserError("attention: give a non-empty text (str)")
        s = self.settings(**settings)
        with self._lock, self.task.amp():
            return self.task.attention(self.model, text, self.device, s)

    # -- conversation
    @property
    def history(self) -> int:
        """Turns of context each reply sees (1 for a translation model)."""
        return 1

    def respond_to(self, context: list[str], options: dict) -> str:
        """The reply to a conversation's last turns (oldest first) under decoding `options`; a
        translation model translates the last turn."""
        s = self.settings(**options)
        with self._lock, self.task.amp():
            return self.task.translate(self.model, [context[-1]], self.device, s)[0][0][0]

    def respond_many(self, contexts: Sequence[list[str]], options: dict) -> list[str]:
        """respond_to for many conversations in one batched search (equal to one by one, except that
        sampling draws differ); a translation model translates each last turn."""
        s = self.settings(**options)
        with self._lock, self.task.amp():
            return [h[0][0] for h in self.task.translate(self.model, [c[-1] for c in contexts], self.device, s)]

    def session(self, max_chars: int = 2000, **settings) -> ChatSession:
        """A conversation: `s.reply(message)`, `s.history`, `s.reset()`, `s.set(name, value)`."""
        base = self.settings(**settings)
        return ChatSession(self.respond_to, base.model_dump(), self.history, max_chars)


class Chatbot(Translator):
    """A chat model: `reply(context)` for one answer, `session()` for a conversation."""

    task_name = "chat"
    kind = "a chatbot"
    methods = ("reply", "session", "respond_to", "respond_many", "evaluate", "plot")  # type: ignore[assignment]

    @property
    def history(self) -> int:
        return self.pipeline.model.history

    def respond_to(self, context: list[str], options: dict) -> str:
        s = self.settings(**options)
        with self._lock, self.task.amp():
            return self.task.reply(self.model, context, self.device, s)

    def respond_many(self, contexts: Sequence[list[str]], options: dict) -> list[str]:
        s = self.settings(**options)
        with self._lock, self.task.amp():
            return self.task.replies(self.model, list(contexts), self.device, s)

    def reply(self, context: Union[str, Sequence[str]], **settings) -> str:
        """One reply to a message, or to a conversation given as its turns (oldest first)."""
        turns, _ = texts_arg(context, "reply")
        if not turns:
            raise UserError("reply: give a message")
        return self.respond_to(turns, settings)
