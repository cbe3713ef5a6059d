"""Request bodies of the HTTP API, validated by pydantic (an unknown or bad field is a 422 naming it).

Options carry the Python API's names (`textrnn.load(...).translate(texts, beam=…)`). The
server's limits (texts per request, characters per text, tokens, beam) are checked by
`Limits.check`, which names the field that is over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

from pydantic import BaseModel, ConfigDict, Field

from textrnn.errors import UserError


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Texts(Body):
    texts: list[str] = Field(description="The input texts; results come back in this order.")


class PredictBody(Texts):
    pass


class CompleteBody(Texts):
    k: Annotated[int, Field(ge=1, le=100)] = Field(5, description="Words per text, most likely first.")


class GenerateBody(Texts):
    texts: list[str] = Field(description="Prompts ('' = from the start); each gets `num` continuations.")
    max_tokens: Optional[Annotated[int, Field(ge=0)]] = None
    temperature: Optional[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None
    top_k: Optional[Annotated[int, Field(ge=0)]] = None
    top_p: Optional[Annotated[float, Field(gt=0, le=1)]] = None
    seed: Optional[Annotated[int, Field(ge=0, lt=2**63)]] = None
    num: Annotated[int, Field(ge=1, le=16)] = 1


class Search(Body):
    """Decoding settings (None = the run's pipeline `generate:` value), as in Translator.translate."""

    beam: Optional[Annotated[int, Field(ge=1)]] = None
    n_best: Optional[Annotated[int, Field(ge=1)]] = None
    alpha: Optional[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None
    max_ratio: Optional[Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]] = None
    max_extra: Optional[Annotated[int, Field(ge=0)]] = None
    block_ngram: Optional[Annotated[int, Field(ge=0)]] = None
    min_length: Optional[Annotated[int, Field(ge=0)]] = None
    repetition_penalty: Optional[Annotated[float, Field(gt=0, allow_inf_nan=False)]] = None
    temperature: Optional[Annotated[float, Field(ge=0, allow_inf_nan=False)]] = None
    top_k: Optional[Annotated[int, Field(ge=0)]] = None
    top_p: Optional[Annotated[float, Field(gt=0, le=1)]] = None
    seed: Optional[Annotated[int, Field(ge=0, lt=2**63)]] = None

    def options(self) -> dict:
        return {k: v for k, v in self.model_dump(exclude={"texts", "message", "session"}).items() if v is not None}


class TranslateBody(Search):
    texts: list[str] = Field(description="Source texts; an empty text gives an empty translation.")


class ChatBody(Search):
    message: str = Field(description="The user's message.")
    session: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(
        None, description="Conversation id (keeps the history on the server); omitted: a new conversation."
    )


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (`textrnn serve` flags)."""

    max_texts: int = 64
    max_chars: int = 2000
    max_tokens: int = 200
    max_beam: int = 10
    max_body: int = 1_000_000  # bytes

    def check(self, body: Body) -> None:
        """A UserError naming the field over a limit."""
        texts = getattr(body, "texts", None)
        if texts is not None:
            if len(texts) > self.max_texts:
                raise UserError(f"texts: {len(texts)} texts, at most {self.max_texts} per request")
            for i, t in enumerate(texts):
                if len(t) > self.max_chars:
                    raise UserError(f"texts[{i}]: {len(t)} characters, at most {self.max_chars}")
        message = getattr(body, "message", None)
        if message is not None and len(message) > self.max_chars:
            raise UserError(f"message: {len(message)} characters, at most {self.max_chars}")
        for name, cap in (
            ("beam", self.max_beam),
            ("n_best", self.max_beam),
            ("max_tokens", self.max_tokens),
            ("max_extra", self.max_tokens),
        ):
            value = getattr(body, name, None)
            if value is not None and value > cap:
                raise UserError(f"{name}: {value}, at most {cap} on this server")
