"""The pipeline schema: unknown keys and bad values named with their path, env interpolation, --set, dumps."""

import pytest

from textrnn import config
from textrnn.errors import UserError

from helpers import write

BASE = "name: t\ndata:\n  train: {path: train.tsv}\n"


def test_unknown_key_names_path_and_nearest(tmp_path):
    p = write(tmp_path / "p.yaml", BASE + "model:\n  encoder: {hiden: 10}\n")
    with pytest.raises(
        UserError, match=r"p.yaml: unknown key 'model.encoder.hiden' \(did you mean 'model.encoder.hidden'\?\)"
    ):
        config.load(p)


def test_wrong_type_names_key(tmp_path):
    p = write(tmp_path / "p.yaml", BASE + "train: {epochs: many}\n")
    with pytest.raises(UserError, match=r"train.epochs: .*integer.*'many'"):
        config.load(p)


def test_bad_choice_and_missing(tmp_path):
    p = write(tmp_path / "p.yaml", BASE + "model:\n  encoder: {cell: transformer}\n")
    with pytest.raises(UserError, match="model.encoder.cell"):
        config.load(p)
    p = write(tmp_path / "q.yaml", "name: t\n")
    with pytest.raises(UserError, match="missing key 'data'"):
        config.load(p)


def test_invalid_yaml_names_line(tmp_path):
    p = write(tmp_path / "p.yaml", "name: t\ndata: [unclosed\n")
    with pytest.raises(UserError, match=r"p.yaml: line \d+ invalid YAML"):
        config.load(p)


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("CORP", "/data/c")
    monkeypatch.delenv("NOPE", raising=False)
    p = write(
        tmp_path / "p.yaml", "name: t\ndata:\n  train: {path: '${CORP}/a.tsv'}\n  valid: {path: '${NOPE:-/x}/b.tsv'}\n"
    )
    cfg = config.load(p)
    assert cfg.data.train.path == "/data/c/a.tsv"
    assert cfg.data.valid.path == "/x/b.tsv"
    p = write(tmp_path / "q.yaml", "name: t\ndata:\n  train: {path: '${NOPE}/a.tsv'}\n")
    with pytest.raises(UserError, match="data.train.path: environment variable NOPE is not set"):
        config.load(p)


def test_relative_paths_and_set_overrides(tmp_path):
    p = write(tmp_path / "sub" / "p.yaml", BASE)
    cfg = config.load(p, ["model.encoder.hidden=32", "train.optimizer.lr=0.01", "data.test.path=t.tsv"], cwd=tmp_path)
    assert cfg.data.train.path == str(tmp_path / "sub" / "train.tsv")  # relative to the YAML file
    assert cfg.data.test.path == str(tmp_path / "t.tsv")  # relative to where the command runs
    assert cfg.model.encoder.hidden == 32 and cfg.train.optimizer.lr == 0.01
    with pytest.raises(UserError, match="unknown key 'model.encoder.hiden'"):
        config.load(p, ["model.encoder.hiden=3"])
    with pytest.raises(UserError, match="expected key.sub=value"):
        config.load(p, ["model.encoder.hidden"])


def test_source_needs_exactly_one_kind(tmp_path):
    p = write(tmp_path / "p.yaml", "name: t\ndata:\n  train: {format: tsv}\n")
    with pytest.raises(UserError, match="data.train: give exactly one of"):
        config.load(p)


def test_dump_round_trips(tmp_path):
    cfg = config.load(write(tmp_path / "p.yaml", BASE))
    again = config.validate(__import__("yaml").safe_load(config.dump(cfg)), "x")
    assert again == cfg


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../up", ""])
def test_run_name_is_one_folder_name(tmp_path, name):
    p = write(tmp_path / "p.yaml", BASE.replace("name: t", f"name: '{name}'"))
    with pytest.raises(UserError, match="name"):
        config.load(p)


def test_typed_values_override_like_set(tmp_path):
    p = write(tmp_path / "p.yaml", BASE)
    cfg = config.load(p, ["train.epochs=2"], values={"train.optimizer.lr": 0.5, "tokenizer.lower": True})
    assert cfg.train.epochs == 2 and cfg.train.optimizer.lr == 0.5 and cfg.tokenizer.lower is True
    with pytest.raises(UserError, match="dotted key"):
        config.load(p, values={"train..epochs": 2})


def test_paths_inside_a_set_mapping_are_resolved(tmp_path, monkeypatch):
    p = write(tmp_path / "p.yaml", BASE)
    monkeypatch.chdir(tmp_path)
    cfg = config.load(p, ["data.test={path: other.tsv, label: 1}"])
    assert cfg.data.test.path == str(tmp_path / "other.tsv") and cfg.data.test.label == 1


def test_one_list_of_tasks():
    """config's task names, the schemas they validate with and the registered Task classes agree."""
    import typing

    from textrnn import registry, tasks  # noqa: F401  (importing the package registers the tasks)
    from textrnn.tasks.base import Task

    names = set(typing.get_args(config.TaskName))
    assert names == set(config.MODEL_SCHEMAS) == set(registry.names("task"))
    assert set(config.GENERATE_SCHEMAS) == names - {"classify"}
    for name in names:
        cls = registry.get("task", name)
        assert issubclass(cls, Task) and cls.name == name
    with pytest.raises(TypeError):  # an abstract base class
        Task(config.validate({"name": "t", "data": {"train": {"path": "x.tsv"}}}, "t"))


def test_unknown_task_and_generate_for_classify_are_one_line(tmp_path):
    p = write(tmp_path / "p.yaml", BASE + "task: summarize\n")
    with pytest.raises(UserError, match=r"^\S*p.yaml: task: Input should be 'classify', 'lm', 'translate' or 'chat'"):
        config.load(p)
    p = write(tmp_path / "p.yaml", BASE + "generate: {beam: 2}\n")
    with pytest.raises(UserError, match=r"generate: a classify pipeline generates no text \(remove the section\)$"):
        config.load(p)


def test_registry_refuses_a_duplicate_name():
    from textrnn.registry import register

    @register("test-group", "one")
    class A:
        pass

    assert register("test-group", "one")(A) is A  # the same class again: no change
    with pytest.raises(ValueError, match="test-group 'one' is registered twice"):

        @register("test-group", "one")
        class B:
            pass


def test_amp_is_folded_into_precision(tmp_path):
    """One key decides precision: a pipeline with train.amp gets a one-line hint; a saved run with it still opens."""
    p = write(tmp_path / "p.yaml", BASE + "train: {amp: true}\n")
    with pytest.raises(UserError, match=r"p.yaml: train: amp is gone .*write precision: mixed"):
        config.load(p)
    p = write(tmp_path / "q.yaml", BASE + "train: {amp: false}\n")
    with pytest.raises(UserError, match=r"precision: auto is the same"):
        config.load(p)
    assert (
        config.validate(
            config.upgrade_saved({**config.read_yaml(write(tmp_path / "r.yaml", BASE)), "train": {"amp": True}}), "r"
        ).train.precision
        == "mixed"
    )
    saved = {"name": "t", "data": {"train": {"path": "x"}}, "train": {"amp": False, "precision": "fp32"}}
    assert config.validate(config.upgrade_saved(saved), "s").train.precision == "fp32"


def test_the_reference_pipeline_shows_every_key():
    """pipelines/sentiment.yaml says it shows every key of a classify pipeline: as a key, or (for an
    alternative to a shown key) in a comment; valid and test take the train split's keys."""
    import re

    from helpers import ROOT

    path = ROOT / "pipelines/sentiment.yaml"
    text = path.read_text()
    raw = config.read_yaml(path)

    def keys(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict) and v and k not in ("label_names",):
                yield from keys(v, prefix + k + ".")

    shown = set(keys(raw))
    comments = [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]
    commented = {w for c in comments for w in re.findall(r"\b(\w+):", c)}
    schema = set(keys(config.load(path).model_dump(mode="json")))
    missing = []
    for k in sorted(schema):
        k_train = re.sub(r"^data\.(valid|test)\.", "data.train.", k)
        alternative = k.split(".")[-1] in commented and (k_train.startswith("data.train.") or k == "generate")
        if k in shown or k_train in shown or alternative:
            continue
        missing.append(k)
    assert missing == [], f"pipelines/sentiment.yaml does not show {missing}"
