"""Chrono initialisation: gated cells start with memories spread up to N steps; rnn is refused."""

import pytest
import torch
from torch import nn

from textrnn import config
from textrnn.errors import UserError
from textrnn.nn.chrono import chrono_init
from textrnn.nn.mincells import MinGRU, MinLSTM

from helpers import write


def first_token_influence(m: nn.Module, t: int) -> torch.Tensor:
    """[H]: how much of the first token's effect on the state each unit still holds after t steps
    of zero input, relative to one step after it."""
    x = torch.zeros(2, t + 1, m.input_size)
    x[1, 0] = 1.0  # the two sequences differ in their first token only
    with torch.no_grad():
        out, _ = m(x)
    d = (out[1] - out[0]).abs()  # [T, H]
    return d[t] / d[0]


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_min_cells_remember_for_up_to_n_steps(cls):
    torch.manual_seed(0)
    plain = cls(6, 64)
    torch.manual_seed(0)
    long = cls(6, 64)
    chrono_init(long, 100)
    # PyTorch's init: each unit keeps about half its state a step, so 25 steps later nothing is left
    assert first_token_influence(plain, 25).max() < 1e-3
    # chrono 100: every unit keeps at least half a step, and some still hold most of it 25 steps on
    kept = first_token_influence(long, 1)
    assert kept.min() >= 0.5 - 1e-6 and kept.max() <= 1 - 1 / 100 + 1e-6
    assert first_token_influence(long, 25).max() > 0.6


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_fused_cells_keep_gates_start_open(cls):
    torch.manual_seed(0)
    m = cls(6, 32, num_layers=2, bidirectional=True)
    chrono_init(m, 50)
    for layer in ("l0", "l1_reverse"):
        b = (getattr(m, f"bias_ih_{layer}") + getattr(m, f"bias_hh_{layer}")).view(-1, 32).detach()
        keep = torch.sigmoid(b[1])  # LSTM forget / GRU update gate at zero input and state
        assert keep.min() >= 0.5 - 1e-6 and keep.max() <= 1 - 1 / 50 + 1e-6 and keep.max() > 0.9
        if cls is nn.LSTM:
            assert torch.equal(b[0], -b[1])  # input gate closes as the forget gate opens


BASE = "name: t\ntask: %s\ndata:\n  train: {path: train.tsv}\nmodel: %s\n"


@pytest.mark.parametrize(
    "task,model,where",
    [
        ("classify", "{encoder: {cell: rnn, chrono: 20}}", "model"),
        ("lm", "{cell: rnn, chrono: 20}", "model"),
        ("classify", "{encoder: {cell: lstm, chrono: 1}}", "model.encoder.chrono"),
    ],
)
def test_chrono_needs_gates_and_two_steps(tmp_path, task, model, where):
    p = write(tmp_path / "p.yaml", BASE % (task, model))
    with pytest.raises(UserError, match=rf"p.yaml: {where}.*(no gates|greater than or equal to 2)"):
        config.load(p)


def test_the_cli_refuses_chrono_on_rnn_in_one_line(tmp_path, cli):
    p = write(tmp_path / "p.yaml", BASE % ("classify", "{encoder: {cell: rnn, chrono: 20}}"))
    code, out, err = cli("run", p, "-o", tmp_path / "run")
    assert code == 2 and "cell: rnn has no gates" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
