"""The recurrent cells a pipeline's `cell:` names.

lstm / gru / rnn are PyTorch's own modules (fused kernels on CPU and GPU); mingru / minlstm
(nn/mincells.py) train over a whole sequence at once with a parallel scan and stack as
residual blocks (config.SCAN_CELLS lists them).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from textrnn.nn.mincells import MinGRU, MinLSTM

# (input_size, hidden_size, num_layers=…, dropout=…, batch_first=…) -> module with nn.GRU's interface
CELLS: dict[str, Callable[..., nn.Module]] = {
    "lstm": nn.LSTM,
    "gru": nn.GRU,
    "rnn": nn.RNN,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
}
