"""Process-wide implementation switches that tests and benchmarks set for a block of code."""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def switched(slot: list[str], what: str, value: str, choices: tuple[str, ...]) -> Iterator[None]:
    """slot[0] = value inside the block, restored after; a value not in choices is a ValueError naming `what`."""
    if value not in choices:
        raise ValueError(f"{what} {value!r}: one of {', '.join(choices)}")
    old, slot[0] = slot[0], value
    try:
        yield
    finally:
        slot[0] = old
