"""Ensembles: runs of one task that read text alike, loaded as one Classifier, Translator or Chatbot.

    mt = textrnn.ensemble(["runs/mt-1", "runs/mt-2", "runs/mt-3"])
    mt.translate("Où est la gare ?", beam=5)

Classifiers average the members' class probabilities; translation and chat models average the
members' log-probabilities at every search step (textrnn.nn.ensemble), so every method of the
single-run class works as it does for one run. Translation and chat members must share the task,
the tokenizer settings and learned tokenizer and the vocabularies; tokenization, the `generate:`
defaults and the test split come from the first run.

Classifiers need only the same labels. Those that also read text alike (tokenizer, vocabulary,
label order) run as one module over one batch of ids; the others (a run initialised from a
language model has the LM's vocabulary, a run from scratch its own) each read the texts
themselves, one pass per member, and their probabilities are averaged the same way
(EachReadsClassifier). `predict`'s unknown-token counts and the test split are the first run's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, Union

import numpy as np

from textrnn import config
from textrnn.errors import UserError
from textrnn.inference.base import TaskModel, texts_arg
from textrnn.inference.classifier import Classifier
from textrnn.inference.opening import Opened, open_run, read_pipeline
from textrnn.inference.translator import Chatbot, Translator


class Ensemble(TaskModel):
    """What an ensemble adds to its task's class: `members` (the run directories, first = `run`);
    it has no summary or learning curves of its own."""

    members: tuple[Path, ...] = ()
    read_apart: ClassVar[bool] = False  # members that read text differently may still ensemble (each reads)
    valid_splits: tuple[tuple[Path, str], ...] = ()  # per member: its run and what its valid split is

    def _examples(self, test, split: str):
        """The first run's split; split="valid" only when every member selected on that same split
        (a member that trained on part of it would make the ensemble's valid figure a leak)."""
        if split == "valid":
            (run_a, a), *rest = self.valid_splits or ((self.run, ""),)
            for run_b, b in rest:
                if b != a:
                    raise UserError(
                        f"evaluate --split valid: {run_b}'s valid split is {b}, {run_a}'s {a}: the members must "
                        "select on one valid split (carve it with one data.valid_seed)"
                    )
        return super()._examples(test, split)

    @property
    def summary(self) -> dict:
        """{}: each member has its own summary.json."""
        return {}

    def describe(self) -> dict:
        return {**super().describe(), "members": [str(m) for m in self.members]}

    def plot(self, what: str = "curves"):
        raise UserError(f"plot {what!r}: an ensemble has no training curves or matrix of its own; plot each run")

    def __repr__(self) -> str:
        runs = ", ".join(f"'{m}'" for m in self.members)
        return (
            f"{type(self).__name__}(members=[{runs}], task={self.task_name}, parameters={self.parameters:,}, "
            f"device={self.device}, precision={self.precision})"
        )

    @staticmethod
    def combine(models: list) -> Any:
        """The members' torch modules as one module of the task's interface."""
        from textrnn.nn.ensemble import EnsembleSeq2Seq

        return EnsembleSeq2Seq(models)


class EnsembleClassifier(Ensemble, Classifier):
    """Classifiers whose class probabilities are averaged."""

    read_apart = True

    @staticmethod
    def combine(models: list) -> Any:
        from textrnn.nn.ensemble import EnsembleClassifier as ClassifierModule

        return ClassifierModule(models)


class EachReadsClassifier(EnsembleClassifier):
    """Classifiers of one label set that read text differently: the members that read alike form a
    reader (one run, or their EnsembleClassifier over one numericalization); each reader reads the
    texts itself (its tokenizer, vocabulary and label order), and the members' mean class
    probability, in the first run's label order, is the ensemble's."""

    readers: tuple[Classifier, ...] = ()
    columns: tuple[list[int], ...] = ()  # per reader: its column of each of the first run's labels
    weights: tuple[int, ...] = ()  # per reader: how many members it holds

    @property
    def parameters(self) -> int:
        return sum(r.parameters for r in self.readers)

    def _probs(self, items: list[str], ids: Any = None) -> np.ndarray:
        """The members' mean class probabilities [N, C] for texts `items` (each reader reads them once;
        `ids`, the first run's numericalization of them where the caller has it, serves its reader)."""
        parts = []
        for k, (r, cols, w) in enumerate(zip(self.readers, self.columns, self.weights)):
            p = r._probs(items, ids) if k == 0 and ids is not None else r.predict_proba(items)
            parts.append(w * p[:, cols])
        return np.sum(parts, 0) / sum(self.weights)

    def predict_proba(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        items, _ = texts_arg(texts, "predict_proba")
        if not items:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self._probs(items)

    def evaluate(self, test=None, split: str = "test") -> dict:
        """The metrics of the mean probabilities on the test split (or `test`, or split="valid"), as one
        run reports them: loss is the mean negative log of the true label's probability."""
        from textrnn.tasks.classify import metrics_from_confusion

        with self._lock:
            examples = self._examples(test, split)
        index = {lab: i for i, lab in enumerate(self.labels)}
        unknown = sorted(set(examples.labels) - set(index))
        if unknown:
            raise UserError(
                f"{examples.origin}: label {unknown[0]!r} is not one of the ensemble's ({', '.join(self.labels)})"
            )
        y = np.array([index[lab] for lab in examples.labels], dtype=np.int64)
        p = self._probs(list(examples.texts)).astype(np.float64) if len(y) else np.zeros((0, len(index)))
        conf = np.zeros((len(index), len(index)), dtype=np.int64)  # [true, predicted]
        np.add.at(conf, (y, p.argmax(1)), 1)
        loss = float(-np.log(np.maximum(p[np.arange(len(y)), y], np.finfo(np.float64).tiny)).sum())
        return metrics_from_confusion(conf, loss)


class EnsembleTranslator(Ensemble, Translator):
    """Translation models whose next-token log-probabilities are averaged at every search step."""


class EnsembleChatbot(Ensemble, Chatbot):
    """Chat models whose next-token log-probabilities are averaged at every search step."""


CLASSES: dict[str, type[Ensemble]] = {
    "classify": EnsembleClassifier,
    "translate": EnsembleTranslator,
    "chat": EnsembleChatbot,
}


def ensemble(
    runs: Sequence[str | os.PathLike],
    device: str = "auto",
    precision: str = "fp32",
    quantize: bool = False,
    overrides: Sequence[str] = (),
    verify: bool = True,
) -> TaskModel:
    """Open run directories of one classify, translate or chat task as one model (see the module's
    docstring); the options are textrnn.load's, applied to every run. Runs of other tasks, classifiers
    of other labels, translation and chat runs of other tokenizers or vocabularies are refused with
    one line (textrnn.UserError) before any weights are read (the learned tokenizer, the vocabularies
    and the labels: as each run is opened). Classifiers that read text differently each read it."""
    if isinstance(runs, (str, bytes, os.PathLike)) or not isinstance(runs, (list, tuple)):
        raise UserError("ensemble: give a list of run directories (textrnn.load opens one)")
    if not runs:
        raise UserError("ensemble: give one or more run directories")
    if not isinstance(quantize, bool):
        raise UserError(f"ensemble: quantize is True or False, not {quantize!r}")
    pipes = [read_pipeline(Path(r) if isinstance(r, os.PathLike) else r, overrides) for r in runs]
    (first_run, first), task = pipes[0], pipes[0][1].task
    for run, cfg in pipes[1:]:
        if cfg.task != task:
            raise UserError(f"{run}: a {cfg.task} run, {first_run} a {task} run: an ensemble's runs share a task")
    if task not in CLASSES:
        raise UserError(f"{first_run}: a {task} run; ensembles are of classify, translate or chat runs")
    cls = CLASSES[task]
    if not cls.read_apart:
        for run, cfg in pipes[1:]:
            _same_reading(first_run, first, run, cfg)
    opened = [open_run(run, overrides, device, precision, quantize, verify) for run, _ in pipes]
    out = _join(cls, opened)
    out.valid_splits = tuple((o.run, _valid_split(o.cfg)) for o in opened)
    return out


def _join(cls: type[Ensemble], opened: list[Opened]) -> Ensemble:
    """The opened runs as one `cls`: over one module where they read text alike, else (classifiers
    of one label set) each reading the texts itself."""
    lead = opened[0]
    if cls.read_apart:
        for o in opened[1:]:
            _same_labels(lead, o)
        if any(_reading(o.cfg) != _reading(lead.cfg) or _vocabulary_difference(lead, o) for o in opened[1:]):
            return _each_reads(opened)
    for o in opened[1:]:
        _same_vocabulary(lead, o)
    return _shared(cls, opened)


def _valid_split(cfg: config.Pipeline) -> str:
    """What a run's valid split is, in words: the declared file, or the part of train carved by a seed."""
    from textrnn.data.sources import carve_seed

    d = cfg.data
    if d.valid is not None:
        return f"the declared {d.valid.model_dump(exclude_defaults=True)}"
    seed = carve_seed(d, cfg.train.seed)
    return f"{d.valid_fraction:g} of {d.train.model_dump(exclude_defaults=True)} carved with seed {seed}"


def _reading(cfg: config.Pipeline) -> dict[str, Any]:
    """How a run turns text into ids (and how many turns a chat run reads): the settings members share."""
    out = {f"tokenizer.{k}": v for k, v in cfg.tokenizer.model_dump().items()}
    m = cfg.model.model_dump()
    for k, v in (m.get("tokenizer_tgt") or {}).items():
        out[f"model.tokenizer_tgt.{k}"] = v
    for k in ("share_vocab", "history"):
        if k in m:
            out[f"model.{k}"] = m[k]
    return out


def _same_reading(run_a: Path, a: config.Pipeline, run_b: Path, b: config.Pipeline) -> None:
    ra, rb = _reading(a), _reading(b)
    for k in sorted(set(ra) | set(rb)):
        if ra.get(k) != rb.get(k):
            raise UserError(
                f"{run_b}: {k} is {rb.get(k)!r}, {ra.get(k)!r} in {run_a}: an ensemble's runs read text alike"
            )


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"entry {i} is {y!r}, not {x!r}"
    return f"{len(b):,} entries, not {len(a):,}"


def _each_reads(opened: list[Opened]) -> EachReadsClassifier:
    """Classifiers that read text differently as one EachReadsClassifier (the first run leads); the
    members that read alike (tokenizer settings, vocabulary, labels) share one reader."""
    groups: list[list[Opened]] = []
    for o in opened:
        for g in groups:
            if _reading(g[0].cfg) == _reading(o.cfg) and _vocabulary_difference(g[0], o) is None:
                g.append(o)
                break
        else:
            groups.append([o])
    out = EachReadsClassifier(opened[0])
    out.readers = tuple(Classifier(g[0]) if len(g) == 1 else _shared(EnsembleClassifier, g) for g in groups)
    out.columns = tuple([r.labels.index(lab) for lab in out.labels] for r in out.readers)
    out.weights = tuple(len(g) for g in groups)
    out.members = tuple(o.run for o in opened)
    return out


def _shared(cls: type[Ensemble], opened: list[Opened]) -> Any:
    """Runs that read alike as one `cls` over one module and one numericalization (the first run leads)."""
    lead = opened[0]
    module = cls.combine([o.model for o in opened])
    out = cls(Opened(lead.run, lead.cfg, lead.task, module.eval(), lead.device, lead.precision, lead.quantized))
    out.members = tuple(o.run for o in opened)
    return out


def _same_labels(a: Opened, b: Opened) -> None:
    """Two opened classifier runs have the same labels (in any order)."""
    la, lb = list(getattr(a.task, "labels", [])), list(getattr(b.task, "labels", []))
    if sorted(la) != sorted(lb):
        raise UserError(
            f"{b.run}: labels {', '.join(lb)}, {a.run}: {', '.join(la)}: an ensemble's classifiers share their labels"
        )


def _vocabulary_difference(a: Opened, b: Opened) -> Optional[str]:
    """None when the learned tokenizers, vocabularies and labels of two opened runs are equal, else
    what differs (one line)."""
    try:
        _same_vocabulary(a, b)
    except UserError as err:
        return str(err)
    return None


def _same_vocabulary(a: Opened, b: Opened) -> None:
    """The learned tokenizers, vocabularies and labels of two opened runs are equal."""
    ta, tb = a.task, b.task
    pairs: list[tuple[str, Optional[list[str]], Optional[list[str]]]] = [
        ("vocab.json", ta.vocab.itos, tb.vocab.itos),
        ("vocab_tgt.json", _itos(ta, "_vocab_tgt"), _itos(tb, "_vocab_tgt")),
        ("labels.json", getattr(ta, "labels", None), getattr(tb, "labels", None)),
    ]
    for name, x, y in pairs:
        if x != y:
            what = _first_difference(x or [], y or [])
            raise UserError(f"{b.run}: {name} differs from {a.run}'s ({what}): an ensemble's runs share it")
    for side in ("tok", "tok_tgt"):
        if _learned(getattr(ta, side, None)) != _learned(getattr(tb, side, None)):
            raise UserError(
                f"{b.run}: its sentencepiece model differs from {a.run}'s: an ensemble's runs read text alike"
            )


def _itos(task: Any, attr: str) -> Optional[list[str]]:
    vocab = getattr(task, attr, None)
    return None if vocab is None else vocab.itos


def _learned(tok: Any) -> Optional[bytes]:
    """What a tokenizer learned from its train split (a sentencepiece model); None for rule-based ones."""
    return getattr(tok, "proto", None)
