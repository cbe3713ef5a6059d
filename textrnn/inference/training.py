"""Train a pipeline and evaluate a run from Python (what `textrnn run` and `textrnn evaluate` do)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from textrnn.errors import UserError

Overrides = Union[Mapping[str, Any], Sequence[str], None]


@dataclass
class Run:
    """A finished training run: its directory and summary.json's content."""

    path: Path
    summary: dict = field(repr=False)

    def load(self, **kw):
        """The trained model (see textrnn.load)."""
        from textrnn.inference import load

        return load(self.path, **kw)

    def __repr__(self) -> str:
        metrics = {
            k: round(v, 4)
            for k, v in self.summary.get("test", self.summary.get("valid", {})).items()
            if isinstance(v, float)
        }
        return f"Run(path='{self.path}', metrics={metrics})"


def train(
    pipeline: Union[str, os.PathLike],
    overrides: Overrides = None,
    output: Optional[Union[str, os.PathLike]] = None,
    resume: bool = False,
    overwrite: bool = False,
    device: Optional[str] = None,
    progress: bool = True,
) -> Run:
    """Train a pipeline YAML (with `overrides` applied, as `--set` does) into `output` (default:
    the pipeline's `output:` or runs/<name>); `resume` continues from the last checkpoint,
    `overwrite` replaces a run already there (otherwise it is refused). Shows the progress bar
    unless `progress=False`. Returns the Run (path and summary)."""
    from textrnn import config
    from textrnn.training.trainer import run_pipeline

    if isinstance(overrides, Mapping):
        cfg = config.load(Path(pipeline), values=dict(overrides))
    elif overrides is None or (not isinstance(overrides, str) and all(isinstance(a, str) for a in overrides)):
        cfg = config.load(Path(pipeline), list(overrides or ()))
    else:
        raise UserError("overrides: a mapping {'train.epochs': 3} or a list of 'key.sub=value' strings")
    path, summary = run_pipeline(
        cfg, None if output is None else str(output), resume, device, quiet=not progress, overwrite=overwrite
    )
    return Run(Path(path), summary)


def evaluate(
    run: Union[str, os.PathLike], test=None, device: str = "auto", precision: str = "fp32", split: str = "test"
) -> dict:
    """Metrics of a run's best model on its test split, or on `test` (a file, (src, tgt) files, or a
    source mapping), or with split="valid" on its valid split; the numbers `textrnn evaluate` prints."""
    from textrnn.inference import load

    return load(os.fspath(run), device=device, precision=precision).evaluate(test, split=split)
