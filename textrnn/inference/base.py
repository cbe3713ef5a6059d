"""What every loaded model shares: the run it came from, a lock, evaluation, plots, a useful repr,
and a clear error when a method of another task is called."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar, Iterable, Optional, Union

from textrnn.errors import UserError
from textrnn.inference.opening import Opened, summary

TestSource = Union[str, os.PathLike, tuple, dict, None]


class WrongTask(AttributeError):
    """A method of another task was called (e.g. translate on a classifier)."""


def texts_arg(texts: Any, method: str) -> tuple[list[str], bool]:
    """Inputs as a list of strings, and whether a single string was given (str → one text)."""
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable) or isinstance(texts, dict):
        raise UserError(f"{method}: give a text (str) or a list of texts, not {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise UserError(f"{method}: item {i} is {type(t).__name__}, not a text (str)")
    return out, False


class TaskModel:
    """A trained model loaded from its run directory (see textrnn.load).

    Attributes: `run` (the directory), `pipeline` (its validated pipeline), `device`, `model` (the
    torch module) and `task` (tokenizer, vocabulary, labels). Methods are safe to call from
    several threads: calls on one object run one at a time.
    """

    task_name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # "a classifier": for messages
    methods: ClassVar[tuple[str, ...]] = ()  # the public methods, for messages

    def __init__(self, opened: Opened):
        self.run = opened.run
        self.pipeline = opened.cfg
        self.task = opened.task
        self.model = opened.model
        self.device = opened.device
        self.precision = "int8" if opened.quantized else opened.precision
        self._lock = threading.RLock()

    # -- facts about the run
    @property
    def parameters(self) -> int:
        """Number of parameters of the model."""
        return sum(p.numel() for p in self.model.parameters())

    @property
    def summary(self) -> dict:
        """summary.json: the final valid / test metrics, speed and training time ({} for an unfinished run)."""
        return summary(self.run) or {}

    def describe(self) -> dict:
        """What a front end shows about the model: task, kind, run, parameters, test metrics and the
        task's own settings (labels, decoding defaults)."""
        return {
            "task": self.task_name,
            "kind": self.kind,
            "run": str(self.run),
            "parameters": self.parameters,
            "test": self.summary.get("test"),
            **self._details(),
        }

    def _details(self) -> dict:
        return {}

    @property
    def vocab_size(self) -> int:
        return len(self.task.vocab)

    def __repr__(self) -> str:
        s, metric = self.summary, self.task.selection[0]
        score = ""
        for split in ("test", "valid"):
            if isinstance(s.get(split, {}).get(metric), (int, float)):
                score = f", {split} {metric}={s[split][metric]:.4f}"
                break
        return (
            f"{type(self).__name__}(run='{self.run}', task={self.task_name}, "
            f"parameters={self.parameters:,}{score}, device={self.device}, precision={self.precision})"
        )

    def __getattr__(self, name: str):
        # called only when normal lookup fails: name the task and its methods if another task has `name`
        if not name.startswith("_") and name in _all_methods():
            raise WrongTask(f"{self.__dict__.get('run')} is {self.kind}: it has {', '.join(self.methods)}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def unknown(self, texts) -> list[tuple[int, int]]:
        """(unknown tokens, tokens) of each text: how much of it the model's vocabulary covers."""
        items, _ = texts_arg(texts, "unknown")
        with self._lock:
            return self.task.unknown_counts(items)

    # -- evaluation
    def _test_source(self, test: TestSource):
        """A config.Source for `test`: the pipeline's test split (None), a file path, (src, tgt) files, or a
        mapping of source keys; a path keeps the pipeline test split's format and columns."""
        from pydantic import ValidationError

        from textrnn.config import Source, explain

        declared = self.pipeline.data.test
        if test is None:
            if declared is None:
                raise UserError(f"{self.run}: the pipeline declares no test split; give one with test=FILE")
            return declared
        keep = {
            k: v
            for k, v in (declared.model_dump() if declared else {}).items()
            if k not in ("path", "files", "hub", "src", "tgt")
        }
        if isinstance(test, (str, os.PathLike)):
            raw = keep | {"path": str(Path(test).resolve())}
        elif (
            isinstance(test, (tuple, list)) and len(test) == 2 and all(isinstance(t, (str, os.PathLike)) for t in test)
        ):
            raw = keep | {"src": str(Path(test[0]).resolve()), "tgt": str(Path(test[1]).resolve())}
        elif isinstance(test, dict):
            raw = dict(test)
            for k in ("path", "src", "tgt"):
                if isinstance(raw.get(k), (str, os.PathLike)):
                    raw[k] = str(Path(raw[k]).resolve())
        else:
            raise UserError(
                f"evaluate: test must be a file path, (source, target) paths or a mapping, not {type(test).__name__}"
            )
        try:
            return Source.model_validate(raw)
        except ValidationError as err:
            raise UserError(explain(err, Source, "evaluate", prefix=("test",))) from None

    def _examples(self, test: TestSource, split: str):
        """What evaluate scores: the test split, `test`, or (split="valid") the pipeline's valid split."""
        if split not in ("test", "valid"):
            raise UserError(f"evaluate: split {split!r}: test or valid")
        if split == "valid":
            if test is not None:
                raise UserError("evaluate: give test=... or split='valid', not both")
            return self.task.read_valid()
        return self.task.read_test(self._test_source(test))

    def evaluate(self, test: TestSource = None, split: str = "test") -> dict:
        """Metrics of the model on the pipeline's test split, or on `test` (a file, (src, tgt) files or a
        source mapping such as {"path": "x.tsv", "text": 0, "label": 1}), or with split="valid" on its
        valid split (declared, or carved from train with the run's seed as in training)."""
        with self._lock:
            examples = self._examples(test, split)
            self.task.add_split("_evaluate", examples)
            try:
                with self.task.amp():
                    return self.task.evaluate(self.model, "_evaluate", self.device, final=True)
            finally:
                self.task.drop_split("_evaluate")

    # -- plots
    def plot(self, what: str = "curves"):
        """A matplotlib Figure: "curves" (loss and the valid metric per epoch); classifiers also "confusion"."""
        from textrnn import rundir
        from textrnn.tools import plots

        if what == "curves":
            return plots.curves_figure(
                rundir.read_metrics(self.run),
                self.task.selection[0],
                self.pipeline.name,
                self.summary.get("best_epoch"),
            )
        if what in self.figures:
            return self._figure(what)
        raise UserError(f"plot {what!r}: {self.run} is {self.kind}; it draws {', '.join(self.figures)}")

    figures: ClassVar[tuple[str, ...]] = ("curves",)  # what plot() draws

    def _figure(self, what: str):
        """A task's own figure (one of `figures` besides the curves)."""
        raise NotImplementedError(what)


def _all_methods() -> set[str]:
    found: set[str] = set()
    todo = list(TaskModel.__subclasses__())
    while todo:
        cls = todo.pop()
        found.update(cls.methods)
        todo.extend(cls.__subclasses__())
    return found


def default(value: Optional[Any], fallback: Any) -> Any:
    return fallback if value is None else value
