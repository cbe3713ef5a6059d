"""The run directory: the contract between training and use. Atomic writes; data-only loading."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file

from textrnn import __version__, config
from textrnn.errors import UserError

MARKER = "textrnn.json"  # {"version": ..., "task": ...}
FORMAT = 1  # bump when the layout changes incompatibly
HOLDER = ".textrnn.lock"  # who holds the run directory's lock (the lock itself is on the directory)
RUN_FILES = ("last.pt", "model.safetensors", "metrics.jsonl", "summary.json", MARKER)  # a run is here
RESULTS = (
    "last.pt",
    "model.safetensors",
    "metrics.jsonl",
    "summary.json",
    "curves.png",
    "confusion.png",
    "attention.png",
    "average.safetensors",
)  # what a new run replaces
TENSORBOARD = "tensorboard"  # event files of train.tensorboard (grow during training; not hashed)
EPOCHS = "epochs"  # train.average_last / average_best: those epochs' weights, epoch-K.safetensors (pruned; not hashed)
MANIFEST = "manifest.json"  # SHA-256 of every file inference reads, written after them
UNHASHED = ("last.pt", "metrics.jsonl", MANIFEST)  # change during training or are not read to use the model
_TEMP = re.compile(r"^\.[^.].*\.[A-Za-z0-9_]{8}$")  # temp_beside's names: .<file>.<8 random characters>


def temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in path's folder (for write-then-rename), with the permissions a plain
    open() would give (mkstemp's own are 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def check_out_folder(out: Path, run: Path, overwrite: bool) -> None:
    """An output folder (-o) may be new, an empty folder, or (with overwrite) a folder that holds
    neither the run it is made from nor the current directory."""
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"-o {out}: exists and is not empty (give --overwrite to replace it)")
        inside = [p for p in (run.resolve(), Path.cwd()) if p == out.resolve() or out.resolve() in p.parents]
        if inside:
            raise UserError(f"-o {out}: holds {inside[0]}; --overwrite would delete it")


def folder_beside(out: Path) -> Path:
    """A new hidden folder beside `out` (one file system) to fill, then put at `out` by replace_folder.
    The OS's refusal names `out`, not the hidden folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    except OSError as e:
        raise OSError(e.errno, f"cannot write there ({e.strerror})", str(out)) from None


def replace_folder(tmp: Path, out: Path) -> None:
    """Put the finished folder `tmp` at `out` by renames (an old `out` is deleted only after)."""
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "x")
    elif out.is_dir():
        out.rmdir()
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:  # put the old folder back
            os.replace(old / "x", out)
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def holds_run(run: Path) -> list[str]:
    """The run files already in `run` (empty: no run there)."""
    return [f for f in RUN_FILES if (run / f).is_file()]


@contextlib.contextmanager
def locked(run: Path):
    """Hold the run directory for writing: an OS lock (flock) on the directory, so a second
    `textrnn run` on it gets one line naming the holder; stale temporary files of a killed write
    are removed once the lock is held. Creates the directory."""
    run.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): no protection against a second writer
        yield
        return
    fd = os.open(run, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = (run / HOLDER).read_text(encoding="utf-8").strip()
            except OSError:
                holder = "another process"
            raise UserError(
                f"{run}: in use by another textrnn run ({holder}); wait for it or choose another --output"
            ) from None
        for f in [*run.iterdir(), *(run / EPOCHS).glob(".*")]:
            if _TEMP.match(f.name) and f.is_file():
                f.unlink(missing_ok=True)
        write_atomic(run / HOLDER, f"pid {os.getpid()} on {socket.gethostname()}\n")
        try:
            yield
        finally:
            (run / HOLDER).unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary name in the same folder, then rename: whole file or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_torch(path: Path, obj: Any) -> None:
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, RuntimeError):  # torch reports a failed write as a RuntimeError
            raise OSError(None, f"not written: {str(e).splitlines()[0]}", str(path)) from None
        raise


def load_torch(path: Path) -> Any:
    """Load a checkpoint as data only (never runs code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if msg.startswith("Weights only load failed"):
            msg = "not a checkpoint of tensors and plain data, which is all textrnn loads"
        raise UserError(f"{path}: unreadable checkpoint ({msg[:200]})") from None


def _storage_key(t: torch.Tensor) -> tuple:
    return t.device, t.data_ptr(), tuple(t.shape), t.stride()


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """safetensors of the state dict; tied weights stored once under their first name.

    Each tensor is copied to its own CPU storage first: on a GPU cuDNN keeps an RNN's weights
    as views into one flat buffer, which safetensors' own `save_model` refuses to write.
    """
    tensors, seen = {}, set()
    for name, t in model.state_dict().items():
        if _storage_key(t) not in seen:
            seen.add(_storage_key(t))
            tensors[name] = t.detach().to("cpu", copy=True).contiguous()
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise UserError(
            f"{path}: not written: {bad[0]} is not finite (training diverged; lower "
            f"train.optimizer.lr or set train.clip); the files already there are kept"
        )
    write_tensors(tensors, path)


def write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """A safetensors file written whole or not at all (temporary name, then rename)."""
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt"})
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(e, (OSError, KeyboardInterrupt, SystemExit)) and "I/O error" in str(e):
            raise OSError(None, f"not written: {str(e).splitlines()[0]}", str(path)) from None  # safetensors' own type
        raise


def read_tensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; an unreadable file is one line."""
    try:
        return load_file(str(path), device=str(device))
    except Exception as e:
        raise UserError(f"{path}: unreadable weights file ({str(e).splitlines()[0]})") from None


def load_weights(model: torch.nn.Module, path: Path, device: str = "cpu") -> None:
    if not path.is_file():
        raise UserError(f"{path}: missing (the run has not saved a model yet)")
    state = read_tensors(path, device)
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise UserError(f"{path}: {bad[0]} holds NaN or infinite values (a damaged or diverged model)")
    own = model.state_dict()
    for k, t in state.items():
        if k in own and tuple(own[k].shape) != tuple(t.shape):
            raise UserError(
                f"{path}: {k} is {list(t.shape)} in the file but {list(own[k].shape)} from the run's "
                f"pipeline.yaml, vocab.json and labels.json (was one of them edited?)"
            )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except Exception as e:
        raise UserError(f"{path}: weights do not fit the pipeline's model ({str(e).splitlines()[0]})") from None
    own = model.state_dict()
    loaded = {_storage_key(own[k]) for k in state if k in own}
    missing = [k for k in missing if _storage_key(own[k]) not in loaded]  # tied to a loaded name: fine
    if missing or unexpected:
        what = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
        raise UserError(f"{path}: weights do not fit the pipeline's model ({what})")


def epoch_weights(run: Path, epoch: int) -> Path:
    """Where train.average_last / average_best keep the weights of one epoch (1-based)."""
    return run / EPOCHS / f"epoch-{epoch}.safetensors"


def kept_epochs(run: Path) -> list[int]:
    """The epochs whose weights RUN/epochs/ holds (train.average_last / average_best), in order."""
    names = (
        p.name.removeprefix("epoch-").removesuffix(".safetensors") for p in (run / EPOCHS).glob("epoch-*.safetensors")
    )
    return sorted(int(k) for k in names if k.isdigit())


def best_epochs(scored: Sequence[tuple[float, int]], n: int, higher: bool) -> list[int]:
    """The n best of (valid score, epoch) pairs, in epoch order; a tie goes to the earlier epoch."""
    top = sorted(scored, key=lambda s: (-s[0] if higher else s[0], s[1]))[:n]
    return sorted(epoch for _, epoch in top)


def average_weights(paths: Sequence[Path], out: Path) -> None:
    """Write the element-wise mean of weight files (same names and shapes) to `out`, atomically.

    Floating tensors are summed in float64 and cast back (N identical files give the same bits);
    integer tensors are taken from the last file."""
    if not paths:
        raise ValueError("average_weights: no files")
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    for path in paths:
        state = read_tensors(path)
        if last and (set(state) != set(last) or any(state[k].shape != last[k].shape for k in state)):
            raise UserError(f"{path}: other tensors than {paths[0]} (not the same model)")
        for k, t in state.items():
            if t.is_floating_point():
                total[k] = total[k] + t.double() if k in total else t.double()
        last = state
    write_tensors({k: (total[k] / len(paths)).to(t.dtype) if k in total else t for k, t in last.items()}, out)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hashed(run: Path) -> list[Path]:
    """The files a manifest covers: all but checkpoints, metrics, plots and dot files."""
    return sorted(
        p
        for p in run.rglob("*")
        if p.is_file()
        and p.name not in UNHASHED
        and p.suffix != ".png"
        and not any(part.startswith(".") or part in (TENSORBOARD, EPOCHS) for part in p.relative_to(run).parts)
    )


def write_manifest(run: Path) -> None:
    """manifest.json: the SHA-256 of every file inference reads; written after them."""
    write_json(run / MANIFEST, {"sha256": {p.relative_to(run).as_posix(): _sha256(p) for p in _hashed(run)}})


def verify(run: Path) -> None:
    """Each file the manifest lists is there and unchanged; one line names the first that is not.
    A run without a manifest (written before textrnn had them) is not checked."""
    path = run / MANIFEST
    if not path.is_file():
        return
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        items = list(listed.items())
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise UserError(
            f"{path}: unreadable; if the run's files are as intended, write a new one with "
            f"`textrnn info {run} --accept-edits`"
        ) from None
    for name, digest in items:
        f = run / name
        if not f.is_file():
            raise UserError(f"{f}: missing (listed in {MANIFEST}; the run directory is incomplete)")
        if _sha256(f) != digest:
            raise UserError(
                f"{f}: changed since textrnn wrote it (its SHA-256 differs from {MANIFEST}); "
                f"if the edit is intended, accept it with `textrnn info {run} --accept-edits`"
            )


def read_metrics(run: Path) -> list[dict]:
    """metrics.jsonl: one dict per evaluation; a damaged line is named."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"{path}: missing (the run has not finished an epoch)")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{n}: not a JSON object") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("epoch"), int):
            raise UserError(f"{path}:{n}: not a metrics record")
        out.append(rec)
    return out


def read_summary(run: Path) -> dict | None:
    """summary.json as a dict (None while the run has none); a damaged file is named."""
    path = run / "summary.json"
    return _json_object(path, "not a run summary") if path.is_file() else None


def _json_object(path: Path, what: str) -> dict:
    """A JSON object from a run file; anything else is one line naming the file."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: {what} (not valid JSON)") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: {what} (not a JSON object)")
    return obj


def mark(run: Path, task: str) -> None:
    write_json(run / MARKER, {"version": __version__, "format": FORMAT, "task": task})


def open_run(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Path, config.Pipeline]:
    """Check that `path` is a textrnn run directory of this version; return it and its pipeline."""
    run = Path(path)
    marker = run / MARKER
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not marker.is_file():
        raise UserError(f"{run}: not a textrnn run directory (no {MARKER})")
    info = _json_object(marker, "unreadable")
    if info.get("format") != FORMAT:
        raise UserError(
            f"{run}: made by textrnn {info.get('version')} (run format {info.get('format')}); "
            f"this textrnn {__version__} reads format {FORMAT}"
        )
    raw = config.read_yaml(run / "pipeline.yaml")
    if not isinstance(raw, dict):
        raise UserError(f"{run / 'pipeline.yaml'}: not a pipeline")
    config.upgrade_saved(raw)
    for a in overrides:
        config.apply_set(raw, config.interpolate(a), Path.cwd())
    return run, config.validate(raw, str(run / "pipeline.yaml"))
