"""Server-side chat sessions: the history of each conversation, by id, capped and expiring."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from textrnn.inference.session import ChatSession

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Entry:
    session: ChatSession
    used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one reply at a time per conversation


class Sessions:
    """Conversations of one model. A session idle for `ttl` seconds is forgotten; beyond `cap`
    sessions the least recently used one is dropped. Ids are the client's or new random ones."""

    def __init__(
        self,
        make: Callable[[], ChatSession],
        cap: int = 1000,
        ttl: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.make, self.cap, self.ttl, self.clock = make, cap, ttl, clock
        self.items: OrderedDict[str, Entry] = OrderedDict()

    def get(self, sid: str | None) -> tuple[str, Entry]:
        """The session `sid` (a new one when None, unknown or expired)."""
        self.expire()
        now = self.clock()
        if sid is None:
            sid = secrets.token_urlsafe(12)
        entry = self.items.pop(sid, None)
        if entry is None:
            entry = Entry(self.make(), now)
        entry.used = now
        self.items[sid] = entry
        while len(self.items) > self.cap:
            self.items.popitem(last=False)
        return sid, entry

    def reset(self, sid: str) -> bool:
        """Forget a conversation's turns; False if there is no such session."""
        self.expire()
        entry = self.items.get(sid)
        if entry is None:
            return False
        entry.session.reset()
        entry.used = self.clock()
        return True

    def expire(self) -> None:
        cutoff = self.clock() - self.ttl
        while self.items:
            sid, entry = next(iter(self.items.items()))
            if entry.used > cutoff:
                break
            del self.items[sid]
