"""A loaded text classifier: labels and probabilities for texts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union, overload

import numpy as np

from textrnn.inference.base import TaskModel, texts_arg


@dataclass(frozen=True)
class Prediction:
    """The most probable label, its probability and every label's probability."""

    label: str
    prob: float
    probs: dict[str, float]


class Classifier(TaskModel):
    """A sentiment (or any text) classifier: `predict(texts)`."""

    task_name = "classify"
    kind = "a classifier"
    methods = ("predict", "predict_proba", "evaluate", "plot")

    @property
    def labels(self) -> list[str]:
        """The class names, in the order of predict_proba's columns."""
        return list(self.task.labels)

    def predict_proba(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Class probabilities [N, C] (columns in `labels` order), rows in input order."""
        items, _ = texts_arg(texts, "predict_proba")
        if not items:
            return np.zeros((0, len(self.task.labels)), dtype=np.float32)
        with self._lock, self.task.amp():
            return self.task.predict_proba(self.model, items, self.device)

    @overload
    def predict(self, texts: str) -> Prediction: ...
    @overload
    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def predict(self, texts):
        """The label of each text: one Prediction for a str, a list of them (in order) for a list.

        Texts are batched by length internally; the result equals classifying them one by one."""
        items, single = texts_arg(texts, "predict")
        probs = self.predict_proba(items)
        labels = self.task.labels
        out = []
        for p in probs:
            best = int(p.argmax())
            out.append(Prediction(labels[best], float(p[best]), {lab: float(q) for lab, q in zip(labels, p)}))
        return out[0] if single else out
