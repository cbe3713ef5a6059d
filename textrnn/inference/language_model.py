"""A loaded language model: sampled continuations, next-word completion, perplexity."""

from __future__ import annotations

from typing import Optional, Sequence, Union, overload

from pydantic import ValidationError

from textrnn.decoding import generation
from textrnn.errors import UserError
from textrnn.inference.base import TaskModel, default, texts_arg

Words = list[tuple[str, float]]


class LanguageModel(TaskModel):
    """A next-word language model: `generate`, `complete`, `perplexity`.

    A bidirectional run (`model.bidirectional`) holds a forward and a backward LM; these methods
    use the forward one (left to right), so their figures compare with a unidirectional model's.
    `evaluate` reports both directions (perplexity_fwd, perplexity_bwd) and their joint perplexity.
    """

    task_name = "lm"
    kind = "a language model"
    methods = ("generate", "complete", "perplexity", "evaluate", "plot")

    def generation_defaults(self):
        """The pipeline's `generate:` block (max_tokens, temperature, top_k, top_p), validated."""
        from textrnn.config import LMGenerate, explain

        try:
            return LMGenerate.model_validate(self.pipeline.generate)
        except ValidationError as err:
            raise UserError(explain(err, LMGenerate, "pipeline.yaml", prefix=("generate",))) from None

    def _details(self) -> dict:
        return {"generate": self.generation_defaults().model_dump()}

    def generate(
        self,
        prompt: str = "",
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        num: int = 1,
    ) -> list[str]:
        """`num` sampled texts, each the prompt followed by its continuation (until the end of a line or
        `max_tokens` tokens). Settings left as None take the pipeline's `generate:` values; temperature 0
        is greedy; the same seed gives the same texts."""
        if not isinstance(prompt, str):
            raise UserError(f"generate: the prompt is a str, not {type(prompt).__name__}")
        d = self.generation_defaults()
        with self._lock, self.task.amp():
            texts = generation.generate(
                self.task,
                self.model,
                prompt,
                self.device,
                max_tokens=default(max_tokens, d.max_tokens),
                temperature=default(temperature, d.temperature),
                top_k=default(top_k, d.top_k),
                top_p=default(top_p, d.top_p),
                seed=seed,
                num=num,
            )
        return [f"{prompt.rstrip()} {t}".strip() if prompt.strip() else t for t in texts]

    @overload
    def complete(self, texts: str, k: int = 5) -> Words: ...  # type: ignore[overload-overlap]  # a str is one text
    @overload
    def complete(self, texts: Sequence[str], k: int = 5) -> list[Words]: ...

    def complete(self, texts, k: int = 5):
        """The k most likely next words after a text, as (word, probability) pairs, most likely first
        (whole words also for subword vocabularies). A list of texts gives a list of such lists."""
        items, single = texts_arg(texts, "complete")
        with self._lock, self.task.amp():
            out = [generation.complete(self.task, self.model, t, self.device, k) for t in items]
        return out[0] if single else out

    def perplexity(self, texts: Union[str, Sequence[str]]) -> float:
        """Perplexity of the texts (one line each, as `textrnn evaluate` reads a test file); the
        forward direction's for a bidirectional model."""
        from textrnn.data.sources import Examples

        items, _ = texts_arg(texts, "perplexity")
        items = [t for t in items if t.strip()]
        if not items:
            raise UserError("perplexity: no text to score")
        with self._lock:
            self.task.add_split("_texts", Examples(items, None, "<texts>"))
            try:
                with self.task.amp():
                    m = self.task.evaluate(self.model, "_texts", self.device)
                    return float(m.get("perplexity_fwd", m["perplexity"]))
            finally:
                self.task.drop_split("_texts")
