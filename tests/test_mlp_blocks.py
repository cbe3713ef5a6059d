"""model.encoder.mlp: a residual MLP block after each encoder layer (the min-cell paper's layout)."""

import json

import pytest
import torch

import textrnn
from textrnn import config
from textrnn.config import Encoder
from textrnn.errors import UserError
from textrnn.nn.mincells import use_path
from textrnn.nn.mlp import MLPBlock
from textrnn.nn.padded_encoder import PaddedEncoder

from helpers import TINY_TRAIN, assert_padded_batch_equals_each_alone, write, write_tiny_data


@pytest.mark.parametrize("cell", ["mingru", "lstm"])
@pytest.mark.parametrize("path", ["parallel", "loop"])
def test_mlp_blocks_keep_padding_out(cell, path):
    torch.manual_seed(3)
    enc = PaddedEncoder(6, Encoder(cell=cell, hidden=5, layers=3, mlp=2)).double().eval()
    assert_padded_batch_equals_each_alone(enc, path)


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "lstm"])
def test_each_layer_runs_its_block_once_and_a_zero_block_is_the_identity(cell):
    torch.manual_seed(4)
    plain = PaddedEncoder(6, Encoder(cell=cell, hidden=5, layers=2)).eval()
    blocks = PaddedEncoder(6, Encoder(cell=cell, hidden=5, layers=2, mlp=3)).eval()
    assert blocks.mlps is not None and blocks.mlps[0].up.out_features == 3 * 10
    missing, _ = blocks.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("mlps.") for k in missing)
    x, lengths = torch.randn(3, 7, 6), torch.tensor([7, 5, 2])
    calls = []
    for m in blocks.mlps:
        m.register_forward_hook(lambda m, i, o: calls.append(m))
    with torch.no_grad():
        out, _ = blocks(x, lengths)
        assert calls == list(blocks.mlps)
        assert not torch.allclose(out, plain(x, lengths)[0], atol=1e-3)  # the blocks change the output
        for m in blocks.mlps:  # with W_2 = 0 and b_2 = 0 a block passes its input through unchanged
            m.down.weight.zero_()
            m.down.bias.zero_()
        assert torch.allclose(blocks(x, lengths)[0], plain(x, lengths)[0], atol=1e-6)


def test_mlp_block_shapes():
    m = MLPBlock(8, 4)
    assert m(torch.randn(2, 3, 8)).shape == (2, 3, 8) and m.up.out_features == 32


def test_layer_groups_hold_each_blocks_parameters_once():
    enc = PaddedEncoder(6, Encoder(cell="mingru", hidden=5, layers=3, mlp=2))
    groups = enc.layer_groups()
    assert len(groups) == 3
    flat = [id(p) for g in groups for p in g]
    assert sorted(flat) == sorted(id(p) for p in enc.parameters())  # every parameter, once
    assert all(any(p is q for q in groups[i]) for i in range(3) for p in enc.mlps[i].parameters())


BASE = "name: t\ntask: classify\ndata:\n  train: {path: train.tsv}\nmodel: {encoder: %s}\n"


@pytest.mark.parametrize(
    "enc,msg",
    [
        ("{cell: lstm, impl: packed, mlp: 2}", "impl: packed runs all layers in one call"),
        ("{cell: mingru, layers: 2, separate_directions: true, mlp: 2}", "separate_directions needs mlp: null"),
        ("{cell: mingru, mlp: 0}", "greater than or equal to 1"),
    ],
)
def test_mlp_refusals_name_the_key(tmp_path, enc, msg):
    p = write(tmp_path / "p.yaml", BASE % enc)
    with pytest.raises(UserError, match=rf"p.yaml: model.encoder.*{msg}"):
        config.load(p)


def test_the_cli_refuses_mlp_with_the_packed_impl_in_one_line(tmp_path, cli):
    p = write(tmp_path / "p.yaml", BASE % "{cell: lstm, impl: packed, mlp: 2}")
    code, out, err = cli("run", p, "-o", tmp_path / "run")
    assert code == 2 and "impl: packed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_mingru_classifier_with_mlp_blocks_trains_saves_loads_and_inspects(tmp_path, cli):
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "c.yaml",
        "name: c\ntask: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        "model: {embedding: {dim: 16}, encoder: {cell: mingru, hidden: 16, layers: 2, chrono: 8, mlp: 2}}\n"
        + TINY_TRAIN
        % 15,
    )
    run = textrnn.train(p, output=tmp_path / "run", progress=False)
    clf = textrnn.load(run.path, device="cpu")
    texts = ["a wonderful and superb story", "dull and awful", "I loved it"]
    assert [x.label for x in clf.predict(texts)] == ["positive", "negative", "positive"]
    assert [clf.predict(t).prob for t in texts] == pytest.approx([x.prob for x in clf.predict(texts)], abs=1e-5)
    code, out, err = cli("inspect", run.path, "a wonderful story", "-o", tmp_path / "insp", "--json")
    assert code == 0, err
    layers = json.loads((tmp_path / "insp" / "inspect.json").read_text())["runs"]["run"]["layers"]
    assert len(layers) == 4 and all(x["max_abs_diff_vs_fused"] < 1e-5 for x in layers)
    # inspect feeds layer 2 what the model does (layer 1's output through its block): the top layer's
    # states it reports are the ones the classifier computes
    enc, seen = clf.model.encoder, {}
    enc.fwd[1].register_forward_hook(lambda m, i, o: seen.update(h=o[0][0]))  # [T, H]
    with use_path("parallel"):  # each layer and direction through its own module (the loop path fuses them)
        clf.predict("a wonderful story")
    assert [x["hidden_norm"] for x in layers if x["layer"] == 2][0] == pytest.approx(
        seen["h"].norm(dim=-1).tolist(), abs=1e-4
    )
