"""Ensembles: runs of one task that read text alike, loaded as one Classifier, Translator or Chatbot.

    mt = textrnn.ensemble(["runs/mt-1", "runs/mt-2", "runs/mt-3"])
    mt.translate("Où est la gare ?", beam=5)

Classifiers average the members' class probabilities; translation and chat models average the
members' log-probabilities at every search step (textrnn.nn.ensemble), so every method of the
single-run class works as it does for one run. The members must share the task, the tokenizer
settings and learned tokenizer, the vocabularies and the labels; tokenization, the `generate:`
defaults and the test split come from the first run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

from textrnn import config
from textrnn.errors import UserError
from textrnn.inference.base import TaskModel
from textrnn.inference.classifier import Classifier
from textrnn.inference.opening import Opened, open_run, read_pipeline
from textrnn.inference.translator import Chatbot, Translator


class Ensemble(TaskModel):
    """What an ensemble adds to its task's class: `members` (the run directories, first = `run`);
    it has no summary or learning curves of its own."""

    members: tuple[Path, ...] = ()

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

    @staticmethod
    def combine(models: list) -> Any:
        from textrnn.nn.ensemble import EnsembleClassifier as ClassifierModule

        return ClassifierModule(models)


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
    docstring); the options are textrnn.load's, applied to every run. Runs of other tasks, tokenizers,
    vocabularies or labels are refused with one line (textrnn.UserError) before any weights are read
    (the learned tokenizer and the vocabularies: as each run is opened)."""
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
    for run, cfg in pipes[1:]:
        _same_reading(first_run, first, run, cfg)
    opened = [open_run(run, overrides, device, precision, quantize, verify) for run, _ in pipes]
    lead = opened[0]
    for o in opened[1:]:
        _same_vocabulary(lead, o)
    models = [o.model for o in opened]
    module = CLASSES[task].combine(models)
    out = CLASSES[task](Opened(lead.run, lead.cfg, lead.task, module.eval(), lead.device, lead.precision, quantize))
    out.members = tuple(o.run for o in opened)
    return out


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
