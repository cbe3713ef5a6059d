"""Fixtures: a private tokenization cache, the in-process CLI runner, one tiny trained run per task."""

import os
import sys

import pytest

from helpers import TINY_TRAIN, write, write_tiny_data


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    os.environ["TEXTRNN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `textrnn ARGS…` in-process; returns (exit code, stdout, stderr)."""
    from textrnn.cli import main

    def run(*args, stdin: bytes | None = None):
        monkeypatch.setattr(sys, "argv", ["textrnn", *map(str, args)])
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """One tiny trained run per task, trained through textrnn.train (quietly); shared by the API, server
    and export tests."""
    import textrnn

    d = tmp_path_factory.mktemp("api")
    write_tiny_data(d)
    write(
        d / "chat.jsonl",
        '{"turns": ["hello", "hi there", "how are you", "fine thanks"]}\n'
        '{"turns": ["good bye", "see you soon"]}\n' * 30,
    )
    pipes = {
        "classify": "task: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}, test: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        "model: {embedding: {dim: 16}, encoder: {hidden: 16}}\n" + TINY_TRAIN % 15,
        "lm": "task: lm\ndata: {train: {path: lm.txt}, valid: {path: lm.txt}, test: {path: lm.txt}}\n"
        "tokenizer: {kind: whitespace}\n"
        "model: {embedding: {dim: 16}, hidden: 24, layers: 1, bptt: 8, eval_batch: 2}\n" + TINY_TRAIN % 12,
        "translate": "task: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
        "tokenizer: {kind: whitespace, lower: true}\n"
        "model: {embedding: {dim: 16}, encoder: {hidden: 16}, decoder: {hidden: 32}}\n"
        "generate: {beam: 3, max_extra: 4}\n" + TINY_TRAIN % 40,
        "chat": "task: chat\ndata: {train: {path: chat.jsonl, format: turns}, valid: {path: chat.jsonl, format: turns, "
        "limit: 20}}\ntokenizer: {kind: whitespace, lower: true, max_length: 12}\n"
        "model: {history: 2, embedding: {dim: 16}, encoder: {hidden: 16}, decoder: {hidden: 32}}\n"
        "generate: {beam: 3, block_ngram: 2, max_extra: 6}\n" + TINY_TRAIN % 25,
    }
    out = {}
    for task, body in pipes.items():
        p = write(d / f"{task}.yaml", f"name: {task}\n{body}")
        out[task] = textrnn.train(p, overrides={"train.seed": 1}, output=d / "runs" / task, progress=False)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train fastest on one thread (and do not stall when other jobs share the cores):
    a module asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
