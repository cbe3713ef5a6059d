"""The inference layer: a run directory becomes a task object that any front end uses.

    import textrnn
    clf = textrnn.load("runs/sentiment")     # Classifier, LanguageModel, Translator or Chatbot
    clf.predict(["an absolute delight"])
    mt = textrnn.ensemble(["runs/mt-1", "runs/mt-2"])  # runs of one task and vocabulary: one Translator

The CLI, the REPL, the benchmarks and `bench` / `inspect` all go through `load`; nothing here
imports a front end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from textrnn.errors import UserError
from textrnn.inference.base import TaskModel, WrongTask
from textrnn.inference.classifier import Classifier, Prediction
from textrnn.inference.ensemble import ensemble
from textrnn.inference.language_model import LanguageModel
from textrnn.inference.opening import accept_edits, open_run, read_pipeline
from textrnn.inference.session import ChatSession
from textrnn.inference.training import Run, evaluate, train
from textrnn.inference.translator import Chatbot, Translator

CLASSES: dict[str, type[TaskModel]] = {c.task_name: c for c in (Classifier, LanguageModel, Translator, Chatbot)}

__all__ = [
    "load",
    "ensemble",
    "train",
    "evaluate",
    "Run",
    "TaskModel",
    "Classifier",
    "Prediction",
    "LanguageModel",
    "Translator",
    "Chatbot",
    "ChatSession",
    "WrongTask",
    "UserError",
    "read_pipeline",
    "accept_edits",
]


def load(
    run: str | Path,
    device: str = "auto",
    precision: str = "fp32",
    quantize: bool = False,
    overrides: Sequence[str] = (),
    verify: bool = True,
) -> TaskModel:
    """Open a trained run directory as a Classifier, LanguageModel, Translator or Chatbot.

    device: auto (cuda, then mps, then cpu) | cpu | cuda | mps; precision: fp32 | bf16 | fp16 | auto
    (inference autocast); quantize: int8 weights on the CPU; overrides: pipeline values as
    "key.sub=value" (e.g. data.test.path=FILE); verify: check the files against the run's manifest
    (a changed vocab.json or weights file is named, never used silently). Bad input raises
    textrnn.UserError with one sentence.
    """
    if not isinstance(quantize, bool):
        raise UserError(f"load: quantize is True or False, not {quantize!r}")
    opened = open_run(run, overrides, device, precision, quantize, verify)
    return CLASSES[opened.cfg.task](opened)
