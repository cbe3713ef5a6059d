"""Seq2seq: attention, batched search, parallel sources, and the train → save → load → translate round trip."""

import json

import pytest
import torch

from textrnn import config
from textrnn.config import Source
from textrnn.data import parallel
from textrnn.decoding import search
from textrnn.errors import UserError
from textrnn.nn import attention
from textrnn.tasks.seq2seq import Seq2Seq, Seq2SeqModel
from textrnn.training.trainer import run_pipeline

from helpers import ROOT, write

FAST = [
    "train.epochs=2",
    "model.embedding.dim=16",
    "model.encoder.hidden=16",
    "model.decoder.hidden=32",
    "data.train.limit=300",
    "train.batch_tokens=400",
    "train.threads=1",
]


@pytest.mark.parametrize("kind", ["dot", "general", "bahdanau"])
def test_attention_sums_to_one_and_ignores_padding(kind):
    torch.manual_seed(0)
    att = attention.build(kind, 8, 8)
    mem = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    q = torch.randn(2, 3, 8)
    ctx, w = att(q, att.keys(mem), mem, mask)
    assert ctx.shape == (2, 3, 8) and w.shape == (2, 3, 5)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3), atol=1e-6)
    assert (w[0, :, 3:] == 0).all()
    mem2 = mem.clone()
    mem2[0, 3:] = 100.0  # whatever sits in the padding changes nothing
    ctx2, w2 = att(q, att.keys(mem2), mem2, mask)
    assert torch.allclose(ctx[0], ctx2[0]) and torch.allclose(w[0], w2[0])


@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("rnn", 2)])
def test_padded_encoder_equals_packed(cell, layers):
    """Both paths of the encoder (padded: oneDNN on CPU; packed: cuDNN on GPU) compute nn.LSTM's packed result."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from textrnn.config import Encoder as EncCfg
    from textrnn.nn.cells import CELLS
    from textrnn.nn.padded_encoder import PaddedEncoder

    torch.manual_seed(0)
    cfg = EncCfg(cell=cell, hidden=6, layers=layers, bidirectional=True)
    rnn = CELLS[cell](5, 6, num_layers=layers, bidirectional=True, batch_first=True).eval()
    padded = PaddedEncoder(5, cfg).eval()

    def packed(x, lengths):  # torch's own multi-layer bidirectional RNN on a PackedSequence
        out, st = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], st

    with torch.no_grad():
        for name, w in rnn.named_parameters():  # e.g. weight_ih_l1_reverse
            layer, rev = int(name.split("_l")[1].split("_")[0]), name.endswith("_reverse")
            mod = (padded.bwd if rev else padded.fwd)[layer]
            getattr(mod, name.split("_l")[0] + "_l0").copy_(w)
    x, lengths = torch.randn(4, 7, 5), torch.tensor([7, 3, 1, 5])
    out_a, st = packed(x, lengths)
    h_a = st[0] if isinstance(st, tuple) else st
    grads = []
    for impl in ("padded", "packed"):
        padded.cfg = cfg.model_copy(update={"impl": impl})
        out_b, h = padded(x, lengths)
        assert torch.allclose(out_a, out_b, atol=1e-6) and torch.allclose(h_a, h, atol=1e-6), impl
        grads.append(torch.autograd.grad((out_b * torch.arange(6 * 2.0)).sum() + h.sum(), list(padded.parameters())))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*grads))


def tiny_model(input_feeding=False, cell="lstm", attn="general"):
    torch.set_num_threads(1)  # tiny ops: threads only contend on a shared machine
    torch.manual_seed(3)
    cfg = Seq2SeqModel.model_validate(
        {
            "embedding": {"dim": 12},
            "encoder": {"hidden": 8},
            "label_smoothing": 0.0,
            "decoder": {"hidden": 16, "cell": cell, "attention": attn, "input_feeding": input_feeding, "dropout": 0.0},
        }
    )
    m = Seq2Seq(cfg, 30, 30, 0, shared=True).double().eval()
    with torch.no_grad():  # sharpen the output so that search paths differ and end at different lengths
        m.decoder.out.bias.mul_(0).add_(torch.randn(30, dtype=torch.double) * 2)
    return m


def sources(n=7):
    g = torch.Generator().manual_seed(5)
    lengths = torch.randint(1, 9, (n,), generator=g)
    src = torch.zeros(n, int(lengths.max()), dtype=torch.long)
    for i, n_i in enumerate(lengths.tolist()):
        src[i, :n_i] = torch.randint(4, 30, (n_i,), generator=g)
    return src, lengths


@pytest.mark.parametrize("opts", [dict(), dict(input_feeding=True), dict(cell="gru", attn="bahdanau")])
def test_beam_batched_equals_one_by_one_and_beam1_equals_greedy(opts):
    model = tiny_model(**opts)
    src, lengths = sources()
    s = search.SearchCfg(beam=4, n_best=3, alpha=0.6, max_ratio=1.0, max_extra=4)
    batched = search.beam_search(model, src, lengths, s, 2, 3)
    for i in range(len(src)):
        n = int(lengths[i])
        single = search.beam_search(model, src[i : i + 1, :n], lengths[i : i + 1], s, 2, 3)[0]
        assert [h[0] for h in single] == [h[0] for h in batched[i]]
        assert [h[1] for h in single] == pytest.approx([h[1] for h in batched[i]], abs=1e-4)
        assert len(batched[i]) == 3
    g = search.greedy(model, src, lengths, s, 2, 3)
    b1 = search.beam_search(model, src, lengths, s.model_copy(update={"beam": 1, "n_best": 1}), 2, 3)
    assert [h[0][0] for h in g] == [h[0][0] for h in b1]
    assert len({len(h[0][0]) for h in g}) > 1  # hypotheses of different lengths were exercised


def test_max_length_and_ngram_blocking():
    model = tiny_model()
    src, lengths = sources()
    s = search.SearchCfg(beam=3, max_ratio=0.0, max_extra=12, block_ngram=2)
    for hyps in search.beam_search(model, src, lengths, s, 2, 3) + search.greedy(model, src, lengths, s, 2, 3):
        toks = hyps[0][0]
        assert len(toks) <= 12
        grams = list(zip(toks, toks[1:]))
        assert len(grams) == len(set(grams))


def test_teacher_forced_pass_matches_step_by_step():
    for feed in (False, True):
        model = tiny_model(input_feeding=feed)
        src, lengths = sources(3)
        tgt_in = torch.randint(4, 30, (3, 5))
        with torch.no_grad():
            hh, _ = model(src, lengths, tgt_in)
            state, mem = model.start(src, lengths)
            steps = []
            for t in range(5):
                h, state, _ = model.decoder.step(tgt_in[:, t], state, mem)
                steps.append(h)
        assert torch.allclose(hh, torch.stack(steps, 1), atol=1e-9)


def test_parallel_files_of_different_length(tmp_path):
    a = write(tmp_path / "x.de", "eins\nzwei\ndrei\n")
    b = write(tmp_path / "x.en", "one\ntwo\n")
    with pytest.raises(UserError) as e:
        parallel.read(Source(src=str(a), tgt=str(b)))
    msg = str(e.value)
    assert str(a) in msg and str(b) in msg and "3 lines" in msg and "has 2" in msg


def test_parallel_empty_lines_gz_tsv_and_bad_bytes(tmp_path):
    import gzip

    a = write(tmp_path / "x.de", "eins\n\nzwei\ndrei\n")
    b = tmp_path / "x.en.gz"
    with gzip.open(b, "wt", encoding="utf-8") as f:
        f.write("one\ntwo\n\nthree\n")
    p = parallel.read(Source(src=str(a), tgt=str(b)))
    assert p.src == ["eins", "drei"] and p.tgt == ["one", "three"] and p.skipped_empty == 2
    t = write(tmp_path / "fra-eng.tsv", "Go.\tVa !\nRun!\tCours !\n")
    p = parallel.read(Source(path=str(t), header=False, text=1, target=0))
    assert p.src == ["Va !", "Cours !"] and p.tgt == ["Go.", "Run!"]
    (tmp_path / "bad.de").write_bytes(b"gut\nschl\xe4ft\n")
    with pytest.raises(UserError, match=r"bad\.de:2: bytes that are not valid utf-8"):
        parallel.read(Source(src=str(tmp_path / "bad.de"), tgt=str(a)))
    with pytest.raises(Exception, match="both 'src' and 'tgt'"):
        Source(src=str(a))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "translate"
    cfg = config.load(ROOT / "tests/data/translate.yaml", FAST)
    _, summary = run_pipeline(cfg, output=str(run))
    return run, summary


def test_round_trip_and_run_directory(trained, cli):
    run, summary = trained
    for f in [
        "pipeline.yaml",
        "vocab.json",
        "model.safetensors",
        "last.pt",
        "metrics.jsonl",
        "summary.json",
        "attention.png",
        "textrnn.json",
    ]:
        assert (run / f).is_file(), f
    assert {"bleu", "chrf", "perplexity", "loss"} <= set(summary["test"])
    assert not list(run.glob(".*"))
    code, out, err = cli(
        "evaluate",
        run,
        "--set",
        f"data.test.src={ROOT}/tests/data/translation/valid.de",
        "--set",
        f"data.test.tgt={ROOT}/tests/data/translation/valid.en",
    )
    assert code == 0, err
    m = json.loads(out)
    assert {"bleu", "chrf", "perplexity"} <= set(m) and m["sentences"] == 150


def test_translate_keeps_lines_and_order(trained, cli, tmp_path):
    run, _ = trained
    lines = [
        "Der Mann liest ein Buch.",
        "",
        "Heute schläft das Kind im Garten.",
        "   ",
        "Ich trinke Milch.",
        "Wir essen den Kuchen nicht.",
        "Ünïcødé ☃ zzz",
    ]
    text = "\n".join(lines) + "\n"
    code, out, err = cli("translate", run, "--beam", "3", stdin=text.encode())
    assert code == 0, err
    got = out.split("\n")[:-1]
    assert len(got) == len(lines) and got[1] == "" and got[3] == ""
    # one by one gives the same lines (batched and sorted internally)
    for i in (0, 2, 4):
        c1, o1, _ = cli("translate", run, "--beam", "3", stdin=(lines[i] + "\n").encode())
        assert o1 == got[i] + "\n"
    f1, f2 = write(tmp_path / "a.de", text), write(tmp_path / "b.de", "Ich singe.")
    code, _, err = cli("translate", run, f1, f2, "--output-dir", tmp_path / "out", "--beam", "1", "--chunk", "2")
    assert code == 0, err
    assert (tmp_path / "out" / "a.en").read_text().count("\n") == len(lines)  # named by the target language
    assert (tmp_path / "out" / "b.en").read_text().count("\n") == 1
    code, _, _ = cli("translate", run, f1, "--n-best", "2", "--beam", "2", "-o", tmp_path / "nb.txt")
    rows = (tmp_path / "nb.txt").read_text().split("\n")[:-1]
    assert code == 0 and len(rows) == len(lines) and rows[0].count("\t") == 1 and rows[1] == ""
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "nb.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_translate_errors_write_nothing(trained, cli, tmp_path):
    run, _ = trained
    f1 = write(tmp_path / "a.de", "Ich singe.\n")
    code, _, err = cli("translate", run, f1, tmp_path / "missing.de", "--output-dir", tmp_path / "out")
    assert code == 2 and "missing.de: no such file" in err and not (tmp_path / "out").exists()
    (tmp_path / "bad.de").write_bytes(b"gut\nschl\xe4ft\n")
    code, _, err = cli("translate", run, tmp_path / "bad.de", "-o", tmp_path / "o.txt")
    assert code == 2 and "bad.de:2" in err and not list(tmp_path.glob("*o.txt*"))
    code, _, err = cli("translate", run, "--n-best", "4", "--beam", "2", stdin=b"Ich singe.\n")
    assert code == 2 and "n-best" in err


def test_translate_never_writes_over_an_input_or_another_output(trained, cli, tmp_path):
    run, _ = trained
    f1 = write(tmp_path / "a.de", "Ich singe.\n")
    write(tmp_path / "b" / "a.de", "Er singt.\n")
    for args, message in [
        ((f1, "-o", f1), "would overwrite an input"),
        ((f1, "-o", tmp_path / "b"), "is a folder"),
        ((f1, tmp_path / "b" / "a.de", "--output-dir", tmp_path / "out"), "would both be written to"),
        ((f1, "--output-dir", f1), "exists and is not a folder"),
        ((f1, "--alpha", "nan"), "alpha"),
        ((f1, "--beam", "0"), "beam"),
    ]:
        code, _, err = cli("translate", run, *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
    assert f1.read_text() == "Ich singe.\n" and not (tmp_path / "out").exists()


def test_quantized_translation_agrees_with_float(trained, cli):
    """int8 weights: same line contract; on the sample, most sentences translate exactly as in float32."""
    run, _ = trained
    src = (ROOT / "tests/data/translation/valid.de").read_text(encoding="utf-8").splitlines()[:40]
    text = "\n".join(src) + "\n"
    code, ref, err = cli("translate", run, "--beam", "1", stdin=text.encode())
    assert code == 0, err
    code, q, err = cli("translate", run, "--beam", "1", "--quantize", stdin=text.encode())
    assert code == 0, err
    ref, q = ref.split("\n")[:-1], q.split("\n")[:-1]
    assert len(q) == len(src)
    assert sum(a == b for a, b in zip(ref, q)) >= len(src) // 2


def test_translate_under_bf16_keeps_lines_or_refuses(trained, cli):
    from textrnn.training import precision

    run, _ = trained
    code, out, err = cli("translate", run, "--precision", "bf16", stdin="ein Hund .\n\nzwei Männer .\n".encode())
    if precision.cpu_native_bf16():
        assert code == 0, err
        assert out.split("\n")[1] == "" and len(out.split("\n")) == 4
    else:
        assert code == 2 and "no native bfloat16" in err and not out
