"""Network parts: pooling and attention ignore padding, the encoder's padded batch equals each sequence alone."""

import pytest
import torch

from textrnn.config import Encoder as EncCfg
from textrnn.nn import scan_kernels
from textrnn.nn.heads import AttentionPool, ConcatPool, MaxPool, MeanPool
from textrnn.nn.padded_encoder import PaddedEncoder
from textrnn.tasks.classify import Classifier, ClassifyModel


@pytest.mark.parametrize("pool", [MeanPool(), MaxPool(), AttentionPool(8), ConcatPool()])
def test_pooling_ignores_padding(pool):
    torch.manual_seed(0)
    out = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    last = out[[0, 1], [2, 4]]  # [2, 8]: each row's last real step
    a, _ = pool(out, mask, last)
    out2 = out.clone()
    out2[0, 3:] = 1e3  # garbage in padded positions
    b, _ = pool(out2, mask, last)
    assert torch.allclose(a, b)
    ref, _ = pool(out[:1, :3], mask[:1, :3], last[:1])
    assert torch.allclose(a[:1], ref, atol=1e-6)


def test_max_pooling_values_and_gradient_equal_the_masked_reference():
    torch.manual_seed(1)
    out = torch.randn(3, 6, 4, dtype=torch.double, requires_grad=True)
    mask = torch.tensor([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        out[1, 2:] += 10.0  # padding that would win the max if it counted
    got, _ = MaxPool()(out, mask, None)
    (g,) = torch.autograd.grad(got.sin().sum(), out)
    ref = out.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
    (gr,) = torch.autograd.grad(ref.sin().sum(), out)
    assert torch.equal(got, ref) and torch.equal(g, gr) and not g[1, 2:].any()
    with torch.no_grad():  # inference takes amax: the same values
        assert torch.equal(MaxPool()(out, mask, None)[0], ref)


def test_max_pooling_sends_a_tied_maximum_s_gradient_to_one_step():
    """As torch.max's: where several steps hold the maximum (zeros after ReLU or dropout), one of them
    takes the whole gradient, the first."""
    out = torch.tensor([[[0.0, 1.0], [0.0, 1.0], [-1.0, 0.5]]], requires_grad=True)  # [1, 3, 2]
    mask = torch.ones(1, 3, dtype=torch.bool)
    got, _ = MaxPool()(out, mask, None)
    (g,) = torch.autograd.grad(got, out, torch.tensor([[2.0, 3.0]]))
    assert torch.equal(got, torch.tensor([[0.0, 1.0]]))
    assert torch.equal(g, torch.tensor([[[2.0, 3.0], [0.0, 0.0], [0.0, 0.0]]]))


def test_concat_pooling_is_last_max_and_mean_side_by_side():
    out, mask = torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 0, 0], [1] * 5], dtype=torch.bool)
    last = torch.randn(2, 4)
    got, _ = ConcatPool()(out, mask, last)
    assert torch.equal(got[:, :4], last)
    assert torch.equal(got[:, 4:8], MaxPool()(out, mask, last)[0])
    assert torch.equal(got[:, 8:], MeanPool()(out, mask, last)[0])


def test_attention_weights_sum_to_one_and_zero_on_padding():
    pool = AttentionPool(4)
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    _, w = pool(torch.randn(1, 3, 4), mask, None)
    assert torch.allclose(w.sum(-1), torch.ones(1)) and w[0, 2] == 0


@pytest.mark.parametrize("cell,impl", [("lstm", "padded"), ("gru", "padded"), ("rnn", "padded"), ("lstm", "packed")])
def test_encoder_padded_batch_equals_each_sequence_alone(cell, impl):
    torch.manual_seed(0)
    enc = PaddedEncoder(6, EncCfg(cell=cell, hidden=5, layers=2, bidirectional=True, impl=impl)).eval()
    x = torch.randn(2, 7, 6)
    out, _ = enc(x, torch.tensor([4, 7]))
    alone, _ = enc(x[:1, :4], torch.tensor([4]))
    assert out.shape == (2, 7, 10)
    assert torch.allclose(out[0, :4], alone[0], atol=1e-6)
    assert out[0, 4:].abs().sum() == 0


@pytest.mark.parametrize(
    "pooling,cell",
    [("last", "lstm"), ("mean", "gru"), ("max", "rnn"), ("attention", "lstm"), ("last", "gru"), ("concat", "mingru")],
)
def test_classifier_batched_equals_one_by_one(pooling, cell):
    torch.manual_seed(0)
    enc = EncCfg(hidden=8, cell=cell, layers=2)
    m = Classifier(ClassifyModel(pooling=pooling, encoder=enc), vocab_size=20, pad_id=0, n_classes=3).eval()
    seqs = [[5, 6, 7, 8, 9], [4, 5], [10, 11, 12]]
    x = torch.zeros(3, 5, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s)
    batched = m(x, torch.tensor([5, 2, 3]))
    for i, s in enumerate(seqs):
        single = m(torch.tensor([s]), torch.tensor([len(s)]))
        assert torch.allclose(batched[i], single[0], atol=1e-5)


def test_pretrained_vectors_are_copied_and_bad_files_named(tmp_path):
    from textrnn.errors import UserError
    from textrnn.nn.embedding import load_vectors
    from textrnn.text.vocab import Vocab

    vocab = Vocab(["<pad>", "<unk>", "<bos>", "<eos>", "good", "bad", "film"])
    emb = torch.nn.Embedding(len(vocab), 3)
    (tmp_path / "v.txt").write_text("2 3\ngood 1 2 3\nunrelated 0 0 0\nbad -1 -2 -3\n")
    covered = load_vectors(emb, vocab, str(tmp_path / "v.txt"), freeze=True)
    assert emb.weight[4].tolist() == [1, 2, 3] and emb.weight[5].tolist() == [-1, -2, -3]
    assert covered == pytest.approx(2 / 3) and not emb.weight.requires_grad
    (tmp_path / "w.txt").write_text("good 1 2\n")
    with pytest.raises(UserError, match=r"w.txt:1: expected a word and 3 numbers"):
        load_vectors(emb, vocab, str(tmp_path / "w.txt"))


def test_dropout_keeps_1_minus_p_scaled_and_is_identity_in_eval(monkeypatch):
    """Without numba: the mask from 16-bit lanes of torch's generator."""
    import torch

    from textrnn.nn import scan_kernels
    from textrnn.nn.dropout import Dropout

    monkeypatch.setattr(scan_kernels, "available", lambda: False)
    torch.manual_seed(0)
    d = Dropout(0.3)
    x = torch.ones(200_000, requires_grad=True)
    y = d(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    for lane in range(4):  # each of the four 16-bit numbers a 64-bit draw gives is unbiased
        assert abs(kept.view(-1, 4)[:, lane].float().mean().item() - 0.7) < 0.01
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    torch.manual_seed(0)
    assert torch.equal(Dropout(0.3)(x), y)  # torch's seed fixes the mask
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows through the kept elements only, scaled alike
    d.eval()
    assert d(x) is x


def test_use_masks_torch_draws_the_16_bit_masks_with_numba_installed_too(monkeypatch):
    from textrnn.nn import dropout

    x = torch.ones(10_000)
    torch.manual_seed(0)
    with dropout.use_masks("torch"):
        y = dropout.Dropout(0.3)(x)
    monkeypatch.setattr(scan_kernels, "available", lambda: False)
    torch.manual_seed(0)
    assert torch.equal(dropout.Dropout(0.3)(x), y)
    with pytest.raises(ValueError, match="masks 'fast': one of auto, torch"):
        with dropout.use_masks("fast"):
            pass


@pytest.mark.skipif(not scan_kernels.available(), reason="needs numba (textrnn[fast])")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_dropout_draws_its_mask_again_in_the_backward(dtype):
    """With numba: the counter-based mask keeps 1 - p of the elements, each position and each call
    independently, scaled by 1 / (1 - p); torch's seed fixes it; the backward applies the forward's own
    mask although the generator has moved on; non-contiguous inputs; identity in eval."""
    from textrnn.nn.dropout import Dropout

    torch.manual_seed(0)
    d = Dropout(0.3)
    x = torch.ones(400, 1000, dtype=dtype).t().requires_grad_()  # [1000, 400], not contiguous
    y = d(x)
    kept = y != 0
    n = kept.numel()
    assert abs(kept.float().mean().item() - 0.7) < 5 * (0.21 / n) ** 0.5
    for part in (kept[:500], kept[500:], kept[:, ::2], kept[:, 1::2]):  # no position is favoured
        assert abs(part.float().mean().item() - 0.7) < 5 * (0.21 / part.numel()) ** 0.5
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    again = d(x) != 0  # the next call: a new mask, independent of the first
    agree = (again == kept).float().mean().item()
    assert abs(agree - (0.7**2 + 0.3**2)) < 5 * (0.25 / n) ** 0.5
    torch.manual_seed(0)
    assert torch.equal(Dropout(0.3)(x), y)  # torch's seed fixes the mask
    grad = torch.randn(x.shape, dtype=dtype)
    y.backward(grad)  # after the generator drew two more masks
    assert torch.equal(x.grad, torch.where(kept, grad * y.detach(), torch.zeros((), dtype=dtype)))
    d.eval()
    assert d(x) is x


class _FlatAndTied(torch.nn.Module):
    """Parameters laid out as cuDNN lays out an RNN's (views into one flat buffer), plus a tied pair."""

    def __init__(self):
        super().__init__()
        flat = torch.randn(12)
        self.a, self.b = torch.nn.Parameter(flat[:8].view(2, 4)), torch.nn.Parameter(flat[8:])
        self.emb = torch.nn.Embedding(5, 4)
        self.out = torch.nn.Linear(4, 5)
        self.out.weight = self.emb.weight


def test_weights_round_trip_with_flat_buffer_views_and_ties(tmp_path):
    from safetensors.torch import save_model

    from textrnn import rundir
    from textrnn.errors import UserError

    torch.manual_seed(0)
    m, fresh = _FlatAndTied(), _FlatAndTied()
    rundir.save_weights(m, tmp_path / "w.safetensors")
    rundir.load_weights(fresh, tmp_path / "w.safetensors")
    for (name, a), b in zip(m.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert fresh.out.weight is fresh.emb.weight
    plain = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5))
    plain[1].weight = plain[0].weight
    save_model(plain, str(tmp_path / "old.safetensors"))  # how earlier versions wrote a tied model
    again = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5))
    again[1].weight = again[0].weight
    rundir.load_weights(again, tmp_path / "old.safetensors")
    assert torch.equal(again[1].weight, plain[1].weight) and torch.equal(again[1].bias, plain[1].bias)
    with pytest.raises(UserError, match="do not fit"):
        rundir.load_weights(torch.nn.Linear(4, 5), tmp_path / "w.safetensors")
