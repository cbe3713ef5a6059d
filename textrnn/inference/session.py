"""A conversation with a chat (or translation) model: its turns, its decoding settings, reset."""

from __future__ import annotations

import threading
from typing import Any, Callable

from textrnn.decoding import search

ReplyFn = Callable[[list[str], dict], str]  # (the last turns, oldest first; decoding settings) -> reply


class ChatSession:
    """One conversation: `reply(message)` answers with the last `history` turns as context.

    `options` are the decoding settings (search.SearchCfg field names) used for every reply;
    `set(name, value)` changes one after validating it.
    """

    def __init__(self, reply: ReplyFn, options: dict, history: int, max_chars: int = 2000):
        self.reply_fn, self.options, self.history_turns, self.max_chars = reply, dict(options), history, max_chars
        self.turns: list[str] = []  # user, bot, user, bot, …
        self._lock = threading.Lock()

    def reply(self, message: str) -> str:
        """The model's reply to one message (cut to `max_chars`); both are added to the conversation."""
        if not isinstance(message, str):
            from textrnn.errors import UserError

            raise UserError(f"reply: the message is a str, not {type(message).__name__}")
        message = message[: self.max_chars]
        with self._lock:
            answer = self.reply_fn(self.context(message), self.options)
            self.add(message, answer)
        return answer

    def context(self, message: str) -> list[str]:
        """The turns a reply to `message` sees: the last `history` turns with it, oldest first."""
        message = message[: self.max_chars]
        return (self.turns + [message])[-self.history_turns :] if self.history_turns > 0 else [message]

    def add(self, message: str, answer: str) -> None:
        """Record one exchange (for callers that compute the reply themselves, e.g. batched)."""
        self.turns += [message[: self.max_chars], answer]

    respond = reply

    @property
    def history(self) -> list[tuple[str, str]]:
        """The conversation so far as (message, reply) pairs, oldest first."""
        return list(zip(self.turns[0::2], self.turns[1::2]))

    def reset(self) -> None:
        """Forget the conversation (the settings stay)."""
        with self._lock:
            self.turns.clear()

    def set(self, name: str, value: Any) -> Any:
        """Change one decoding setting (beam, temperature, top_k, top_p, seed, …); a UserError names a
        value out of range. Returns the value as stored."""
        from textrnn.errors import UserError

        if name not in search.SearchCfg.model_fields:
            raise UserError(f"unknown option {name!r} (one of {', '.join(search.SearchCfg.model_fields)})")
        checked = search.settings({**self.options, name: value}, "set")
        self.options[name] = getattr(checked, name)
        return self.options[name]
