import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
