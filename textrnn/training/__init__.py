"""The trainer: the step, precision, multi-process training, transfer from a run."""
