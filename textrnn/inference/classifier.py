"""A loaded text classifier: labels and probabilities for texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union, overload

import numpy as np

from textrnn.errors import UserError
from textrnn.inference.base import TaskModel, texts_arg


@dataclass(frozen=True)
class Prediction:
    """The most probable label, its probability, every label's probability, and how many of the
    text's tokens were not in the model's vocabulary."""

    label: str
    prob: float
    probs: dict[str, float]
    unknown: int = 0
    tokens: int = 0


class Classifier(TaskModel):
    """A sentiment (or any text) classifier: `predict(texts)`."""

    task_name = "classify"
    kind = "a classifier"
    methods = ("predict", "predict_proba", "evaluate", "plot")

    @property
    def labels(self) -> list[str]:
        """The class names, in the order of predict_proba's columns."""
        return list(self.task.labels)

    figures = ("curves", "confusion")

    def _figure(self, what: str):
        """The confusion matrix of the test split (else valid) from summary.json."""
        from textrnn.tools import plots

        s = self.summary
        split = "test" if "confusion" in s.get("test", {}) else "valid"
        if "confusion" not in s.get(split, {}):
            raise UserError(f"{self.run}: no confusion matrix in summary.json (the run has not finished)")
        return plots.confusion_figure(np.array(s[split]["confusion"]), self.labels, f"{self.pipeline.name}: {split}")

    def _details(self) -> dict:
        return {"labels": self.labels}

    def predict_proba(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Class probabilities [N, C] (columns in `labels` order), rows in input order."""
        items, _ = texts_arg(texts, "predict_proba")
        if not items:
            return np.zeros((0, len(self.task.labels)), dtype=np.float32)
        with self._lock, self.task.amp():
            return self.task.predict_proba(self.model, items, self.device)

    def _probs(self, items: list[str], ids: list[np.ndarray]) -> np.ndarray:
        """Class probabilities [N, C] of texts `items`, numericalized by this run as `ids`."""
        return self.task.predict_ids(self.model, ids, self.device)

    @overload
    def predict(self, texts: str) -> Prediction: ...  # type: ignore[overload-overlap]  # a str is one text
    @overload
    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def predict(self, texts):
        """The label of each text: one Prediction for a str, a list of them (in order) for a list.

        Texts are batched by length internally; the result equals classifying them one by one."""
        items, single = texts_arg(texts, "predict")
        if not items:
            return []
        with self._lock, self.task.amp():
            ids = self.task.numericalize(items, cache=False)  # encoded once: probabilities and unknown counts
            probs = self._probs(items, ids)
        labels = self.task.labels
        out = []
        for p, (unk, n) in zip(probs, self.task.unknown_of(ids)):
            best = int(p.argmax())
            out.append(Prediction(labels[best], float(p[best]), {lab: float(q) for lab, q in zip(labels, p)}, unk, n))
        return out[0] if single else out
