"""The run directory under `textrnn run`: validate, then lock, then write; an existing run is never lost."""

import hashlib
import re
import signal

import pytest

from textrnn import config, rundir
from textrnn.errors import Interrupted

from helpers import cut_at, write

ROWS = "".join(f"{t}\tpos\n" for t in ["good film", "great fun", "loved it", "superb"]) + "".join(
    f"{t}\tneg\n" for t in ["bad film", "dull mess", "hated it", "awful"]
)


@pytest.fixture
def pipeline(tmp_path):
    write(tmp_path / "d.tsv", "text\tlabel\n" + ROWS * 3)
    return write(
        tmp_path / "p.yaml",
        "name: t\ndata: {train: {path: d.tsv}, valid: {path: d.tsv}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, encoder: {hidden: 8}}\n"
        "train: {epochs: 2, batch_tokens: 40, checkpoint_every: 0, threads: 1}\n",
    )


def digest(run):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(run.iterdir()) if f.is_file()}


def test_existing_run_is_refused_and_kept_unless_overwrite(pipeline, tmp_path, cli):
    run = tmp_path / "run"
    assert cli("run", pipeline, "-o", run)[0] == 0
    before = digest(run)
    code, out, err = cli("run", pipeline, "-o", run, "--set", "train.epochs=1")
    assert code == 2 and "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1 and digest(run) == before
    # a failing validation under --overwrite (checked after the data is read) touches nothing either
    for bad in ["model.embedding.pretrained=missing.vec", "train.precision=fp16"]:
        code, _, err = cli("run", pipeline, "-o", run, "--overwrite", "--set", bad)
        assert code == 2 and "Traceback" not in err and digest(run) == before, (bad, err)
    code, _, err = cli("run", pipeline, "-o", run, "--overwrite", "--set", "train.epochs=1")
    assert code == 0, err
    assert (run / "metrics.jsonl").read_text().count("\n") == 1 and not list(run.glob(".*"))
    code, _, err = cli("run", pipeline, "-o", run, "--resume", "--overwrite")
    assert code == 2 and "choose one" in err


def test_a_second_writer_gets_one_line_naming_the_holder(pipeline, tmp_path, cli):
    run = tmp_path / "run"
    assert cli("run", pipeline, "-o", run)[0] == 0
    before = digest(run)
    with rundir.locked(run):
        code, _, err = cli("run", pipeline, "-o", run, "--overwrite")
        assert code == 2 and "in use by another textrnn run (pid " in err
        assert {k: v for k, v in digest(run).items() if k != ".textrnn.lock"} == before
    assert not (run / ".textrnn.lock").exists()


def test_stale_temporary_files_go_when_the_directory_is_next_locked(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    stale, keep = run / ".model.safetensors.k2j4h5g6", run / ".notes"
    stale.write_bytes(b"half a file")
    keep.write_text("mine")
    with rundir.locked(run):
        assert not stale.exists() and keep.exists()


def test_output_that_is_a_file_is_refused(pipeline, tmp_path, cli):
    f = write(tmp_path / "file", "x")
    code, _, err = cli("run", pipeline, "-o", f)
    assert code == 2 and "is not a directory" in err and f.read_text() == "x"


def test_sigterm_checkpoints_and_resume_matches_uninterrupted(pipeline, tmp_path):
    from textrnn.training.trainer import run_pipeline

    cfg = config.load(pipeline)
    _, whole = run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)

    def term(step):
        if step == 4:
            signal.raise_signal(signal.SIGTERM)  # what a job scheduler sends

    with pytest.raises(Interrupted) as e:
        run_pipeline(cfg, output=str(tmp_path / "cut"), on_step=term, quiet=True)
    assert e.value.run == tmp_path / "cut" and (tmp_path / "cut" / "last.pt").is_file()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is put back
    _, resumed = run_pipeline(cfg, output=str(tmp_path / "cut"), resume=True, quiet=True)
    assert resumed["valid"] == whole["valid"]
    import json

    def losses(run):
        return [(h["epoch"], h["train_loss"], h["loss"]) for h in map(json.loads, (run / "metrics.jsonl").open())]

    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")  # the running train loss is resumed too


def test_resume_command_repeats_the_real_command():
    from textrnn.cli import resume_command

    argv = ["textrnn", "run", "pipelines/my pipe.yaml", "-o", "runs/x", "--set", "train.epochs=3", "--overwrite"]
    assert resume_command(argv) == "textrnn run 'pipelines/my pipe.yaml' -o runs/x --set train.epochs=3 --resume"
    assert resume_command(["textrnn", "run", "p.yaml", "--resume"]) == "textrnn run p.yaml --resume"


def test_stream_language_model_resume_is_exact(tmp_path):
    """The hidden state carried between BPTT windows is part of the checkpoint."""
    from textrnn.training.trainer import run_pipeline

    write(tmp_path / "t.txt", "\n".join(["the cat sat on the mat", "a dog and a cat", "see you soon"] * 20) + "\n")
    p = write(
        tmp_path / "lm.yaml",
        "name: l\ntask: lm\ndata: {train: {path: t.txt}, valid: {path: t.txt}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, hidden: 8, layers: 1, "
        "bptt: 5, mode: stream, dropout: 0}\n"
        "train: {epochs: 2, batch_size: 2, checkpoint_every: 3, threads: 1}\n",
    )
    cfg = config.load(p)
    _, whole = run_pipeline(cfg, output=str(tmp_path / "whole"), quiet=True)

    cut_at(
        cfg, tmp_path / "cut", 7, quiet=True
    )  # mid-epoch 1; the last checkpoint (step 6) holds the state after window 6
    _, resumed = run_pipeline(cfg, output=str(tmp_path / "cut"), resume=True, quiet=True)
    assert resumed["valid"]["perplexity"] == whole["valid"]["perplexity"]


def test_a_file_size_limit_is_one_line_and_leaves_no_partial_file(pipeline, tmp_path):
    """An OS fault while writing (here RLIMIT_FSIZE; a full disk is the same OSError): one line, exit 1,
    and nothing half-written: the atomic writes leave whole files or none."""
    import subprocess
    import sys

    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
        "from textrnn.__main__ import main; sys.argv = ['textrnn'] + sys.argv[1:]; main()"
    )
    run = tmp_path / "run"
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            str(pipeline),
            "-o",
            str(run),
            "--set",
            "model.embedding.dim=64",
            "--set",
            "model.encoder.hidden=64",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: ") and "File too large" in p.stderr
    assert not list(run.glob(".*")) and not (run / "model.safetensors").exists()


def test_a_run_saved_with_train_amp_still_opens(runs, tmp_path):
    """Runs written before train.amp was folded into train.precision open with the same meaning."""
    import shutil

    run = shutil.copytree(runs["classify"].path, tmp_path / "old")
    text = (run / "pipeline.yaml").read_text()
    assert "\n  precision: " in text
    (run / "pipeline.yaml").write_text(re.sub(r"\n  precision: \w+", "\n  amp: true\n  precision: auto", text))
    _, cfg = rundir.open_run(run)
    assert cfg.train.precision == "mixed"
