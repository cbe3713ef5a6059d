"""The trainer: bucketed batches, clipping, AMP on CUDA, early stopping, best + last checkpoints, resume."""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import signal
import time
from collections.abc import Sized
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from textrnn import config, rundir
from textrnn.data import batching
from textrnn.data.prefetch import prefetch
from textrnn.device import pick_device
from textrnn.errors import Interrupted, UserError
from textrnn.nn import mincells
from textrnn.tasks.base import Task, build_model, build_task
from textrnn.training import allocator, dist, precision, report, transfer
from textrnn.training.step import Step

console = Console(stderr=True, soft_wrap=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _comparable(cfg: config.Pipeline) -> dict:
    """The parts of a pipeline that must not change between a run and its resume."""
    d = cfg.model_dump(mode="json")
    return {k: d[k] for k in ("task", "data", "tokenizer", "vocab", "model")} | {
        "seed": d["train"]["seed"],
        "batch": [d["train"]["batch_tokens"], d["train"]["batch_size"]],
        "select": d["train"]["select"],  # the best score so far is in its metric
    }


@dataclass
class TrainState:
    """Where a run stands: what `last.pt` keeps besides the model, the step's optimizer and the RNGs."""

    epoch: int = 0  # epochs finished
    step_in_epoch: int = 0  # steps of the current epoch done (a resume skips as many batches)
    global_step: int = 0
    best: Optional[float] = None  # the best valid metric so far, reached at epoch best_epoch
    best_epoch: Optional[int] = None
    bad_epochs: int = 0  # epochs since the best (early stopping)
    history: list[dict] = field(default_factory=list)  # one record per epoch (metrics.jsonl)
    step_seconds: float = 0.0  # time in training steps
    tokens: int = 0  # real (non-pad) tokens trained on
    wall_seconds: float = 0.0  # time of the run, evaluations included
    epoch_loss: Optional[float] = None  # the epoch so far: running loss, tokens, step time (a resume goes on)
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Keys a checkpoint lacks keep their defaults (checkpoints before epoch_*: a new tally)."""
        for f in fields(self):
            if f.name in d:
                setattr(self, f.name, d[f.name])

    def new_epoch(self) -> None:
        self.epoch_loss, self.epoch_tokens, self.epoch_seconds = None, 0, 0.0

    def add_step(self, k: int, loss: float, tokens: int, seconds: float) -> None:
        """Step k of the epoch is done; the epoch's running loss is a moving average (0.98)."""
        self.global_step += 1
        self.step_in_epoch = k + 1
        self.tokens += tokens
        self.step_seconds += seconds
        self.epoch_loss = loss if self.epoch_loss is None else 0.98 * self.epoch_loss + 0.02 * loss
        self.epoch_tokens += tokens
        self.epoch_seconds += seconds


def _run_eta(st: TrainState, epoch: int, epochs: int, per_epoch: Optional[int], done_in_epoch: int) -> str:
    """Time left for the whole run at the pace so far (evaluations included), e.g. "~12 min left"."""
    if not per_epoch or not st.global_step or not st.wall_seconds:
        return "…"
    left = (per_epoch - done_in_epoch) + per_epoch * (epochs - epoch - 1)  # steps (early stopping may cut it)
    seconds = st.wall_seconds / st.global_step * left
    return f"~{seconds / 60:.0f} min left" if seconds >= 90 else f"~{seconds:.0f} s left"


class Trainer:
    """Trains a pipeline into a run directory. Everything is read, validated and built (data,
    tokenizer, vocabulary, model, optimizer, precision) before the directory is touched; then it is
    locked for the run, and an existing run in it is replaced only with `overwrite`."""

    def __init__(
        self,
        cfg: config.Pipeline,
        run: Path,
        resume: bool = False,
        device: Optional[str] = None,
        on_step: Optional[Callable[[int], None]] = None,
        overwrite: bool = False,
    ):
        if resume and overwrite:
            raise UserError("--resume and --overwrite: choose one (continue the run, or start it again)")
        self.cfg, self.run, self.resume, self.on_step, self.overwrite = cfg, Path(run), resume, on_step, overwrite
        self.device = pick_device(device or cfg.train.device)
        self.stop_requested = False
        self.warnings: list[str] = []
        self.main = dist.is_main()  # under torchrun only rank 0 writes files and prints
        console.quiet = not self.main

    # ------------------------------------------------------------------ setup
    def _check_dir(self) -> None:
        """Read only: may this run use its directory?"""
        cfg, run = self.cfg, self.run
        if run.exists() and not run.is_dir():
            raise UserError(f"{run}: exists and is not a directory; choose another --output")
        if self.resume:
            if not (run / "last.pt").is_file():
                raise UserError(f"{run}: nothing to resume (no last.pt); run without --resume to start")
            _, saved = rundir.open_run(run)
            if _comparable(saved) != _comparable(cfg):
                raise UserError(
                    f"{run / 'pipeline.yaml'}: the pipeline changed since this run started "
                    f"(only train settings other than seed, batch size and select may change on --resume)"
                )
        elif not self.overwrite and self.main and rundir.holds_run(run):
            raise UserError(
                f"{run}: already holds a run ({', '.join(rundir.holds_run(run))}); "
                f"--resume continues it, --overwrite starts it again, or choose another --output"
            )

    def _prepare(self) -> Task:
        """Data read, tokenizer fitted and vocabulary built (or loaded: resume, torchrun followers); no writes."""
        cfg, run = self.cfg, self.run
        seed_everything(cfg.train.seed)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        task = build_task(cfg)
        with console.status("reading data…"):
            splits = task.read_splits()
        for name, ex in splits.items():
            note = f", {ex.skipped_empty} empty skipped" if getattr(ex, "skipped_empty", 0) else ""
            size = f"{len(ex):,} examples" if hasattr(ex, "__len__") else "streamed"
            console.print(f"[dim]{name}: {size} from {ex.origin}{note}[/]")
        valid = splits.get("valid")
        self._warn(report.small_valid(len(valid) if isinstance(valid, Sized) else None))
        follower = dist.active() and not self.main
        if follower:
            dist.barrier()  # rank 0 fits the tokenizer and vocabulary and writes them; the others load them
        with console.status("tokenizing and building the vocabulary…"):
            task.prepare(splits, run, self.resume or follower)
        return task

    def _warn(self, message: Optional[str]) -> None:
        """A one-line warning on stderr, kept in summary.json's "warnings"."""
        if message:
            self.warnings.append(message)
            console.print(f"[yellow]warning:[/] {message}", highlight=False)

    def _claim(self, task: Task) -> None:
        """Rank 0, with the directory locked: a new run replaces the old results and writes its
        pipeline, tokenizer, vocabulary and marker (a resume keeps everything)."""
        cfg, run = self.cfg, self.run
        if self.main and not self.resume:
            if not self.overwrite and rundir.holds_run(run):  # written since _check_dir
                raise UserError(
                    f"{run}: already holds a run ({', '.join(rundir.holds_run(run))}); "
                    f"--resume continues it, --overwrite starts it again"
                )
            for stale in rundir.RESULTS:
                (run / stale).unlink(missing_ok=True)
            shutil.rmtree(run / rundir.TENSORBOARD, ignore_errors=True)
            shutil.rmtree(run / rundir.EPOCHS, ignore_errors=True)
            rundir.write_atomic(run / "pipeline.yaml", config.dump(cfg))
            task.save(run)
            rundir.mark(run, cfg.task)
            rundir.write_manifest(run)
        if dist.active() and self.main:
            dist.barrier()
        console.print(f"[dim]vocabulary {len(task.vocab or ()):,} · device {self.device}[/]")

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        """last.pt: one flat dict, the state's keys beside model, optim, sched, scaler, task and the RNGs."""
        if not self.main:
            return
        ck = {
            **self.state.state_dict(),
            "model": self.core.state_dict(),
            **self.step.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "task": self.task.train_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        }
        rundir.save_torch(self.run / "last.pt", ck)

    def _write_metrics(self, history: list[dict]) -> None:
        if self.main:
            rundir.write_atomic(self.run / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        dist.init(self.device)
        self.cfg = transfer.resolve(self.cfg, self.run, self.resume)  # model.init_from: the source run's text stages
        self._check_dir()
        task = self._prepare()
        self._build(task)
        if not self.main:
            return self._train(task)
        with rundir.locked(self.run):
            return self._train(task)

    def _build(self, task: Task) -> None:
        """Model, training step (optimizer, schedule, precision) and state, from the checkpoint on
        resume: no writes."""
        t = self.cfg.train
        model = build_model(task).to(self.device)
        if not self.resume and transfer.source(self.cfg) is not None:
            for note in transfer.load_into(model, self.cfg, getattr(task, "labels", None)):
                console.print(f"[dim]{note}[/]", highlight=False)
        self.core, self.task = model, task  # core: the model itself; self.step.model: what trains (DDP-wrapped)
        self.n_params = sum(p.numel() for p in model.parameters())
        self.steps_per_epoch: Optional[int] = None
        self.pad: Optional[float] = None  # of the seed-0 epoch
        if task.streaming:
            if t.schedule.kind in ("linear", "slanted"):
                raise UserError(
                    f"train.schedule.kind {t.schedule.kind}: needs the epoch's length, unknown when streaming"
                )
        else:
            first = task.batches("train", shuffle=True, seed=0)
            self.steps_per_epoch = len(task.shard(first, dist.rank(), dist.world()))
            self.pad = batching.pad_fraction(task.lengths("train"), first)
        self.step = Step.build(
            model, task.loss, t, self.device, task.selection[1], t.epochs * (self.steps_per_epoch or 0)
        )
        if t.unfreeze == "gradual" and dist.world() > 1:
            raise UserError(
                "train.unfreeze: gradual is not supported under torchrun (DistributedDataParallel fixes the "
                "trained parameters when it wraps the model)"
            )
        self.tb: Any = None  # a SummaryWriter under train.tensorboard
        if t.tensorboard and self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs the tensorboard package)
            except ImportError:
                raise UserError(
                    "train.tensorboard: needs the tensorboard package (pip install 'textrnn[tensorboard]')"
                ) from None
        self.state = TrainState()
        if self.resume:
            ck = rundir.load_torch(self.run / "last.pt")
            try:
                model.load_state_dict(ck["model"])
                self.step.load_state_dict(ck)
                torch.set_rng_state(ck["torch_rng"])
                if ck.get("cuda_rng") is not None and self.device.type == "cuda":
                    torch.cuda.set_rng_state(ck["cuda_rng"])
                task.load_train_state(ck.get("task") or {}, self.device)
                self.state.load_state_dict(ck)
            except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
                raise UserError(
                    f"{self.run / 'last.pt'}: not a checkpoint of this run "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                ) from None
            console.print(f"resuming at epoch {self.state.epoch + 1}, step {self.state.global_step}")

    def _train(self, task: Task) -> dict:
        t, st, model = self.cfg.train, self.state, self.core
        self._claim(task)  # everything is validated: from here on the run directory changes
        if self.cfg.train.tensorboard and self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run / rundir.TENSORBOARD), purge_step=st.global_step or None)
        if dist.world() > 1:
            torch.manual_seed(t.seed + 7919 * dist.rank() + st.global_step)  # each rank its own dropout
            console.print(f"[dim]{dist.world()} processes (torchrun), {dist.backend()} backend[/]")
        self.step.model = dist.wrap(model, self.device)
        prec = precision.label(self.step.dtype)
        if self.pad is None:
            shape = "streamed batches"
        else:
            shape = f"{self.steps_per_epoch} batches per epoch · {self.pad:.1%} padding"
        steps = mincells.stepper_label(model, self.device)  # None without min cells or off the CPU
        malloc = allocator.pin() if self.device.type == "cpu" else None  # large step buffers stay mapped
        parts = [f"{self.n_params:,} parameters", shape, prec] + [escape(x) for x in (steps, malloc) if x]
        console.print(f"[dim]{' · '.join(parts)}[/]")

        def on_signal(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            console.print(f"[yellow]{what}: stopping after this step (Ctrl-C again to abort at once)…[/]")

        # Ctrl-C and SIGTERM (what job schedulers send) checkpoint and stop after the current step
        old_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        with contextlib.suppress(ValueError):  # not in the main thread: no handler
            for sig in old_handlers:
                signal.signal(sig, on_signal)
        try:
            self._loop(task)
        finally:
            if self.tb is not None:
                self.tb.close()
            with contextlib.suppress(ValueError):
                for sig, handler in old_handlers.items():
                    signal.signal(sig, handler)
        extra = {}
        if dist.active():
            extra = {
                "world_size": dist.world(),
                "weights_equal": dist.weights_equal(model),
                "tokens_all_ranks": int(dist.total(st.tokens)),
            }
        summary = self._finish(task, extra) if self.main else {}
        dist.finish()
        return summary

    def _loop(self, task: Task) -> None:
        t, st = self.cfg.train, self.state
        wall0 = time.perf_counter() - st.wall_seconds
        for epoch in range(st.epoch, t.epochs):
            if st.bad_epochs >= t.patience:
                break
            seed = t.seed * 100_003 + epoch
            order: Iterable[list[int]]
            total: Optional[int]
            if task.streaming:  # batches come buffer by buffer; their number is known at the epoch's end
                order, total = task.stream_batches(seed, dist.rank(), dist.world()), None
            else:
                batches = task.shard(task.batches("train", shuffle=True, seed=seed), dist.rank(), dist.world())
                order, total = batches, len(batches)
            self._unfreeze(epoch)
            skip = st.step_in_epoch
            if not skip:  # a new epoch (resuming mid-epoch goes on with the running loss and speed so far)
                st.new_epoch()
            # on a terminal only: a log file or pipe gets the one line per epoch below and nothing else
            with Progress(
                TextColumn("epoch {task.fields[epoch]}/" + str(t.epochs)),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f} · {task.fields[tps]:,.0f} tok/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("run {task.fields[eta]}"),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as bar:
                pid = bar.add_task(
                    "train",
                    total=total,
                    completed=skip,
                    epoch=epoch + 1,
                    loss=float("nan"),
                    tps=0,
                    eta=_run_eta(st, epoch, t.epochs, total, skip),
                )
                # resuming mid-epoch: the same batches, in the same order, the first `skip` skipped
                todo = ((k, idx) for k, idx in enumerate(order) if k >= skip)
                collate = lambda ki: (ki[0], task.collate("train", ki[1], self.device))  # noqa: E731
                for k, batch in prefetch(todo, collate, enabled=self.device.type == "cuda"):
                    t0 = time.perf_counter()
                    loss, ntok = self.step(batch)
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
                    dt = time.perf_counter() - t0
                    lv = float(loss)
                    if not math.isfinite(lv):
                        raise UserError(
                            f"training diverged at step {st.global_step + 1} (loss {lv}); "
                            f"lower train.optimizer.lr or set train.clip"
                        )
                    if self.tb is not None:
                        self.tb.add_scalar("train/loss", lv, st.global_step + 1)
                    st.add_step(k, lv, ntok, dt)
                    bar.update(
                        pid,
                        advance=1,
                        loss=st.epoch_loss,
                        tps=st.epoch_tokens / max(st.epoch_seconds, 1e-9),
                        eta=_run_eta(st, epoch, t.epochs, total, k + 1),
                    )
                    st.wall_seconds = time.perf_counter() - wall0
                    if self.on_step:
                        self.on_step(st.global_step)
                    if dist.any_rank(self.stop_requested):
                        self._checkpoint()
                        raise Interrupted(
                            f"interrupted at step {st.global_step}; checkpoint written to {self.run / 'last.pt'}",
                            self.run,
                        )
                    if t.checkpoint_every and st.global_step % t.checkpoint_every == 0 and k + 1 != total:
                        self._checkpoint()
                    if dist.any_rank(bool(t.max_minutes and st.wall_seconds >= 60 * t.max_minutes)):
                        break
            out_of_time = dist.any_rank(bool(t.max_minutes and st.wall_seconds >= 60 * t.max_minutes))
            self._end_epoch(task, epoch)
            self._keep_epoch(task, epoch + 1)
            st.wall_seconds = time.perf_counter() - wall0
            self._checkpoint()
            self._prune_epochs(task)
            if out_of_time:
                console.print(f"stopping: train.max_minutes ({t.max_minutes:g}) reached")
                break

    def _unfreeze(self, epoch: int) -> None:
        """train.unfreeze gradual: in epoch e (0-based) the top e+1 layer groups train and the ones below
        are frozen: requires_grad off, so they get no gradient and the optimizer skips them (no Adam
        moments, no weight decay). Derived from the epoch alone, so a resume freezes exactly the same."""
        if self.cfg.train.unfreeze != "gradual":
            return
        n = self.step.layers
        for g in self.step.opt.param_groups:
            for p in g["params"]:
                p.requires_grad_(g["layer"] >= n - 1 - epoch)
        if epoch < n - 1:
            console.print(f"[dim]epoch {epoch + 1}: the top {epoch + 1} of {n} layer groups train[/]")

    def _end_epoch(self, task: Task, epoch: int) -> None:
        st, opt, sched = self.state, self.step.opt, self.step.sched
        valid = dist.broadcast(task.evaluate(self.core, "valid", self.device) if self.main else None)
        metric, higher = task.selection
        score = valid[metric]
        best = st.best
        better = best is None or (score > best if higher else score < best)
        if better:
            st.best, st.best_epoch, st.bad_epochs = score, epoch + 1, 0
            if self.main:
                rundir.save_weights(self.core, self.run / "model.safetensors")
                rundir.write_manifest(self.run)
        else:
            st.bad_epochs += 1
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            lr = opt.param_groups[0]["lr"]
            sched.step(score)
            s = self.cfg.train.schedule
            if s.decay_after is not None and epoch + 1 >= s.decay_after and opt.param_groups[0]["lr"] == lr:
                for g in opt.param_groups:  # a fixed cut per epoch, unless the plateau rule just cut
                    g["lr"] *= s.factor
        train_loss = st.epoch_loss  # None: no step ran in this epoch
        rec = {
            "epoch": epoch + 1,
            "step": st.global_step,
            "split": "valid",
            "train_loss": train_loss,
            "lr": opt.param_groups[-1]["lr"],  # the top layer group's (train.discriminative: the lower are lower)
            "tokens_per_s": st.epoch_tokens / max(st.epoch_seconds, 1e-9),
        }
        rec.update({k: v for k, v in valid.items() if k != "confusion"})
        if self.tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(
                        ("train/" if k in ("train_loss", "lr", "tokens_per_s") else "valid/") + k, v, st.global_step
                    )
            self.tb.flush()
        st.history.append(rec)
        st.epoch, st.step_in_epoch = epoch + 1, 0
        self._write_metrics(st.history)
        if self.main:  # the learning curves so far, to look at while training goes on
            from textrnn.tools import plots

            plots.curves(st.history, task.selection[0], self.run / "curves.png", self.cfg.name, st.best_epoch)
        shown = " ".join(f"{k} {v:.4f}" for k, v in valid.items() if isinstance(v, float) and k != "examples")
        loss = "n/a" if train_loss is None else f"{train_loss:.4f}"
        console.print(
            f"epoch {epoch + 1:>3}  train loss {loss}  valid {shown}  "
            f"{rec['tokens_per_s']:,.0f} tok/s" + ("  [green]★ best[/]" if better else ""),
            soft_wrap=True,
        )

    def _averaged(self, task: Task) -> list[int]:
        """The epochs train.average_last / average_best average, in order: the last N that ran, or the N
        best on valid by the selection metric (a tie goes to the earlier epoch). Derived from the
        history alone, so a resumed run picks the same."""
        t, st = self.cfg.train, self.state
        if t.average_last:
            return list(range(max(1, st.epoch - t.average_last + 1), st.epoch + 1))
        if not t.average_best:
            return []
        metric, higher = task.selection
        scored = [(h[metric], h["epoch"]) for h in st.history if isinstance(h.get(metric), (int, float))]
        return rundir.best_epochs(scored, t.average_best, higher)

    def _keep_epoch(self, task: Task, epoch: int) -> None:
        """train.average_last / average_best: this epoch's weights in RUN/epochs/ when it is one of the
        epochs to average (written before last.pt, so a resume finds every epoch it has finished)."""
        if not self.main or epoch not in self._averaged(task):
            return
        (self.run / rundir.EPOCHS).mkdir(exist_ok=True)
        rundir.save_weights(self.core, rundir.epoch_weights(self.run, epoch))

    def _prune_epochs(self, task: Task) -> None:
        """Remove the epochs' weights that are no longer to be averaged, once last.pt (whose history
        says which are) is written: a run stopped before that resumes with every file it may need."""
        folder, t = self.run / rundir.EPOCHS, self.cfg.train
        if not self.main or not folder.is_dir() or not (t.average_last or t.average_best):
            return  # a resume without either key leaves the files as they are
        keep = set(self._averaged(task))
        for k in rundir.kept_epochs(self.run):
            if k not in keep:
                rundir.epoch_weights(self.run, k).unlink(missing_ok=True)

    def _average(self, task: Task) -> Optional[dict]:
        """train.average_last / average_best N: the mean of those epochs' weights, written to
        average.safetensors and scored on valid; it replaces model.safetensors when it scores better
        than the best epoch."""
        st, run = self.state, self.run
        if st.best is None:
            return None
        # all of them, unless the key was set on a resume
        epochs = [k for k in self._averaged(task) if rundir.epoch_weights(run, k).is_file()]
        if not epochs:
            return None
        rundir.average_weights([rundir.epoch_weights(run, k) for k in epochs], run / "average.safetensors")
        metric, higher = task.selection
        final = _decoded_otherwise(task, metric)
        rundir.load_weights(self.core, run / "average.safetensors", str(self.device))
        got = task.evaluate(self.core, "valid", self.device, final=final)
        score, best = got[metric], st.best
        if final:  # both as the finished model decodes (generate:'s beam), not greedily as each epoch was
            rundir.load_weights(self.core, run / "model.safetensors", str(self.device))  # the best epoch
            best = task.evaluate(self.core, "valid", self.device, final=True)[metric]
        better = score > best if higher else score < best
        if better:
            rundir.write_atomic(run / "model.safetensors", (run / "average.safetensors").read_bytes())
        return {  # summary.json's "average" (report.end_of_run prints it)
            "epochs": epochs,
            "of": "best" if self.cfg.train.average_best else "last",  # which epochs: the N best or the last N
            "metric": metric,
            "average": score,  # the valid metric of the average
            "best": best,  # and of the best epoch, decoded the same way
            "beam": got.get("beam"),  # translate / chat: how both were decoded (1: greedy); else None
            "best_epoch": st.best_epoch,
            "kept": "average" if better else "best",  # what model.safetensors holds
        }

    def _finish(self, task: Task, extra: dict) -> dict:
        model, st = self.core, self.state
        average = self._average(task)
        rundir.load_weights(model, self.run / "model.safetensors", str(self.device))
        summary: dict[str, Any] = {"valid": task.evaluate(model, "valid", self.device)}
        if "test" in task.data:
            summary["test"] = task.evaluate(model, "test", self.device, final=True)  # decoded as `translate` does
        summary.update(
            {
                "best_epoch": st.best_epoch,
                "selected_by": task.selection[0],  # the valid metric that picked it (train.select)
                "epochs": st.epoch,
                "steps": st.global_step,
                "tokens_per_s": st.tokens / max(st.step_seconds, 1e-9),
                "train_seconds": st.wall_seconds,
                "pad_fraction": self.pad,
                "parameters": self.n_params,
                "device": str(self.device),
                "precision": precision.label(self.step.dtype),
                **extra,
            }
        )
        if average:
            summary["average"] = average
        for w in report.warnings_at_end(task, summary):
            self._warn(w)
        summary["warnings"] = self.warnings
        rundir.write_json(self.run / "summary.json", summary)
        from textrnn.tools import plots

        plots.curves(st.history, task.selection[0], self.run / "curves.png", self.cfg.name, st.best_epoch)
        task.plots(model, self.run, self.device)
        rundir.write_manifest(self.run)
        return summary


def _decoded_otherwise(task: Task, metric: str) -> bool:
    """Whether `metric` depends on decoding and the finished model decodes otherwise than each epoch's
    score did (translate: greedy per epoch, generate:'s beam at the end)."""
    search = getattr(task, "eval_search", None)
    return metric not in ("loss", "perplexity") and search is not None and search(True) != search(False)


def run_pipeline(
    cfg: config.Pipeline,
    output: Optional[str] = None,
    resume: bool = False,
    device: Optional[str] = None,
    on_step=None,
    quiet: bool = False,
    overwrite: bool = False,
) -> tuple[Path, dict]:
    """Train `cfg` into its run directory; `resume` continues the run there, `overwrite` replaces it
    (otherwise an existing run is refused); `quiet` prints nothing (no progress bar, no epoch lines)."""
    run = Path(output or cfg.output or Path("runs") / cfg.name)
    was = console.quiet
    try:
        trainer = Trainer(cfg, run, resume, device, on_step, overwrite)
        console.quiet = console.quiet or quiet
        summary = trainer.fit()
        if trainer.main:
            for line in report.end_of_run(run, cfg.task, cfg.name, summary):
                console.print(line, highlight=False)
        return run, summary
    finally:
        console.quiet = was
