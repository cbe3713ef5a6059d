"""The encoder's two paths on CPU, forward + backward, in one process: `impl: packed` (one fused call
over a PackedSequence, as nn.LSTM on packed input) vs `impl: padded` (the default, padded-but-exact).

python benchmarks/encoder_speed.py [--threads 1] [--batch 30] [--length 400] [--cell lstm]
"""

import argparse
import time

import torch

from textrnn.config import Encoder as EncCfg
from textrnn.nn.padded_encoder import PaddedEncoder


def tokens_per_s(cfg, batch, length, reps=3):
    torch.manual_seed(0)
    enc = PaddedEncoder(64, cfg)
    x = torch.randn(batch, length, 64, requires_grad=True)
    lengths = torch.full((batch,), length)
    lengths[: batch // 6] = length - 2  # a little padding, as bucketed batches have
    t0 = time.perf_counter()
    for _ in range(reps):
        out, _ = enc(x, lengths)
        out.sum().backward()
    return batch * length * reps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--length", type=int, default=400)
    ap.add_argument("--cell", default="lstm")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = EncCfg(hidden=128, bidirectional=True, cell=a.cell)
    for _ in range(2):  # twice, interleaved: the second round is the one to read
        packed = tokens_per_s(cfg.model_copy(update={"impl": "packed"}), a.batch, a.length)
        padded = tokens_per_s(cfg.model_copy(update={"impl": "padded"}), a.batch, a.length)
    print(f"packed {packed:,.0f} tok/s  padded {padded:,.0f} tok/s  ratio {padded / packed:.1f}x")


if __name__ == "__main__":
    main()
