"""What the tests share besides fixtures: the repository root, a file writer, tiny data sets."""

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- tiny data (conftest's `runs` fixture trains one run per task on it)
POS = [
    "a wonderful film",
    "great acting and a great story",
    "I loved it",
    "superb and moving",
    "a delight",
    "truly great fun",
    "wonderful music",
    "I loved the cast",
    "a superb story",
    "great, just great",
]
NEG = [
    "a dull film",
    "boring and far too long",
    "I hated it",
    "awful acting",
    "a mess",
    "dull, dull, dull",
    "a boring story",
    "I hated the cast",
    "awful music",
    "truly awful",
]
LM_TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the mat is red",
    "I'll be there in five minutes",
    "I'll be there in ten minutes",
    "see you soon",
] * 6
PAIRS = [
    ("ein hund", "a dog"),
    ("eine katze", "a cat"),
    ("der hund läuft", "the dog runs"),
    ("die katze läuft", "the cat runs"),
    ("der hund schläft", "the dog sleeps"),
    ("die katze schläft", "the cat sleeps"),
    ("ein roter hund", "a red dog"),
    ("eine rote katze", "a red cat"),
]
# Valid BLEU (which picks a translation run's best epoch) counts up to 4-grams: with only the 2-3 word
# PAIRS it is 0 for a perfect model, and the best epoch would be chosen on noise.
FOUR_WORD_PAIRS = [("der rote hund läuft", "the red dog runs"), ("die rote katze schläft", "the red cat sleeps")]
TINY_TRAIN = (
    "train: {epochs: %d, batch_tokens: 60, optimizer: {lr: 0.02}, threads: 1, patience: 50, checkpoint_every: 0,\n"
    "        precision: fp32}\n"  # pinned: the same numbers on every CPU, whatever auto picks there
)


def write_tiny_data(d: Path) -> None:
    """The tiny corpora the tiny runs train on: sent.tsv, lm.txt, mt.de / mt.en."""
    write(
        d / "sent.tsv",
        "text\tlabel\n" + "".join(f"{t}\tpositive\n" for t in POS) + "".join(f"{t}\tnegative\n" for t in NEG),
    )
    write(d / "lm.txt", "\n".join(LM_TEXTS) + "\n")
    pairs = (PAIRS + FOUR_WORD_PAIRS) * 4
    write(d / "mt.de", "\n".join(s for s, _ in pairs) + "\n")
    write(d / "mt.en", "\n".join(t for _, t in pairs) + "\n")


# -- a live server (the serve extra)
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live(models, settings=None):
    """A uvicorn server on a free loopback port in a thread; yields (base URL, app)."""
    import uvicorn

    from textrnn.serve.app import Settings, create_app

    app = create_app(models, settings or Settings())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        t.join(10)


class Cut(Exception):
    """What `cut_at` raises from inside a run: a crash at a chosen step."""


def cut_at(cfg, output, step: int, **kw) -> None:
    """Run a pipeline and crash it right after training step `step` (its last checkpoint stays),
    for tests that resume it and compare with an uninterrupted run."""
    import pytest

    from textrnn.training.trainer import run_pipeline

    def die(s):
        if s == step:
            raise Cut

    with pytest.raises(Cut):
        run_pipeline(cfg, output=str(output), on_step=die, **kw)


def assert_padded_batch_equals_each_alone(enc, path: str) -> None:
    """A PaddedEncoder (double, eval) on a padded batch whose padding is 1e3 (it would show if it leaked)
    gives each sequence what it gives that sequence alone, and zeros past each length."""
    import torch

    from textrnn.nn.mincells import use_path

    lengths = torch.tensor([9, 4, 1, 7])
    x = torch.randn(4, 9, 6, dtype=torch.double)
    x[torch.arange(9)[None, :] >= lengths[:, None]] = 1e3
    with use_path(path):
        out, h_n = enc(x, lengths)
        for b, n in enumerate(lengths.tolist()):
            one, h1 = enc(x[b : b + 1, :n], lengths[b : b + 1])
            assert torch.allclose(out[b, :n], one[0], atol=1e-10)
            assert torch.allclose(h_n[:, b], h1[:, 0], atol=1e-10)
            assert not out[b, n:].any()
