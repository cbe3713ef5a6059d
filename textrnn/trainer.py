"""The trainer: bucketed batches, clipping, AMP on CUDA, early stopping, best + last checkpoints, resume."""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from textrnn import config, dist, precision, report, rundir
from textrnn.data import batching
from textrnn.data.prefetch import prefetch
from textrnn.device import pick_device
from textrnn.errors import Interrupted, UserError
from textrnn.tasks.base import Task, build_model, build_task

console = Console(stderr=True, soft_wrap=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, o: config.Optimizer) -> torch.optim.Optimizer:
    """SGD / Adam / AdamW, fused (one vectorized kernel per tensor) where PyTorch has it: on CPU
    the default per-tensor Adam took 28 ms a step for 5 M parameters, the fused one 3.6 ms."""
    params = [p for p in params if p.requires_grad]
    devices = {p.device.type for p in params}
    fast = {"fused": True} if len(devices) == 1 and devices <= {"cpu", "cuda"} else {}

    def build(**kw) -> torch.optim.Optimizer:
        if o.name == "sgd":
            return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, **kw)
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        return cls(params, lr=o.lr, weight_decay=o.weight_decay, **kw)

    try:
        return build(**fast)
    except (RuntimeError, ValueError, TypeError):  # an older torch or a device without fused kernels
        return build()


def make_schedule(opt, s: config.Schedule, higher_is_better: bool, total_steps: int):
    """Returns (scheduler, stepped_per_batch)."""
    if s.kind == "plateau":
        mode = "max" if higher_is_better else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=s.factor, patience=s.patience), False
    if s.kind == "linear":
        warm = max(s.warmup_steps, 0)

        def f(step):
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total_steps - step) / max(1, total_steps - warm))

        return torch.optim.lr_scheduler.LambdaLR(opt, f), True
    return None, False


def _comparable(cfg: config.Pipeline) -> dict:
    """The parts of a pipeline that must not change between a run and its resume."""
    d = cfg.model_dump(mode="json")
    return {k: d[k] for k in ("task", "data", "tokenizer", "vocab", "model")} | {
        "seed": d["train"]["seed"],
        "batch": [d["train"]["batch_tokens"], d["train"]["batch_size"]],
    }


def _run_eta(st: dict, epoch: int, epochs: int, per_epoch: Optional[int], done_in_epoch: int) -> str:
    """Time left for the whole run at the pace so far (evaluations included), e.g. "~12 min left"."""
    if not per_epoch or not st["global_step"] or not st["wall_seconds"]:
        return "…"
    left = (per_epoch - done_in_epoch) + per_epoch * (epochs - epoch - 1)  # steps (early stopping may cut it)
    seconds = st["wall_seconds"] / st["global_step"] * left
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
                    f"(only train settings other than seed and batch size may change on --resume)"
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
        self._warn(report.small_valid(len(valid) if hasattr(valid, "__len__") else None))
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
            rundir.write_atomic(run / "pipeline.yaml", config.dump(cfg))
            task.save(run)
            rundir.mark(run, cfg.task)
            rundir.write_manifest(run)
        if dist.active() and self.main:
            dist.barrier()
        console.print(f"[dim]vocabulary {len(task.vocab):,} · device {self.device}[/]")

    def _autocast(self):
        return precision.autocast(self.device, self.dtype)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, state: dict) -> None:
        if not self.main:
            return
        ck = dict(
            state,
            model=self.core.state_dict(),
            optim=self.opt.state_dict(),
            sched=self.sched.state_dict() if self.sched else None,
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            torch_rng=torch.get_rng_state(),
            task=self.task.train_state(),
            cuda_rng=torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        )
        rundir.save_torch(self.run / "last.pt", ck)

    def _write_metrics(self, history: list[dict]) -> None:
        if self.main:
            rundir.write_atomic(self.run / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        dist.init(self.device)
        self._check_dir()
        task = self._prepare()
        built = self._build(task)
        if not self.main:
            return self._train(task, *built)
        with rundir.locked(self.run):
            return self._train(task, *built)

    def _build(self, task: Task) -> tuple:
        """Model, optimizer, schedule, precision and (resume) the checkpoint's state: no writes."""
        t = self.cfg.train
        model = build_model(task).to(self.device)
        self.core, self.task = model, task  # core: the model itself; self.model: what trains (DDP-wrapped)
        n_params = sum(p.numel() for p in model.parameters())
        if task.streaming:
            if t.schedule.kind == "linear":
                raise UserError("train.schedule.kind linear: needs the epoch's length, unknown when streaming")
            steps_per_epoch = None
        else:
            steps_per_epoch = len(task.shard(task.batches("train", shuffle=True, seed=0), dist.rank(), dist.world()))
        self.opt = make_optimizer(model.parameters(), t.optimizer)
        self.sched, per_batch = make_schedule(
            self.opt, t.schedule, task.higher_is_better, t.epochs * (steps_per_epoch or 0)
        )
        self.dtype = precision.resolve(t.precision, t.amp, self.device)  # autocast dtype, None = float32
        self.tb = None
        if t.tensorboard and self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (needs the tensorboard package)
            except ImportError:
                raise UserError(
                    "train.tensorboard: needs the tensorboard package (pip install 'textrnn[tensorboard]')"
                ) from None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        st = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "best": None,
            "best_epoch": None,
            "bad_epochs": 0,
            "history": [],
            "step_seconds": 0.0,
            "tokens": 0,
            "wall_seconds": 0.0,
            "epoch_loss": None,
            "epoch_tokens": 0,
            "epoch_seconds": 0.0,
        }  # the epoch so far: a resume goes on with it
        if self.resume:
            ck = rundir.load_torch(self.run / "last.pt")
            try:
                model.load_state_dict(ck["model"])
                self.opt.load_state_dict(ck["optim"])
                if self.sched and ck.get("sched"):
                    self.sched.load_state_dict(ck["sched"])
                if self.scaler.is_enabled() and ck.get("scaler"):
                    self.scaler.load_state_dict(ck["scaler"])
                torch.set_rng_state(ck["torch_rng"])
                if ck.get("cuda_rng") is not None and self.device.type == "cuda":
                    torch.cuda.set_rng_state(ck["cuda_rng"])
                task.load_train_state(ck.get("task") or {}, self.device)
                st = {k: ck.get(k, v) for k, v in st.items()}  # checkpoints before epoch_* keys: a new tally
            except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
                raise UserError(
                    f"{self.run / 'last.pt'}: not a checkpoint of this run "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                ) from None
            console.print(f"resuming at epoch {st['epoch'] + 1}, step {st['global_step']}")
        return model, st, n_params, steps_per_epoch, per_batch

    def _train(self, task: Task, model, st: dict, n_params: int, steps_per_epoch, per_batch: bool) -> dict:
        t = self.cfg.train
        self._claim(task)  # everything is validated: from here on the run directory changes
        if self.cfg.train.tensorboard and self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run / rundir.TENSORBOARD), purge_step=st["global_step"] or None)
        if dist.world() > 1:
            torch.manual_seed(t.seed + 7919 * dist.rank() + st["global_step"])  # each rank its own dropout
            console.print(f"[dim]{dist.world()} processes (torchrun), {dist.backend()} backend[/]")
        self.model = dist.wrap(model, self.device)
        prec = precision.label(self.dtype)
        if task.streaming:
            pad, shape = None, "streamed batches"
        else:
            pad = batching.pad_fraction(task.lengths("train"), task.batches("train", shuffle=True, seed=0))
            shape = f"{steps_per_epoch} batches per epoch · {pad:.1%} padding"
        console.print(f"[dim]{n_params:,} parameters · {shape} · {prec}[/]")

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
            self._loop(task, st, steps_per_epoch, per_batch)
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
                "tokens_all_ranks": int(dist.total(st["tokens"])),
            }
        summary = self._finish(task, st, n_params, pad, extra) if self.main else {}
        dist.finish()
        return summary

    def _loop(self, task: Task, st: dict, steps_per_epoch: int, per_batch: bool) -> None:
        t, model = self.cfg.train, self.model
        wall0 = time.perf_counter() - st["wall_seconds"]
        for epoch in range(st["epoch"], t.epochs):
            if st["bad_epochs"] >= t.patience:
                break
            seed = t.seed * 100_003 + epoch
            if task.streaming:  # batches come buffer by buffer; their number is known at the epoch's end
                order, total = task.stream_batches(seed, dist.rank(), dist.world()), None
            else:
                order = task.shard(task.batches("train", shuffle=True, seed=seed), dist.rank(), dist.world())
                total = len(order)
            skip = st["step_in_epoch"]
            if skip:  # resuming mid-epoch: the running loss and speed of the steps before the interruption
                ema, ep_tokens, ep_time = st["epoch_loss"], st["epoch_tokens"], st["epoch_seconds"]
            else:
                ema, ep_tokens, ep_time = None, 0, 0.0
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
                    model.train()
                    with self._autocast():
                        loss, ntok = task.loss(model, batch)
                    self.opt.zero_grad(set_to_none=True)
                    self.scaler.scale(loss).backward()
                    if t.clip > 0:
                        self.scaler.unscale_(self.opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip)
                    self.scaler.step(self.opt)
                    self.scaler.update()
                    if per_batch:
                        self.sched.step()
                    if self.device.type == "cuda":
                        torch.cuda.synchronize()
                    dt = time.perf_counter() - t0
                    lv = float(loss.detach())
                    if not math.isfinite(lv):
                        raise UserError(
                            f"training diverged at step {st['global_step'] + 1} (loss {lv}); "
                            f"lower train.optimizer.lr or set train.clip"
                        )
                    ema = lv if ema is None else 0.98 * ema + 0.02 * lv
                    if self.tb is not None:
                        self.tb.add_scalar("train/loss", lv, st["global_step"] + 1)
                    st["global_step"] += 1
                    st["step_in_epoch"] = k + 1
                    st["tokens"] += ntok
                    st["step_seconds"] += dt
                    ep_tokens += ntok
                    ep_time += dt
                    st["epoch_loss"], st["epoch_tokens"], st["epoch_seconds"] = ema, ep_tokens, ep_time
                    bar.update(
                        pid,
                        advance=1,
                        loss=ema,
                        tps=ep_tokens / max(ep_time, 1e-9),
                        eta=_run_eta(st, epoch, t.epochs, total, k + 1),
                    )
                    st["wall_seconds"] = time.perf_counter() - wall0
                    if self.on_step:
                        self.on_step(st["global_step"])
                    if dist.any_rank(self.stop_requested):
                        self._checkpoint(st)
                        raise Interrupted(
                            f"interrupted at step {st['global_step']}; checkpoint written to {self.run / 'last.pt'}",
                            self.run,
                        )
                    if t.checkpoint_every and st["global_step"] % t.checkpoint_every == 0 and k + 1 != total:
                        self._checkpoint(st)
                    if dist.any_rank(bool(t.max_minutes and st["wall_seconds"] >= 60 * t.max_minutes)):
                        break
            out_of_time = dist.any_rank(bool(t.max_minutes and st["wall_seconds"] >= 60 * t.max_minutes))
            self._end_epoch(task, st, epoch, ema, ep_tokens, ep_time)
            st["wall_seconds"] = time.perf_counter() - wall0
            self._checkpoint(st)
            if out_of_time:
                console.print(f"stopping: train.max_minutes ({t.max_minutes:g}) reached")
                break

    def _end_epoch(self, task: Task, st: dict, epoch: int, train_loss, ep_tokens: int, ep_time: float) -> None:
        valid = dist.broadcast(task.evaluate(self.core, "valid", self.device) if self.main else None)
        score = valid[task.metric]
        best = st["best"]
        better = best is None or (score > best if task.higher_is_better else score < best)
        if better:
            st["best"], st["best_epoch"], st["bad_epochs"] = score, epoch + 1, 0
            if self.main:
                rundir.save_weights(self.core, self.run / "model.safetensors")
                rundir.write_manifest(self.run)
        else:
            st["bad_epochs"] += 1
        if self.sched is not None and isinstance(self.sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            lr = self.opt.param_groups[0]["lr"]
            self.sched.step(score)
            s = self.cfg.train.schedule
            if s.decay_after is not None and epoch + 1 >= s.decay_after and self.opt.param_groups[0]["lr"] == lr:
                for g in self.opt.param_groups:  # a fixed cut per epoch, unless the plateau rule just cut
                    g["lr"] *= s.factor
        rec = {
            "epoch": epoch + 1,
            "step": st["global_step"],
            "split": "valid",
            "train_loss": train_loss,
            "lr": self.opt.param_groups[0]["lr"],
            "tokens_per_s": ep_tokens / max(ep_time, 1e-9),
        }
        rec.update({k: v for k, v in valid.items() if k != "confusion"})
        if self.tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(
                        ("train/" if k in ("train_loss", "lr", "tokens_per_s") else "valid/") + k, v, st["global_step"]
                    )
            self.tb.flush()
        st["history"].append(rec)
        st["epoch"], st["step_in_epoch"] = epoch + 1, 0
        self._write_metrics(st["history"])
        if self.main:  # the learning curves so far, to look at while training goes on
            from textrnn import plots

            plots.curves(st["history"], task.metric, self.run / "curves.png", self.cfg.name, st["best_epoch"])
        shown = " ".join(f"{k} {v:.4f}" for k, v in valid.items() if isinstance(v, float) and k != "examples")
        loss = "n/a" if train_loss is None else f"{train_loss:.4f}"  # None: no step ran in this epoch
        console.print(
            f"epoch {epoch + 1:>3}  train loss {loss}  valid {shown}  "
            f"{rec['tokens_per_s']:,.0f} tok/s" + ("  [green]★ best[/]" if better else ""),
            soft_wrap=True,
        )

    def _finish(self, task: Task, st: dict, n_params: int, pad: float, extra: dict) -> dict:
        model = self.core
        rundir.load_weights(model, self.run / "model.safetensors", str(self.device))
        summary = {"valid": task.evaluate(model, "valid", self.device)}
        if "test" in task.data:
            summary["test"] = task.evaluate(model, "test", self.device)
        summary.update(
            {
                "best_epoch": st["best_epoch"],
                "epochs": st["epoch"],
                "steps": st["global_step"],
                "tokens_per_s": st["tokens"] / max(st["step_seconds"], 1e-9),
                "train_seconds": st["wall_seconds"],
                "pad_fraction": pad,
                "parameters": n_params,
                "device": str(self.device),
                "precision": precision.label(self.dtype),
                **extra,
            }
        )
        for w in report.warnings_at_end(task, summary):
            self._warn(w)
        summary["warnings"] = self.warnings
        rundir.write_json(self.run / "summary.json", summary)
        from textrnn import plots

        plots.curves(st["history"], task.metric, self.run / "curves.png", self.cfg.name, st["best_epoch"])
        task.plots(model, self.run, self.device)
        rundir.write_manifest(self.run)
        return summary


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
