"""The recurrent cells a pipeline's `cell:` names: PyTorch's own modules (fused kernels on CPU and GPU)."""

from __future__ import annotations

from typing import Callable

from torch import nn

# (input_size, hidden_size, num_layers=…, bidirectional=…, dropout=…, batch_first=…) -> module
CELLS: dict[str, Callable[..., nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
