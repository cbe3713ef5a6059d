"""The command line a newcomer meets: the end of a run, the warnings that matter, --version, --input,
--json, help without <bool> metavars."""

import json

from helpers import write

TSV = "text\tlabel\n" + "good film\tpos\nbad film\tneg\ngreat fun\tpos\ndull mess\tneg\n" * 5


def _pipe(tmp_path, epochs=2, extra=""):
    write(tmp_path / "d.tsv", TSV)
    return write(
        tmp_path / "p.yaml",
        "name: t\ndata: {train: {path: d.tsv}, valid: {path: d.tsv}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, encoder: {hidden: 8}}\n"
        f"train: {{epochs: {epochs}, batch_tokens: 40, threads: 1{extra}}}\n",
    )


def test_end_of_run_names_metrics_files_and_next_commands(tmp_path, cli):
    run = tmp_path / "run"
    code, out, err = cli("run", _pipe(tmp_path), "-o", run)
    assert code == 0 and out == "", err
    assert "done: t (classify) — best epoch" in err and "valid accuracy" in err
    assert f'textrnn predict {run} "a film I would watch again"' in err and f'textrnn.load("{run}")' in err
    # warnings: a valid split of 20 examples; kept in summary.json too
    assert "warning: the valid split has 20 examples" in err
    assert any("valid split has 20" in w for w in json.loads((run / "summary.json").read_text())["warnings"])
    code, out, _ = cli("run", _pipe(tmp_path), "-o", tmp_path / "j", "--json")
    assert code == 0 and json.loads(out)["run"] == str(tmp_path / "j")


def test_majority_class_and_first_epoch_warnings(tmp_path, cli):
    # one text with two labels (70 % / 30 %): nothing to learn, so no model beats always answering
    # the majority class, and no epoch after the first improves on it
    p = _pipe(tmp_path, 3)
    write(tmp_path / "d.tsv", "text\tlabel\n" + "film\tpos\n" * 14 + "film\tneg\n" * 6)
    code, _, err = cli("run", p, "-o", tmp_path / "run")
    assert code == 0, err
    assert "no better than always answering the most frequent class" in err
    assert "the best epoch is the first" in err


def test_version_input_and_help(tmp_path, cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("textrnn ")
    run = tmp_path / "run"
    assert cli("run", _pipe(tmp_path), "-o", run)[0] == 0
    f = write(tmp_path / "in.txt", "good film\nbad film\n")
    code, out, err = cli("predict", run, "--input", f)
    assert code == 0 and len(out.strip().splitlines()) == 2, err
    code, out2, _ = cli("predict", run, "--input", "-", stdin=b"good film\nbad film\n")
    assert code == 0 and out2 == out
    code, _, err = cli("predict", run, "x", "--input", f)
    assert code == 2 and "not both" in err
    code, out, _ = cli("predict", "--help")
    ours = [line for line in out.splitlines() if "--json" in line or "--quantize" in line]
    assert code == 0 and len(ours) == 2 and not any("<bool>" in line for line in ours) and "--input" in out


def test_mostly_unknown_inputs_are_warned_and_counted(tmp_path, cli):
    run = tmp_path / "run"
    assert cli("run", _pipe(tmp_path), "-o", run)[0] == 0
    code, out, err = cli("predict", run, "--json", "zzz qqq film", "good film")
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [(r["unknown"], r["tokens"]) for r in rows] == [(2, 3), (0, 2)]
    assert "warning: line 1: 2 of 3 tokens are not in the model's vocabulary" in err and "line 2" not in err


def test_tensorboard_logs_loss_metrics_and_speed(tmp_path, cli):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    code, _, err = cli("run", _pipe(tmp_path), "-o", run, "--set", "train.tensorboard=true")
    assert code == 0, err
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "valid/accuracy", "valid/loss"} <= tags
    assert [e.step for e in acc.Scalars("valid/accuracy")] == sorted(e.step for e in acc.Scalars("valid/accuracy"))
    assert len(acc.Scalars("valid/accuracy")) == 2 and cli("predict", run, "good film")[0] == 0  # manifest still holds
