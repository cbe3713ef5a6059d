"""What every task shares: tokenizer + vocabulary preparation and persistence, the streamed train
split, batching, the summed evaluation loop, and the Task interface (an abstract base class).

The tasks themselves are listed by the package: textrnn/tasks/__init__.py imports the four task
modules, each of which registers its Task class under its `task:` name.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping, Optional

import numpy as np
import torch
from torch import nn

from textrnn.config import Data, Pipeline
from textrnn.data import batching
from textrnn.errors import UserError
from textrnn.registry import get
from textrnn.text import tokenized, tokenizers
from textrnn.text.vocab import Vocab

if TYPE_CHECKING:
    from textrnn.data.sources import Stream


class Task(ABC):
    """A task turns splits into batches, owns its model, its loss and its metrics."""

    name: ClassVar[str] = "base"
    metric: ClassVar[str] = "loss"  # the valid metric that picks the best checkpoint unless train.select says
    higher_is_better: ClassVar[bool] = False
    labelled: ClassVar[bool] = True  # its examples carry a label (read from the sources' label column)
    # model.init_from (training/transfer.py): what a model of this task takes from a language-model run:
    # "all" (every weight: an LM), "encoder" (embedding + recurrent layers), or None (refused: see no_transfer)
    transfer: ClassVar[Optional[str]] = "encoder"
    no_transfer: ClassVar[str] = ""  # why model.init_from is refused, where it is
    transfer_from: ClassVar[tuple[str, ...]] = ("lm",)  # the tasks whose runs model.init_from may name
    train_stream: Stream  # the streamed train split (set by take_stream when data.train.streaming)

    @property
    def selection(self) -> tuple[str, bool]:
        """(metric, higher is better): the valid metric that picks the best epoch (train.select, else the task's)."""
        return self.selection_for(self.cfg)

    @classmethod
    def selection_for(cls, cfg: Pipeline) -> tuple[str, bool]:
        """`selection` of a pipeline of this task, without building the task (no tokenizer loaded)."""
        from textrnn.config import SELECT

        pick = cfg.train.select
        return (cls.metric, cls.higher_is_better) if pick is None else (pick, SELECT[cls.name][pick])

    def __init__(self, cfg: Pipeline):
        self.cfg = cfg
        self.tok = tokenizers.build(cfg.tokenizer)
        self._vocab: Optional[Vocab] = None
        self.data: dict[str, list[np.ndarray]] = {}  # split -> id arrays
        self.fresh = False  # a new model (prepare without resume): pretrained vectors are read into it
        self.streaming = False  # data.train.streaming: the train split is never held whole

    @property
    def vocab(self) -> Vocab:
        """The (source-side) vocabulary, once prepare or load has built or read it."""
        if self._vocab is None:
            raise RuntimeError(f"{type(self).__name__}: no vocabulary before prepare() or load()")
        return self._vocab

    @vocab.setter
    def vocab(self, vocab: Vocab) -> None:
        self._vocab = vocab

    # -- data
    def read_splits(self, data: Optional[Data] = None) -> dict:
        """train / valid / test of `data` (default: the pipeline's) as sources.Examples (a streamed train
        split as a sources.Stream)."""
        from textrnn.data import sources

        return sources.read_splits(data or self.cfg.data, self.cfg.train.seed, labelled=self.labelled)

    def read_valid(self):
        """The valid split alone: the declared one, or the part carved from train with the run's seed,
        exactly as training carved it (the test split is not read)."""
        return self.read_splits(self.cfg.data.model_copy(update={"test": None}))["valid"]

    def read_test(self, source=None):
        """The declared test split alone (for `textrnn evaluate`), or `source` (a config.Source) instead."""
        from textrnn.data import sources

        return sources.read(source or self.cfg.data.test, self.cfg.data.label_names, labelled=self.labelled)

    def take_stream(self, splits: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(the train split, the splits to encode now). A streamed train split (data.train.streaming)
        becomes self.train_stream, read buffer by buffer, and is left out of the splits to encode."""
        from textrnn.data import sources

        train = splits.get("train")
        self.streaming = isinstance(train, sources.Stream)
        if isinstance(train, sources.Stream):
            self.train_stream = train
            return train, {k: v for k, v in splits.items() if k != "train"}
        return train, dict(splits)

    # -- text -> ids
    def fit_text(self, train_texts: list[str]) -> tokenized.Tokenized:
        """Fit the tokenizer and build the vocabulary on the train split only."""
        self.tok.fit(train_texts)
        toks = tokenized.tokenize(self.tok, train_texts)
        v = self.cfg.vocab
        self.vocab = Vocab.build(toks.counts(), v.min_freq, v.max_size)
        return toks

    def numericalize(self, texts: list[str], cache: bool = True) -> list[np.ndarray]:
        """Tokenize (cached on disk when `cache`) and numericalize; an empty text gives no ids."""
        return tokenized.tokenize(self.tok, texts, use_cache=cache).numericalize(self.vocab)

    def nonempty(self, ids: list[np.ndarray]) -> list[np.ndarray]:
        """An empty id array becomes a single <unk> (the model needs one step)."""
        return [a if len(a) else np.array([self.vocab.unk]) for a in ids]

    def encode_texts(self, texts: list[str], cache: bool = True) -> list[np.ndarray]:
        """Tokenize (cached) and numericalize; an empty text becomes a single <unk>."""
        return self.nonempty(self.numericalize(texts, cache))

    def unknown_of(self, ids: list[np.ndarray]) -> list[tuple[int, int]]:
        """(tokens not in the vocabulary, tokens) of each id array."""
        return [(int(np.sum(a == self.vocab.unk)), len(a)) for a in ids]

    def unknown_counts(self, texts: list[str]) -> list[tuple[int, int]]:
        """(tokens not in the vocabulary, tokens) of each text, as the model reads it."""
        return self.unknown_of(self.numericalize(texts, cache=False))

    # -- streaming (data.train.streaming: the train split is never held whole)
    def fit_stream(self, stream: Stream) -> set:
        """Tokenizer fitted on the stream's first `data.stream_sample` texts, vocabulary counted over
        all of it (one pass, memory bounded by the vocabulary); returns the labels seen."""
        d, v = self.cfg.data, self.cfg.vocab
        empty: tuple[list[str], None] = ([], None)
        sample = next(stream.chunks(d.stream_sample, None), empty)[0]
        self.tok.fit(sample)
        counts, labels = self.stream_counts(stream)
        self.vocab = Vocab.build(counts, v.min_freq, v.max_size)
        return labels

    def stream_counts(self, stream: Stream) -> tuple[Counter, set]:
        """(token counts, labels seen) over a whole stream with the fitted tokenizer (one pass)."""
        counts: Counter[str] = Counter()
        labels: set[str] = set()
        for texts, labs in stream.chunks(self.cfg.data.stream_buffer, None):
            counts.update(tokenized.tokenize(self.tok, texts, use_cache=False).counts())
            labels.update(lab for lab in labs or () if lab is not None)
        return counts, labels

    def load_buffer(self, texts: list[str], labels) -> None:
        """Streaming: one buffer of the train split becomes self.data["train"]."""
        self.data["train"] = self.encode_texts(texts, cache=False)

    def stream_batches(self, seed: int, rank: int = 0, world: int = 1) -> Iterator[list[int]]:
        """Streaming: an epoch's batches, buffer by buffer (examples shuffled by datasets with a
        buffer, then length-bucketed within each buffer); indexes into the current buffer."""
        for k, (texts, labels) in enumerate(self.train_stream.chunks(self.cfg.data.stream_buffer, seed)):
            self.load_buffer(texts, labels)
            yield from self.shard(self.batches("train", shuffle=True, seed=seed * 1009 + k), rank, world)

    def save_text(self, run: Path) -> None:
        self.tok.save(run)
        self.vocab.save(run / "vocab.json")

    def load_text(self, run: Path) -> None:
        self.tok.load(run)
        self.vocab = Vocab.load(run / "vocab.json")

    # -- batching
    def lengths(self, split: str) -> list[int]:
        return [len(a) for a in self.data[split]]

    def batches(self, split: str, shuffle: bool, seed: int = 0) -> list[list[int]]:
        t = self.cfg.train
        return batching.make_batches(self.lengths(split), t.batch_tokens, t.batch_size, shuffle, seed)

    def shard(self, batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
        """This process's part of an epoch's batches under multi-process training."""
        return batching.shard(batches, rank, world)

    # -- evaluation
    @torch.no_grad()
    def summed_loss(self, model: nn.Module, split: str, device, batch_loss: Callable[[dict], Any]) -> tuple[float, int]:
        """The evaluation loop: a split's batches in order (eval mode, no gradients); `batch_loss(batch)`
        gives each batch's summed loss. Returns (the total, the batches' "tokens")."""
        model.eval()
        total, n = 0.0, 0
        for idx in self.batches(split, shuffle=False):
            b = self.collate(split, idx, device)
            total += float(batch_loss(b))
            n += b["tokens"]
        return total, n

    # -- inference
    inference_dtype: Optional[torch.dtype] = None  # autocast at inference: the commands' `--precision`
    inference_device: str = "cpu"  # the device type it autocasts on

    def amp(self):
        """The autocast that inference runs under (None: float32)."""
        if self.inference_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.inference_device, dtype=self.inference_dtype)

    # -- checkpoints
    def train_state(self) -> dict:
        """What a checkpoint must keep besides the model and optimizer for an exact resume."""
        return {}

    def load_train_state(self, state: dict, device) -> None:
        """Restore train_state() from a checkpoint."""

    def drop_split(self, name: str) -> None:
        """Forget a split added with add_split."""
        for attr in ("data", "targets", "streams", "tgt", "refs", "first"):
            getattr(self, attr, {}).pop(name, None)

    # -- what each task implements
    @abstractmethod
    def prepare(self, splits: dict, run: Path, resume: bool) -> None:
        """Fit the tokenizer and vocabulary on the train split (or load them from `run` when resuming)
        and encode every split."""

    @abstractmethod
    def add_split(self, name: str, examples) -> None:
        """Encode one more split with the fitted tokenizer and vocabulary (e.g. a test file to evaluate)."""

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A new model for the prepared vocabulary (and labels)."""

    @abstractmethod
    def collate(self, split: str, idx: list[int], device) -> dict:
        """One batch (tensors on `device`) of a split's examples; "tokens" counts what its loss covers."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, int]:
        """The training loss of a batch (a mean) and the tokens it covers."""

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str, device, final: bool = False) -> dict:
        """The metrics of a split (`metric` among them). `final`: the figure reported for a finished model
        (the run's test score, `textrnn evaluate`): tasks that generate text decode with the pipeline's
        `generate:` settings; otherwise the cheap per-epoch score (translate: greedy)."""

    @abstractmethod
    def save(self, run: Path) -> None:
        """Write what the run directory needs besides the weights (tokenizer, vocabulary, labels)."""

    @abstractmethod
    def load(self, run: Path) -> None:
        """Read what save() wrote."""

    @abstractmethod
    def plots(self, model: nn.Module, run: Path, device) -> None:
        """The task's own plots in the run directory (besides the learning curves)."""

    @abstractmethod
    def export_fields(self) -> dict:
        """The task's part of an export's signature.json: tokenization, special ids, labels or decoding
        (see textrnn.export.signature)."""


def build_model(task: Task) -> nn.Module:
    """The task's model; sizes that torch cannot allocate or accept become one line."""
    try:
        return task.build_model()
    except (RuntimeError, ValueError, OverflowError, MemoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"model: cannot be built with these settings ({msg[:200]})") from None


def build_task(cfg: Pipeline) -> Task:
    """The Task registered under the pipeline's `task:` (textrnn.tasks registers them all on import)."""
    return get("task", cfg.task)(cfg)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
