"""`model.init_from: RUN`: a run that starts from a language-model run (ULMFiT / ELMo transfer).

* `resolve` runs before any data is read and before the run directory is touched: the LM run is a
  finished `lm` run whose sizes fit this model (else one line naming both shapes), and the
  pipeline's `tokenizer:` / `vocab:` blocks take the LM run's values (a key given here that
  contradicts the LM's is one line naming both values; `tokenizer.max_length` only truncates and may
  differ). The tasks then read the LM run's tokenizer files and vocabulary instead of fitting their
  own (a classifier's `vocab.extend: N` appends the train split's words it lacks, counted >= N
  times: the key is always the pipeline's own), and save them in the new run, which stands alone:
  loading it never reads the LM run.
* `load_into` copies the weights into the freshly built model (still before the directory is
  touched): every weight for an LM; the embedding (rows of added words: the mean of the LM's) and
  the recurrent layers for a classifier and a translate encoder. A PaddedEncoder's one-layer
  module `fwd[i]` takes the LM's `rnn` layer i
  (`weight_ih_l{i}` -> `weight_ih_l0`, …; min cells: `layers.{i}.` -> `layers.0.`) and `bwd[i]` its
  backward stack `rnn_bw` layer i; a one-direction LM leaves the backward layers fresh, and encoder
  layers above the LM's (`model.encoder.layers` > the LM's `model.layers`) start fresh (ELMo's task
  BiLSTM on top of the pretrained layers).
* A classifier may also start from a `classify` run (intermediate-task transfer, e.g. an IMDB
  classifier fine-tuned on SST-2): its tokenizer, vocabulary, embedding and encoder layers as above
  (the same names: nothing to rename), and its pooling + head too where this run's labels are the
  same list and the shapes fit; otherwise the head starts fresh (a note says why).
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
OWN = {"vocab": {"extend"}}  # keys always this pipeline's: what it adds to the source's vocabulary
LM_SHAPE = ("cell", "hidden", "layers", "bidirectional", "tie_weights", "softmax")  # lm from lm: equal
ADAPTIVE_SHAPE = ("cutoffs", "div_value")  # and these, with the adaptive softmax
LAYER = re.compile(r"^(?:fwd|bwd|mlps)\.(\d+)\.")  # a PaddedEncoder parameter of layer i


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
    """The pipeline with its tokenizer and vocab blocks taken from the source run, its sizes checked.
    On resume they come from the run's own pipeline.yaml (which holds the source's): the source is not needed."""
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
    lm_cfg = open_source(lm, cfg.task)
    check_sizes(cfg, lm_cfg, lm)
    return inherit(cfg, lm_cfg, f"the LM run {lm}" if lm_cfg.task == "lm" else f"the run {lm}")


def open_source(lm: Path, task: str) -> config.Pipeline:
    """The source run's pipeline; a missing run, a task this one cannot start from or a run without
    weights is one line."""
    try:
        _, lm_cfg = rundir.open_run(lm)
    except UserError as e:
        raise UserError(f"model.init_from: {e}") from None
    allowed = task_class(task).transfer_from
    if lm_cfg.task not in allowed:
        what = " or ".join("a language model (task: lm)" if t == "lm" else f"a {t} run" for t in allowed)
        raise UserError(f"model.init_from {lm}: a {lm_cfg.task} run; task {task} starts from {what}")
    if not (lm / "model.safetensors").is_file():
        raise UserError(f"model.init_from {lm}: no model.safetensors (the run has not finished an epoch)")
    return lm_cfg


def _v(value: Any) -> str:
    """A value as YAML writes it: true, null, 128, [2000, 10000]."""
    return json.dumps(value)


def check_sizes(cfg: config.Pipeline, lm_cfg: config.Pipeline, lm: Path) -> None:
    """This model's embedding and recurrent layers have the source's sizes and cell (else one line naming both)."""
    m, src = cfg.model, lm_cfg.model
    from_lm = lm_cfg.task == "lm"
    there_run = "in the LM" if from_lm else "in that run"

    def same(here_key: str, here: Any, lm_key: str, there: Any) -> None:
        if here != there:
            raise UserError(f"model.init_from {lm}: {here_key} {_v(here)} here, {lm_key} {_v(there)} {there_run}")

    same("model.embedding.dim", m.embedding.dim, "model.embedding.dim", src.embedding.dim)
    if task_class(cfg.task).transfer == "all":
        keys = LM_SHAPE + (ADAPTIVE_SHAPE if m.softmax == "adaptive" else ())
        for k in keys:
            same(f"model.{k}", getattr(m, k), f"model.{k}", getattr(src, k))
        return
    if m.embedding.pretrained:
        raise UserError("model.embedding.pretrained: not with model.init_from (the embedding comes from that run)")
    if m.embedding.freeze:
        raise UserError(
            "model.embedding.freeze: not with model.init_from (train.unfreeze: gradual holds the embedding, "
            "the bottom layer group, until the last unfreezing epoch)"
        )
    enc = m.encoder
    if not from_lm:  # a classifier from a classifier: the same encoder (layers above its may start fresh)
        for k in ("cell", "hidden", "bidirectional", "separate_directions"):
            same(f"model.encoder.{k}", getattr(enc, k), f"model.encoder.{k}", getattr(src.encoder, k))
        if enc.layers < src.encoder.layers:
            raise UserError(
                f"model.init_from {lm}: model.encoder.layers {enc.layers} here, model.encoder.layers "
                f"{src.encoder.layers} in that run (the encoder takes all its layers; layers above them start fresh)"
            )
        return
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
        own = OWN.get(block, set())
        for key in sorted(given - TRUNCATION - own):
            if getattr(mine, key) != getattr(theirs, key):
                raise UserError(
                    f"{block}.{key}: {_v(getattr(mine, key))} here, {_v(getattr(theirs, key))} in {where} "
                    f"(model.init_from takes its tokenizer and vocabulary: leave the key out)"
                )
        update[block] = theirs.model_copy(update={k: getattr(mine, k) for k in (given & TRUNCATION) | own})
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


def _copy_embedding(weight: torch.Tensor, state: dict[str, torch.Tensor], src: Path, extend: bool) -> str:
    """The source's embedding rows into the first rows of `weight`; with vocab.extend the rows past
    them (the added words) start at the mean of the source's rows. Returns the note's phrase."""
    key = "embed.emb.weight"
    t = state.get(key)
    if extend and t is not None and weight.shape[0] > t.shape[0] and weight.shape[1:] == t.shape[1:]:
        n = t.shape[0]
        with torch.no_grad():  # weight: (vocab, dim); t: (n, dim), the source's vocabulary first
            weight[:n].copy_(t)
            weight[n:].copy_(t.mean(0))
        return f"the embedding ({n:,} rows; {weight.shape[0] - n:,} added words start at their mean)"
    _copy(weight, "the embedding", state, key, src)
    return "the embedding"


def load_into(model: nn.Module, cfg: config.Pipeline, labels: Optional[list[str]] = None) -> list[str]:
    """Copy the source run's weights into a new model; returns one-line notes on what was loaded.
    `labels`: a classifier's labels (a classify source's head is taken only where they are its labels)."""
    from textrnn.tasks.lm import LanguageModel

    lm = source(cfg)
    assert lm is not None
    path = lm / "model.safetensors"
    if isinstance(model, LanguageModel):
        rundir.load_weights(model, path)
        return [f"initialised from {lm}: every weight"]
    state = rundir.read_tensors(path)
    src_cfg = open_source(lm, cfg.task)
    emb: Any = getattr(model, "input_embed")  # an Embedding
    what_emb = _copy_embedding(emb.emb.weight, state, lm, cfg.vocab.extend is not None)
    if src_cfg.task == "classify":
        return _from_classifier(model, state, lm, labels, (cfg.model, src_cfg.model), what_emb)
    enc: Any = getattr(model, "encoder")  # a PaddedEncoder
    both = enc.bwd is not None and any(k.startswith("rnn_bw.") for k in state)
    taken = src_cfg.model.layers  # check_sizes: <= the encoder's layers; those above start fresh
    for i, f in enumerate(enc.fwd[:taken]):
        stacks = [(f, "fwd", "rnn")] + ([(enc.bwd[i], "bwd", "rnn_bw")] if both else [])
        for mod, here, there in stacks:
            for name, p in mod.named_parameters():
                _copy(p, f"encoder.{here}.{i}.{name}", state, f"{there}.{lm_name(name, i)}", lm)
    what = "both directions" if both else "forward"
    notes = [f"initialised from {lm}: {what_emb} and {taken} encoder layer(s), {what}"]
    notes += _fresh_layers(enc, taken, lm, "the LM's")
    if enc.bwd is not None and not both:
        notes.append(f"model.init_from {lm}: a one-direction LM: the encoder's backward layers start fresh")
    return notes


def _fresh_layers(enc: Any, taken: int, src: Path, whose: str) -> list[str]:
    """The note on encoder layers above the source's, which start fresh (none where there are none)."""
    if len(enc.fwd) <= taken:
        return []
    fresh = f"layer {taken + 1} starts" if len(enc.fwd) == taken + 1 else f"layers {taken + 1}-{len(enc.fwd)} start"
    return [f"model.init_from {src}: encoder {fresh} fresh (above {whose})"]


def _from_classifier(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    src: Path,
    labels: Optional[list[str]],
    blocks: tuple[Any, Any],
    what_emb: str,
) -> list[str]:
    """A classifier from a classify run, its embedding already copied (`what_emb` says how): encoder
    layers by name; pooling + head where the labels, the pooling (the model blocks here and there)
    and the head's shapes agree."""
    here, there = blocks
    enc: Any = getattr(model, "encoder")  # a PaddedEncoder; layers above the source's start fresh
    taken = there.encoder.layers  # check_sizes: <= this encoder's layers
    for name, p in enc.named_parameters():
        m = LAYER.match(name)
        if m is None or int(m[1]) < taken:
            _copy(p, f"encoder.{name}", state, f"encoder.{name}", src)
    notes = [f"initialised from {src}: {what_emb} and {taken} encoder layer(s)"]
    notes += _fresh_layers(enc, taken, src, "that run's")
    from textrnn.tasks.base import read_json

    theirs = read_json(src / "labels.json") if (src / "labels.json").is_file() else None
    top = {f"{part}.{n}": p for part in ("pool", "head") for n, p in getattr(model, part).named_parameters()}
    top_there = {k for k in state if k.startswith(("pool.", "head."))}
    if labels is not None and theirs != labels:
        why = f"labels {_v(labels)} here, {_v(theirs)} in that run"
    elif here.pooling != there.pooling:
        why = f"model.pooling {_v(here.pooling)} here, {_v(there.pooling)} in that run"
    elif set(top) != top_there or any(tuple(state[k].shape) != tuple(p.shape) for k, p in top.items()):
        why = "model.head has other sizes in that run"
    else:
        for k, p in top.items():
            _copy(p, k, state, k, src)
        return notes[:1] + [f"initialised from {src}: the pooling and the head (the same labels)"] + notes[1:]
    return notes + [f"model.init_from {src}: the head starts fresh ({why})"]
