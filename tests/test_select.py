"""train.select: the valid metric that picks the best epoch (and stops early, and drives a plateau schedule)."""

import json

import pytest

import textrnn
from textrnn import config
from textrnn.errors import UserError
from textrnn.tasks.base import build_task

from helpers import TINY_TRAIN, write, write_tiny_data

MT = (
    "name: mt\ntask: translate\ndata: {train: {src: mt.de, tgt: mt.en}, valid: {src: mt.de, tgt: mt.en}}\n"
    "tokenizer: {kind: whitespace, lower: true}\n"
    "model: {embedding: {dim: 16}, encoder: {hidden: 16}, decoder: {hidden: 32}}\n" + TINY_TRAIN % 10
)


def valid_rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("select,pick", [(None, max), ("loss", min), ("chrf", max)])
def test_the_best_epoch_is_the_selected_metrics_best(tmp_path, select, pick):
    write_tiny_data(tmp_path)
    p = write(tmp_path / "mt.yaml", MT)
    values = {"train.select": select} if select else {}
    run = textrnn.train(p, values, output=tmp_path / "run", progress=False)
    rows = valid_rows(run.path)
    metric = select or "bleu"
    scores = [r[metric] for r in rows]
    best = scores.index(pick(scores)) + 1  # the first epoch reaching it
    assert run.summary["best_epoch"] == best
    assert run.summary["valid"][metric] == pytest.approx(scores[best - 1])
    if select == "loss":  # BLEU reaches 100 on the tiny valid set epochs before the loss stops falling
        bleu = [r["bleu"] for r in rows]
        assert best > bleu.index(max(bleu)) + 1


def test_the_end_of_run_says_what_picked_the_best_epoch(tmp_path, cli):
    write_tiny_data(tmp_path)
    p = write(tmp_path / "mt.yaml", MT.replace("epochs: 10", "epochs: 2"))
    code, out, err = cli("run", p, "-o", tmp_path / "a", "--set", "train.select=chrf")
    assert code == 0, err
    assert (
        "by valid chrf" in out + err
        and json.loads((tmp_path / "a" / "summary.json").read_text())["selected_by"] == "chrf"
    )
    code, out, err = cli("run", p, "-o", tmp_path / "b")  # the task's own metric goes unsaid
    assert code == 0, err
    assert (
        "by valid" not in out + err
        and json.loads((tmp_path / "b" / "summary.json").read_text())["selected_by"] == "bleu"
    )


def test_selection_names_the_metric_and_its_direction(tmp_path):
    write_tiny_data(tmp_path)
    p = write(tmp_path / "mt.yaml", MT)
    assert build_task(config.load(p)).selection == ("bleu", True)
    assert build_task(config.load(p, ["train.select=perplexity"])).selection == ("perplexity", False)


@pytest.mark.parametrize("task,bad", [("classify", "bleu"), ("lm", "accuracy"), ("translate", "f1")])
def test_a_metric_the_task_has_not_is_refused_in_one_line(tmp_path, cli, task, bad):
    p = write(
        tmp_path / "p.yaml",
        f"name: p\ntask: {task}\ndata:\n  train: {{path: train.tsv}}\ntrain: {{select: {bad}}}\n",
    )
    with pytest.raises(UserError, match=rf"p.yaml: train.select: '{bad}' is no valid metric of a {task} pipeline"):
        config.load(p)
    code, out, err = cli("run", p, "-o", tmp_path / "run")
    assert code == 2 and "train.select" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_each_tasks_own_metric_is_its_default_choice():
    import textrnn.tasks  # noqa: F401  (registers the tasks)
    from textrnn.registry import get

    for task, choices in config.SELECT.items():
        cls = get("task", task)
        assert next(iter(choices)) == cls.metric and choices[cls.metric] == cls.higher_is_better
