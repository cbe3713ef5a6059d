"""Read a declared split (local files or the Hugging Face hub) through `datasets` into texts + labels."""

from __future__ import annotations

import csv
import gzip
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from textrnn.config import Data, Source
from textrnn.errors import UserError

if TYPE_CHECKING:
    import datasets


def _datasets():
    """`datasets`, imported on first use (a second of start-up that inference never needs), quiet."""
    import datasets

    if not getattr(datasets, "_textrnn_quiet", False):
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
        logging.getLogger("datasets").setLevel(logging.ERROR)
        datasets._textrnn_quiet = True
    return datasets


@dataclass
class Examples:
    texts: list[str]
    labels: Optional[list[str]]
    origin: str  # what to name in messages
    skipped_empty: int = 0

    def __len__(self) -> int:
        return len(self.texts)


def _files(src: Source) -> list[str]:
    paths = [src.path] if isinstance(src.path, str) else list(src.path or [])
    for p in paths:
        if not Path(p).is_file():
            raise UserError(f"{p}: no such file")
    return paths


def _format(src: Source, path: str) -> str:
    if src.format != "auto":
        return src.format
    name = path[:-3] if path.endswith(".gz") else path
    for ext, fmt in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl")):
        if name.endswith(ext):
            return fmt
    return "text"


def _first_bad_line(path: str, encoding: str) -> str:
    """Locate the first undecodable line, for the error message."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return f"{path}:{n}: bytes that are not valid {encoding} (set encoding: latin-1 if the file is Latin-1)"
    return f"{path}: bytes that are not valid {encoding}"


def _load(builder: str, files: list[str], encoding: str, **kw) -> datasets.Dataset:
    if all(Path(f).stat().st_size == 0 for f in files):
        raise UserError(f"{', '.join(files)}: no examples (the file is empty)")
    try:
        return _datasets().load_dataset(builder, data_files=files, split="train", encoding=encoding, **kw)
    except Exception as e:  # datasets wraps decoding errors in its own types
        cause: Optional[BaseException] = e
        while cause is not None and not isinstance(cause, UnicodeDecodeError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            msgs = [_first_bad_line(f, encoding) for f in files]
            located = [m for m, f in zip(msgs, files) if m.startswith(f + ":")]
            raise UserError((located or msgs)[0]) from None
        if "corresponds to no data" in str(e) or "No columns to parse" in str(e):
            raise UserError(f"{', '.join(files)}: no examples (the file is empty)") from None
        raise UserError(f"{', '.join(files)}: cannot be read as {builder}: {str(e).splitlines()[0]}") from None


def _column(ds: datasets.Dataset, col, what: str, origin: str) -> list:
    names = ds.column_names
    if isinstance(col, int):
        if not 0 <= col < len(names):
            raise UserError(f"{origin}: {what} column {col} does not exist (the file has {len(names)} columns)")
        col = names[col]
    if col not in names:
        raise UserError(f"{origin}: no column '{col}' for the {what} (columns: {', '.join(map(str, names))})")
    values = ds[col]
    feat = ds.features[col]
    if isinstance(feat, _datasets().ClassLabel):
        values = [feat.int2str(v) for v in values]
    return values


def _csv_kwargs(src: Source, fmt: str) -> dict:
    """datasets' csv builder options: no quote or NA mangling for tsv, positional columns without a header."""
    kw: dict[str, Any] = dict(delimiter="\t" if fmt == "tsv" else ",", keep_default_na=False, na_filter=False)
    if fmt == "tsv":
        kw["quoting"] = csv.QUOTE_NONE
    if not src.header:
        kw["header"] = None
    return kw


def _origin(src: Source) -> str:
    """What to name in messages about a source."""
    if src.hub:
        return src.hub.name
    if src.files:
        return ", ".join(src.files.values())
    return src.path if isinstance(src.path, str) else ", ".join(src.path or [])


def _table(src: Source, origin: str) -> datasets.Dataset:
    """The split as a datasets.Dataset with its original columns."""
    if src.hub is not None:
        return _hub(src)
    if src.files is not None:
        parts = []
        for label, path in src.files.items():
            ds = _load("text", _files(Source(path=path)), src.encoding)
            parts.append(ds.add_column("label", [label] * len(ds)))
        return _datasets().concatenate_datasets(parts)
    files = _files(src)
    fmt = _format(src, files[0])
    if fmt in ("csv", "tsv"):
        _check_fields(files, fmt, src)
        ds = _load("csv", files, src.encoding, **_csv_kwargs(src, fmt))
        if not src.header:  # pandas names the columns "0", "1", ...
            ds = ds.rename_columns({c: f"col{i}" for i, c in enumerate(ds.column_names)})
        return ds
    if fmt == "jsonl":
        return _load("json", files, src.encoding)
    ds = _load("text", files, src.encoding)
    if fmt == "label_first":  # "<label> <text>" per line (stsa.binary)
        pairs = [line.split(None, 1) for line in ds["text"]]
        for n, p in enumerate(pairs, 1):
            if len(p) == 1:
                raise UserError(f"{origin}:{n}: expected '<label> <text>', got one word")
        pairs = [p for p in pairs if p]
        return _datasets().Dataset.from_dict({"label": [p[0] for p in pairs], "text": [p[1] for p in pairs]})
    return ds


def _hub(src: Source) -> datasets.Dataset:
    hub = src.hub
    assert hub is not None
    local = Path(hub.name)
    try:
        if local.is_dir() and ((local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists()):
            ds = _datasets().load_from_disk(str(local))
        else:
            ds = _datasets().load_dataset(hub.name, hub.config, split=hub.split)
    except Exception as e:
        raise UserError(f"hub dataset '{hub.name}': {str(e).splitlines()[0]}") from None
    if isinstance(ds, _datasets().DatasetDict):
        if hub.split not in ds:
            raise UserError(f"hub dataset '{hub.name}': no split '{hub.split}' (splits: {', '.join(ds)})")
        ds = ds[hub.split]
    return ds


def _where(src: Source, origin: str, row: int) -> str:
    """file:line of a table row where the file is one local file, else the row number."""
    if isinstance(src.path, str) and src.hub is None and src.files is None:
        fmt = _format(src, src.path)
        return f"{origin}:{row + 1 + (fmt in ('csv', 'tsv') and src.header)}"
    return f"{origin}: row {row + 1}"


def _check_fields(files: list[str], fmt: str, src: Source) -> None:
    """Every csv/tsv row has as many fields as the first: a ragged row is named, never read into
    the wrong columns."""
    for f in files:
        opener = gzip.open if f.endswith(".gz") else open
        try:
            with opener(f, "rt", encoding=src.encoding, newline="") as fh:
                rows = (line.rstrip("\r\n").split("\t") for line in fh) if fmt == "tsv" else csv.reader(fh)
                width = None
                for n, row in enumerate(rows, 1):
                    if not row or row == [""]:
                        continue
                    if width is None:
                        width = len(row)
                    elif len(row) != width:
                        raise UserError(
                            f"{f}:{n}: {len(row)} fields where the first row has {width} "
                            f"({'tabs' if fmt == 'tsv' else 'commas'} inside a text? quote it, or use jsonl)"
                        )
        except (UnicodeDecodeError, csv.Error, OSError, EOFError):
            return  # the reader below names the line or the problem


def read(src: Source, label_names: dict[str, str], labelled: bool = True) -> Examples:
    origin = _origin(src)
    ds = _table(src, origin)
    texts = _column(ds, src.text, "text", origin)
    for i, t in enumerate(texts):
        if t is not None and not isinstance(t, (str, int, float)):
            raise UserError(f"{_where(src, origin, i)}: the text is a {type(t).__name__}, not a string")
    labels = None
    if labelled:
        if src.label is None:
            raise UserError(f"{origin}: this task needs a label column (set label:)")
        raw = _column(ds, src.label, "label", origin)
        for i, (t, v) in enumerate(zip(texts, raw)):
            if t is None or not str(t).strip():
                continue  # a row without text is skipped anyway
            if v is None or isinstance(v, (list, dict)) or not str(v).strip():
                got = "empty" if v is None or not str(v).strip() else f"a {type(v).__name__}"
                raise UserError(f"{_where(src, origin, i)}: the label is {got}")
        labels = [str(v).strip() for v in raw]  # labels are stripped: "positive " is "positive"
        labels = [label_names.get(v, v) for v in labels]
    keep = [i for i, t in enumerate(texts) if t is not None and str(t).strip()]
    skipped = len(texts) - len(keep)
    if src.limit is not None:
        keep = keep[: src.limit]
    texts = [str(texts[i]) for i in keep]
    if labels is not None:
        labels = [labels[i] for i in keep]
    if not texts:
        raise UserError(f"{origin}: no examples (the split is empty)")
    return Examples(texts, labels, origin, skipped)


class Stream:
    """A split read as a stream: (text, label) pairs from datasets' IterableDataset, empty texts
    skipped; iterating again reads the source again (shuffled with a buffer when `seed` is set)."""

    def __init__(self, src: Source, label_names: dict[str, str], labelled: bool):
        if src.files is not None:
            raise UserError("streaming: not for `files:` sources (give one file with a label column)")
        self.src, self.label_names, self.labelled = src, label_names, labelled
        self.origin = _origin(src)
        self.skipped_empty = 0
        next(iter(self.rows(None)), None)  # fail now (missing file, column) rather than mid-training

    def _dataset(self):
        src = self.src
        if src.hub is not None:
            local = Path(src.hub.name)
            if local.is_dir():
                return _datasets().load_from_disk(str(local)).to_iterable_dataset()
            return _datasets().load_dataset(src.hub.name, src.hub.config, split=src.hub.split, streaming=True)
        files = _files(src)
        fmt = _format(src, files[0])
        kw = _csv_kwargs(src, fmt) if fmt in ("csv", "tsv") else {}
        builder = {"csv": "csv", "tsv": "csv", "jsonl": "json"}.get(fmt, "text")
        return _datasets().load_dataset(
            builder, data_files=files, split="train", encoding=src.encoding, streaming=True, **kw
        )

    def rows(self, seed: Optional[int], buffer: int = 10000) -> Iterator[tuple[str, Optional[str]]]:
        src, fmt = self.src, None if self.src.hub else _format(self.src, _files(self.src)[0])
        ds = self._dataset()
        if seed is not None:
            ds = ds.shuffle(seed=seed, buffer_size=buffer)
        n, it = 0, iter(ds)
        while True:
            try:
                row = next(it)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise UserError(_first_bad_line(_files(src)[0], src.encoding)) from None
            if fmt == "label_first":
                parts = row["text"].split(None, 1)
                if len(parts) < 2:
                    continue
                row = {"label": parts[0], "text": parts[1]}
            keys = list(row)
            col = lambda c: keys[c] if isinstance(c, int) and c < len(keys) else c  # noqa: E731
            tcol = col(src.text)
            if tcol not in row:
                raise UserError(
                    f"{self.origin}: no column '{src.text}' for the text (columns: {', '.join(map(str, keys))})"
                )
            text = row[tcol]
            if text is None or not str(text).strip():
                continue
            label = None
            if self.labelled:
                lcol = col(src.label)
                if lcol not in row:
                    raise UserError(
                        f"{self.origin}: no column '{src.label}' for the label (columns: {', '.join(map(str, keys))})"
                    )
                label = str(row[lcol])
                label = self.label_names.get(label, label)
            yield str(text), label
            n += 1
            if src.limit is not None and n >= src.limit:
                return

    def chunks(self, size: int, seed: Optional[int]) -> Iterator[tuple[list[str], Optional[list[Optional[str]]]]]:
        """The stream in lists of `size` examples: (texts, labels or None)."""
        texts: list[str] = []
        labels: list[Optional[str]] = []
        for t, lab in self.rows(seed):
            texts.append(t)
            labels.append(lab)
            if len(texts) >= size:
                yield texts, (labels if self.labelled else None)
                texts, labels = [], []
        if texts:
            yield texts, (labels if self.labelled else None)


def carve(n: int, fraction: float, seed: int, origin: str) -> tuple[list[int], list[int]]:
    """(valid, train) indexes, each sorted: a fixed-seed random `fraction` of n examples for validation."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_valid = max(1, int(n * fraction))
    if n_valid >= n:
        raise UserError(f"{origin}: too few examples to carve a validation split")
    return sorted(idx[:n_valid]), sorted(idx[n_valid:])


def carve_seed(data: Data, train_seed: int) -> int:
    """The seed that carves valid from train: data.valid_seed, else the training seed."""
    return train_seed if data.valid_seed is None else data.valid_seed


def read_splits(data: Data, seed: int, labelled: bool = True) -> dict[str, Union[Examples, Stream]]:
    """train / valid / test (train a Stream under `streaming`); valid carved from train with a fixed
    seed when not declared."""
    out: dict[str, Union[Examples, Stream]] = {}
    if data.train.streaming:
        if data.valid is None:
            raise UserError("data.train.streaming: declare a valid split (none can be carved from a stream)")
        out["train"] = Stream(data.train, data.label_names, labelled)
    else:
        out["train"] = read(data.train, data.label_names, labelled)
    if data.valid is not None:
        out["valid"] = read(data.valid, data.label_names, labelled)
    else:
        tr = out["train"]
        assert isinstance(tr, Examples)
        vi, ti = carve(len(tr.texts), data.valid_fraction, carve_seed(data, seed), tr.origin)
        labels = tr.labels
        out["valid"] = Examples(
            [tr.texts[i] for i in vi], None if labels is None else [labels[i] for i in vi], tr.origin + " (valid part)"
        )
        out["train"] = Examples(
            [tr.texts[i] for i in ti], None if labels is None else [labels[i] for i in ti], tr.origin, tr.skipped_empty
        )
    if data.test is not None:
        out["test"] = read(data.test, data.label_names, labelled)
    return out
