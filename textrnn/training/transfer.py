"""`model.init_from: RUN`: a run that starts from a language-model run (ULMFiT / ELMo transfer).

* `resolve` runs before any data is read and before the run directory is touched: the LM run is a
  finished `lm` run whose sizes fit this model (else one line naming both shapes), and the
  pipeline's `tokenizer:` / `vocab:` blocks take the LM run's values (a key given here that
  contradicts the LM's is one line naming both values; `tokenizer.max_length` only truncates and may
  differ). The tasks then read the LM run's tokenizer files and vocabulary instead of fitting their
  own, and save them in the new run, which stands alone: loading it never reads the LM run.
* `load_into` copies the weights into the freshly built model (still before the directory is
  touched): every weight for an LM; the embedding and the recurrent layers for a classifier and a
  translate encoder. A PaddedEncoder's one-layer module `fwd[i]` takes the LM's `rnn` layer i
  (`weight_ih_l{i}` -> `weight_ih_l0`, …; min cells: `layers.{i}.` -> `layers.0.`) and `bwd[i]` its
  backward stack `rnn_bw` layer i; a one-direction LM leaves the backward layers fresh, and encoder
  layers above the LM's (`model.encoder.layers` > the LM's `model.layers`) start fresh (ELMo's task
  BiLSTM on top of the pretrained layers).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from textrnn import config, rundir
from textrnn.errors import UserError

TRUNCATION = {"max_length"}  # tokenizer keys that may differ from the LM's: they cut texts, not tokens
LM_SHAPE = ("cell", "hidden", "layers", "bidirectional", "tie_weights", "softmax")  # lm from lm: equal
ADAPTIVE_SHAPE = ("cutoffs", "div_value")  # and these, with the adaptive softmax


def task_class(name: str) -> Any:
    """The Task class registered under a task name."""
    import textrnn.tasks  # noqa: F401  (registers the tasks)
    from textrnn.registry import get

    return get("task", name)


def source(cfg: config.Pipeline) -> Optional[Path]:
    """The LM run a pipeline starts from (model.init_from, relative to the working directory), or None."""
    init = getattr(cfg.model, "init_from", None)
    return Path(init) if init else None


def resolve(cfg: config.Pipeline, run: Path, resume: bool) -> config.Pipeline:
    """The pipeline with its tokenizer and vocab blocks taken from the LM run, its sizes checked.
    On resume they come from the run's own pipeline.yaml (which holds the LM's): the LM run is not needed."""
    lm = source(cfg)
    if lm is None:
        return cfg
    if task_class(cfg.task).transfer is None:
        raise UserError(f"model.init_from: not for {cfg.task} ({task_class(cfg.task).no_transfer})")
    if resume:
        try:
            _, saved = rundir.open_run(run)
        except UserError:
            return cfg  # the trainer's own resume check says what is wrong with the run
        return inherit(cfg, saved, f"the run {run}")
    lm_cfg = open_lm(lm)
    check_sizes(cfg, lm_cfg, lm)
    return inherit(cfg, lm_cfg, f"the LM run {lm}")


def open_lm(lm: Path) -> config.Pipeline:
    """The LM run's pipeline; a missing run, another task or a run without weights is one line."""
    try:
        _, lm_cfg = rundir.open_run(lm)
    except UserError as e:
        raise UserError(f"model.init_from: {e}") from None
    if not task_class(lm_cfg.task).transfer_source:
        raise UserError(f"model.init_from {lm}: a {lm_cfg.task} run; transfer starts from a language model (task: lm)")
    if not (lm / "model.safetensors").is_file():
        raise UserError(f"model.init_from {lm}: no model.safetensors (the LM run has not finished an epoch)")
    return lm_cfg


def _v(value: Any) -> str:
    """A value as YAML writes it: true, null, 128, [2000, 10000]."""
    return json.dumps(value)


def check_sizes(cfg: config.Pipeline, lm_cfg: config.Pipeline, lm: Path) -> None:
    """This model's embedding and recurrent layers have the LM's sizes and cell (else one line naming both)."""
    m, src = cfg.model, lm_cfg.model

    def same(here_key: str, here: Any, lm_key: str, there: Any) -> None:
        if here != there:
            raise UserError(f"model.init_from {lm}: {here_key} {_v(here)} here, {lm_key} {_v(there)} in the LM")

    same("model.embedding.dim", m.embedding.dim, "model.embedding.dim", src.embedding.dim)
    if task_class(cfg.task).transfer == "all":
        keys = LM_SHAPE + (ADAPTIVE_SHAPE if m.softmax == "adaptive" else ())
        for k in keys:
            same(f"model.{k}", getattr(m, k), f"model.{k}", getattr(src, k))
        return
    if m.embedding.pretrained:
        raise UserError("model.embedding.pretrained: not with model.init_from (the embedding comes from the LM run)")
    if m.embedding.freeze:
        raise UserError(
            "model.embedding.freeze: not with model.init_from (train.unfreeze: gradual holds the embedding, "
            "the bottom layer group, until the last unfreezing epoch)"
        )
    enc = m.encoder
    same("model.encoder.cell", enc.cell, "model.cell", src.cell)
    same("model.encoder.hidden", enc.hidden, "model.hidden", src.hidden)
    if enc.layers < src.layers:
        raise UserError(
            f"model.init_from {lm}: model.encoder.layers {enc.layers} here, model.layers {src.layers} in the LM "
            f"(the encoder takes all the LM's layers; layers above them start fresh)"
        )
    if enc.bidirectional and src.layers > 1 and not enc.separate_directions:
        raise UserError(
            f"model.init_from {lm}: layer 2 of a bidirectional encoder reads both directions "
            f"({2 * enc.hidden} wide), an LM's layer 2 reads one ({src.hidden}); "
            f"set model.encoder.separate_directions: true (ELMo's layout)"
        )


def inherit(cfg: config.Pipeline, src: config.Pipeline, where: str) -> config.Pipeline:
    """`tokenizer:` and `vocab:` from `src`; a key given in cfg must agree with it (truncation aside)."""
    update = {}
    for block in ("tokenizer", "vocab"):
        mine, theirs = getattr(cfg, block), getattr(src, block)
        given = set(mine.model_fields_set) if block in cfg.model_fields_set else set()
        for key in sorted(given - TRUNCATION):
            if getattr(mine, key) != getattr(theirs, key):
                raise UserError(
                    f"{block}.{key}: {_v(getattr(mine, key))} here, {_v(getattr(theirs, key))} in {where} "
                    f"(model.init_from takes its tokenizer and vocabulary: leave the key out)"
                )
        update[block] = theirs.model_copy(update={k: getattr(mine, k) for k in given & TRUNCATION})
    return cfg.model_copy(update=update)


# ---------------------------------------------------------------- weights


def lm_name(name: str, i: int) -> str:
    """A one-layer module's parameter name -> layer i's in a multi-layer stack of the same cell:
    weight_ih_l0 -> weight_ih_l{i} (nn.LSTM / GRU / RNN), layers.0.proj.weight -> layers.{i}.proj.weight."""
    if name.startswith("layers.0."):
        return f"layers.{i}." + name[len("layers.0.") :]
    return re.sub(r"_l0$", f"_l{i}", name)


def _copy(param: torch.Tensor, here: str, state: dict[str, torch.Tensor], key: str, lm: Path) -> None:
    if key not in state:
        raise UserError(f"model.init_from {lm}: {key} is not in its model.safetensors ({here} has no source)")
    t = state[key]
    if tuple(t.shape) != tuple(param.shape):
        raise UserError(f"model.init_from {lm}: {here} is {list(param.shape)} here, {key} {list(t.shape)} in the LM")
    with torch.no_grad():
        param.copy_(t)


def load_into(model: nn.Module, cfg: config.Pipeline) -> list[str]:
    """Copy the LM run's weights into a new model; returns one-line notes on what was loaded."""
    from textrnn.tasks.lm import LanguageModel

    lm = source(cfg)
    assert lm is not None
    path = lm / "model.safetensors"
    if isinstance(model, LanguageModel):
        rundir.load_weights(model, path)
        return [f"initialised from {lm}: every weight"]
    state = rundir.read_tensors(path)
    emb: Any = getattr(model, "input_embed")  # an Embedding
    _copy(emb.emb.weight, "the embedding", state, "embed.emb.weight", lm)
    enc: Any = getattr(model, "encoder")  # a PaddedEncoder
    both = enc.bwd is not None and any(k.startswith("rnn_bw.") for k in state)
    taken = open_lm(lm).model.layers  # check_sizes: <= the encoder's layers; those above start fresh
    for i, f in enumerate(enc.fwd[:taken]):
        stacks = [(f, "fwd", "rnn")] + ([(enc.bwd[i], "bwd", "rnn_bw")] if both else [])
        for mod, here, there in stacks:
            for name, p in mod.named_parameters():
                _copy(p, f"encoder.{here}.{i}.{name}", state, f"{there}.{lm_name(name, i)}", lm)
    what = "both directions" if both else "forward"
    notes = [f"initialised from {lm}: the embedding and {taken} encoder layer(s), {what}"]
    if len(enc.fwd) > taken:
        fresh = f"layer {taken + 1} starts" if len(enc.fwd) == taken + 1 else f"layers {taken + 1}-{len(enc.fwd)} start"
        notes.append(f"model.init_from {lm}: encoder {fresh} fresh (above the LM's)")
    if enc.bwd is not None and not both:
        notes.append(f"model.init_from {lm}: a one-direction LM: the encoder's backward layers start fresh")
    return notes
