"""Lines of text from bytes: decoded one by one, so that bad bytes are named with their line."""

from __future__ import annotations

from typing import Iterable, Iterator, Union

from textrnn.errors import UserError


def decoded(raw_lines: Iterable[Union[bytes, str]], name: str, encoding: str = "UTF-8") -> Iterator[str]:
    """Each line without its line end; a line that is not valid `encoding` is a UserError naming name:line."""
    for n, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode(encoding) if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise UserError(f"{name}:{n}: bytes that are not valid {encoding}") from None
        yield line.rstrip("\n").rstrip("\r")
