"""Length-bucketed batches: the token budget, batch-size mode, shards, padding, prefetch."""

import random

import pytest
import torch

from textrnn.data.batching import make_batches, pad, pad_fraction, shard


def lengths(n=1000, seed=0):
    r = random.Random(seed)
    return [r.randint(1, 60) for _ in range(n)]


def test_token_budget_respected():  # every example once per epoch: tests/test_coverage.py, through the trainer
    ls = lengths()
    for shuffle in (False, True):
        bs = make_batches(ls, batch_tokens=500, shuffle=shuffle, seed=3)
        assert all(len(b) * max(ls[i] for i in b) <= 500 or len(b) == 1 for b in bs)


def test_batch_size_mode():
    bs = make_batches(lengths(105), batch_size=10)
    assert sorted(len(b) for b in bs) == [5] + [10] * 10


def test_bucketing_keeps_padding_low_and_shuffles_order():
    ls = lengths(5000)
    bs = make_batches(ls, batch_tokens=2000, shuffle=True, seed=1)
    assert pad_fraction(ls, bs) < 0.05
    assert bs != make_batches(ls, batch_tokens=2000, shuffle=True, seed=2)
    assert bs == make_batches(ls, batch_tokens=2000, shuffle=True, seed=1)


def test_shards_are_disjoint_and_cover():
    bs = make_batches(lengths(), batch_tokens=300, shuffle=True, seed=0)
    a, b = shard(bs, 0, 2), shard(bs, 1, 2)
    assert len(a) == len(b)
    ids_a, ids_b = {i for x in a for i in x}, {i for x in b for i in x}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == sum(len(x) for x in bs[: 2 * len(a)])  # all but the odd batch out


def test_pad():
    x, n = pad([[1, 2, 3], [4]], pad_id=0)
    assert x.tolist() == [[1, 2, 3], [4, 0, 0]] and n.tolist() == [3, 1]
    assert x.dtype == torch.long


def test_prefetch_keeps_order_raises_and_stops_early():
    import threading

    from textrnn.data.prefetch import prefetch

    for on in (True, False):
        assert list(prefetch(range(20), lambda x: x * x, enabled=on)) == [x * x for x in range(20)]

    def boom(x):
        if x == 3:
            raise ValueError("bad batch 3")
        return x

    got = []
    with pytest.raises(ValueError, match="bad batch 3"):
        for x in prefetch(range(10), boom):
            got.append(x)
    assert got == [0, 1, 2]
    seen = []
    for x in prefetch(range(1000), lambda x: seen.append(x) or x, depth=2):
        if x == 5:
            break
    assert not [t for t in threading.enumerate() if t.name == "textrnn-prefetch"]  # the thread was joined
    assert len(seen) <= 5 + 1 + 2 + 1  # it ran at most a queue's depth ahead
