"""train.adversarial: adversarial training on the word embeddings (Miyato, Dai & Goodfellow 2017).

Each step also trains on the batch with every sentence's embedded tokens e [T, E] moved by
r = ε ‖e‖ g / ‖g‖, g the loss's gradient with respect to e (norms over the whole sentence): the
small change of the input that raises the loss most, to first order. The model learns to give the
same answer to it, a regulariser that helped LSTM classifiers most where labelled data is scarce.
ε here is a fraction of the sentence's own embedding norm, so it does not depend on how large the
embedding's rows are (the paper's ε = 5 on normalised 256-dim embeddings is about 7 % for a 20-word
sentence, 1.5 % for a 400-word review). The cost: a second forward and backward per step.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class Perturbation:
    """A forward hook on the model's input embedding lookup: `capture()` makes the gradient with
    respect to its output available after backward; `apply()` adds the adversarial move to it."""

    def __init__(self, model: nn.Module, eps: float):
        self.eps = eps
        lookup: nn.Module = getattr(model, "input_embed").emb  # nn.Embedding: ids [B, T] -> [B, T, E], before dropout
        self._mode: Optional[str] = None
        self._delta: Optional[torch.Tensor] = None  # capture: zeros [B, T, E] that collect the gradient
        self._out: Optional[torch.Tensor] = None  # capture: the embedded batch [B, T, E]
        self._r: Optional[torch.Tensor] = None  # apply: the move [B, T, E]
        lookup.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, out: torch.Tensor) -> Optional[torch.Tensor]:
        if self._mode == "capture":
            # a zero tensor added to the output collects dL/de even where the embedding is frozen
            self._delta = torch.zeros_like(out, requires_grad=True)
            self._out = out.detach()
            return out + self._delta
        if self._mode == "apply":
            assert self._r is not None and self._r.shape == out.shape
            return out + self._r
        return None

    def capture(self) -> None:
        """The next forward records its embedded batch and, after backward, its gradient."""
        self._mode, self._r = "capture", None

    def apply(self) -> None:
        """The next forward adds ε ‖e‖ g / ‖g‖ per sentence to the embedded batch captured before."""
        assert self._delta is not None and self._out is not None
        g = self._delta.grad
        self._mode, self._delta = "apply", None
        if g is None:  # nothing reached the embedding (a frozen encoder below the loss): no move
            self._r = torch.zeros_like(self._out)
            return
        g = g.float()
        e_norm = self._out.float().flatten(1).norm(dim=1)  # [B]
        g_norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)  # [B]
        scale = (self.eps * e_norm / g_norm).view(-1, *([1] * (g.dim() - 1)))  # [B, 1, 1]
        self._r = (g * scale).to(self._out.dtype)
        self._out = None

    def off(self) -> None:
        """Forwards pass through unchanged (evaluation, inference)."""
        self._mode = self._delta = self._out = self._r = None
