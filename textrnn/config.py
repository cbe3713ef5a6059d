"""Pipeline schema (pydantic), ${ENV} interpolation, --set overrides and one-line errors.

Where schemas live: every schema a pipeline file can hold is defined here, in this module: the
top-level sections (data, tokenizer, vocab, train), each task's `model:` block with its components
(Embedding, Encoder, Head, DecCfg) and each `generate:` block (LMGenerate, SearchCfg). Code that
reads settings imports their class from here (the task modules, search.py); none defines a schema of
its own. `MODEL_SCHEMAS` and `GENERATE_SCHEMAS` say which schema a task validates `model:` and
`generate:` with; the task classes themselves are listed by `textrnn.tasks` (its `__init__` imports
the task modules, whose decorators register them).
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from textrnn.errors import UserError

PATH_KEYS = {"path", "pretrained", "src", "tgt"}  # values resolved against the pipeline file's folder


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# bounds shared by every schema: a value outside them is a one-line error naming its key
Size = Annotated[int, Field(ge=1)]  # counts and sizes: 1 or more
Count = Annotated[int, Field(ge=0)]  # 0 or more
Seed = Annotated[int, Field(ge=0, lt=2**63)]
Rate = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # dropout, smoothing: [0, 1)
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]  # (0, 1]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class HubSource(Strict):
    name: str  # a dataset name on the hub, or a local folder saved with save_to_disk / a hub layout
    config: Optional[str] = None
    split: str = "train"


class Source(Strict):
    """One split: files (csv/tsv/jsonl/text/label_first, plain or .gz), one file per label, or the hub."""

    path: Union[str, list[str], None] = None
    files: Optional[dict[str, str]] = None  # label -> file, one example per line
    hub: Optional[HubSource] = None
    # label_first: "<label> <text>" lines; chatterbot / dailydialog / turns / pairs: dialogue formats (chat)
    format: Literal[
        "auto", "csv", "tsv", "jsonl", "text", "label_first", "chatterbot", "dailydialog", "turns", "pairs"
    ] = "auto"
    text: Union[str, int] = "text"  # column name, or position for csv/tsv without header
    label: Union[str, int, None] = "label"
    header: bool = True  # csv/tsv: first row names the columns
    encoding: str = "utf-8"
    limit: Optional[Size] = None  # keep only the first N examples
    src: Optional[str] = None  # parallel text: source-side file, one sentence per line (plain or .gz)
    tgt: Optional[str] = None  # parallel text: target-side file, line-aligned with src
    target: Union[str, int, None] = None  # parallel csv/tsv/jsonl `path:`: the target column (`text:` is the source)
    streaming: bool = False  # train split: read as a stream (datasets' IterableDataset), never loaded whole

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in ("path", "files", "hub", "src") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'path', 'files', 'hub' or 'src' + 'tgt'")
        if (self.src is None) != (self.tgt is None):
            raise ValueError("parallel text needs both 'src' and 'tgt'")
        return self


class Data(Strict):
    train: Source
    valid: Optional[Source] = None
    test: Optional[Source] = None
    valid_fraction: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = (
        0.1  # carved from train (fixed seed) when no valid split is declared
    )
    # the carve's seed (default: train.seed); fix it to train several seeds on one valid split (ensembles)
    valid_seed: Optional[Seed] = None
    label_names: dict[str, str] = {}  # raw label -> name shown to users, e.g. {"0": negative}
    stream_buffer: Size = 50000  # streaming: examples per shuffled, length-bucketed buffer
    stream_sample: Size = 100000  # streaming: examples the tokenizer is fitted on (the vocabulary counts them all)


class Tokenizer(Strict):
    kind: Literal["spacy", "sentencepiece", "whitespace", "char"] = "spacy"
    lang: str = "en"  # spacy.blank(lang)
    lower: bool = False
    max_length: Optional[Size] = None  # tokens kept per text (the first ones)
    strip_html: bool = False  # replace <br /> and other tags with a space
    model_type: Literal["unigram", "bpe"] = "unigram"  # sentencepiece
    vocab_size: Annotated[int, Field(ge=8)] = 8000  # sentencepiece
    character_coverage: Share = 1.0  # sentencepiece


class Vocab(Strict):
    min_freq: Size = 1
    max_size: Optional[Size] = None
    # a classifier with model.init_from: append the train split's words counted >= this many times
    # that the source run's vocabulary lacks; their embedding rows start at the mean of its rows (ULMFiT)
    extend: Optional[Size] = None


class Embedding(Strict):
    dim: Size = 128
    dropout: Rate = 0.0
    pretrained: Optional[str] = None  # word2vec / GloVe text file
    freeze: bool = False


# lstm / gru / rnn: PyTorch's fused cells; mingru / minlstm: parallel-scan cells (nn/mincells.py)
Cell = Literal["lstm", "gru", "rnn", "mingru", "minlstm"]
SCAN_CELLS = frozenset({"mingru", "minlstm"})  # no recurrent matrix: a scan over time, residual stacking
# chrono initialisation (Tallec & Ollivier 2018): the longest initial memory, in steps; gated cells only
Chrono = Annotated[int, Field(ge=2)]


def _check_chrono(cell: str, chrono: Optional[int]) -> None:
    if chrono is not None and cell == "rnn":
        raise ValueError("chrono: sets gate biases, and cell: rnn has no gates (use lstm, gru, mingru or minlstm)")


class Encoder(Strict):
    cell: Cell = "lstm"
    hidden: Size = 256
    layers: Size = 1
    bidirectional: bool = True
    dropout: Rate = 0.0  # between layers and on the encoder output
    impl: Literal["padded", "packed"] = "padded"  # same results; packed: one cuDNN call over PackedSequences
    # bidirectional, layers > 1: each direction's stack reads only its own layer below, the two top
    # layers' outputs concatenated (ELMo's layout; what a bidirectional LM's layers fit, docs/transfer.md)
    separate_directions: bool = False
    chrono: Optional[Chrono] = None  # gate biases spreading each unit's memory over 2..N steps (nn/chrono.py)
    # after each layer a residual MLP block, mlp x the layer's output wide: x + MLP(LayerNorm(x)) (nn/mlp.py)
    mlp: Optional[Size] = None

    @model_validator(mode="after")
    def _packed_needs_fused(self):
        _check_chrono(self.cell, self.chrono)
        if self.mlp is not None and self.impl == "packed":
            raise ValueError("mlp blocks sit between the layers; impl: packed runs all layers in one call (use padded)")
        if self.mlp is not None and self.separate_directions:
            raise ValueError("mlp blocks read both directions' outputs together; separate_directions needs mlp: null")
        if self.impl == "packed" and self.cell in SCAN_CELLS:
            raise ValueError(f"impl: packed runs cuDNN's fused cells (lstm, gru, rnn), not cell: {self.cell}")
        if self.impl == "packed" and self.separate_directions:
            raise ValueError("impl: packed stacks the directions together; separate_directions needs impl: padded")
        return self


class Optimizer(Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Positive = 1e-3
    weight_decay: NonNegative = 0.0
    momentum: Rate = 0.0  # sgd


class Schedule(Strict):
    kind: Literal["none", "plateau", "linear", "slanted"] = "none"
    factor: Share = 0.5  # plateau: lr *= factor
    patience: Count = 0  # plateau: epochs without gain before cutting
    decay_after: Optional[Size] = (
        None  # plateau: also cut at the end of this epoch and every later one (Zaremba et al.)
    )
    warmup_steps: Count = 0  # linear: warm up, then decay to 0 at the last step
    # slanted: Howard & Ruder's slanted triangular rates (ULMFiT): a linear rise over the first cut_frac
    # of all steps from lr / ratio to lr, then a linear fall back to lr / ratio at the last step
    cut_frac: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.1  # ULMFiT: 0.1
    ratio: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 32.0  # ULMFiT: 32


class Train(Strict):
    epochs: Size = 10
    batch_tokens: Optional[Size] = 4000  # token budget per batch (padded size)
    batch_size: Optional[Size] = None  # or a fixed number of examples
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = Schedule()
    clip: NonNegative = 5.0  # max gradient norm; 0 disables
    patience: Size = 3  # early stop after this many evaluations without gain
    seed: Seed = 1
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # auto: fp32 on CUDA (AMP slowed the shipped models on an H100), bf16 on CPUs that compute it
    # natively, else fp32; mixed: AMP, bf16 where the GPU has it, else fp16 with a gradient scaler
    precision: Literal["auto", "fp32", "bf16", "fp16", "mixed"] = "auto"
    checkpoint_every: Count = 200  # steps between last.pt checkpoints (and at each epoch end)
    threads: Optional[Size] = None  # torch CPU threads (default: torch's choice)
    max_minutes: Optional[Positive] = None  # stop (evaluate, keep the best) once training has run this long
    tensorboard: bool = False  # also log loss, valid metrics, learning rate and tokens/s to RUN/tensorboard/
    # fine-tuning (docs/transfer.md), on the model's layer groups (classify: embedding, each encoder
    # layer, pooling + head): each lower group's lr is the one above divided by this (ULMFiT: 2.6;
    # null or 1: one lr for all)
    discriminative: Optional[Annotated[float, Field(ge=1, allow_inf_nan=False)]] = None
    # gradual: epoch 1 trains the top group only, each later epoch one more (ULMFiT); none: all from the start
    unfreeze: Literal["none", "gradual"] = "none"
    # at the end: the element-wise mean of the last N epochs' weights (RUN/average.safetensors), kept as the
    # model when it scores better on valid than the best epoch; the last N epochs' weights wait in RUN/epochs/
    average_last: Optional[Size] = None
    # or the mean of the N epochs that scored best on valid (the train.select metric), wherever they fell:
    # what to average when early stopping ends a run after its best epochs (RUN/epochs/ keeps those N)
    average_best: Optional[Size] = None
    # the valid metric that picks the best epoch, drives early stopping and a plateau schedule
    # (null: the task's own; the choices per task: SELECT)
    select: Optional[str] = None
    # classify: each step also trains on the batch with every sentence's embedded tokens moved by this
    # fraction of their norm along the loss's gradient (Miyato et al. 2017; twice the step's cost)
    adversarial: Optional[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = None

    @model_validator(mode="before")
    @classmethod
    def _no_amp(cls, data):
        if isinstance(data, dict) and "amp" in data:
            use = "precision: mixed (AMP)" if data["amp"] is True else "nothing (precision: auto is the same)"
            raise ValueError(f"amp is gone (one key decides: precision); write {use}")
        return data

    @model_validator(mode="after")
    def _batch(self):
        if self.batch_size is None and self.batch_tokens is None:
            raise ValueError("give train.batch_tokens or train.batch_size")
        if self.average_last and self.average_best:
            raise ValueError("give train.average_last or train.average_best, not both (one average is kept)")
        return self


# ---------------------------------------------------------------- model: per task


class Head(Strict):
    """classify: the MLP on the pooled encoder output."""

    hidden: list[Size] = []  # sizes of the MLP's hidden layers
    dropout: Rate = 0.0


class ClassifyModel(Strict):
    # a language-model run directory (relative to the working directory, like `output:`): its
    # tokenizer, vocabulary, embedding and recurrent layers start this model; or a classify run:
    # those and, with the same labels and pooling, its head too (docs/transfer.md)
    init_from: Optional[str] = None
    embedding: Embedding = Embedding()
    encoder: Encoder = Encoder()
    # concat: ULMFiT's [last state, max, mean], 3x as wide into the head
    pooling: Literal["last", "mean", "max", "attention", "concat"] = "max"
    head: Head = Head()


class LMModel(Strict):
    init_from: Optional[str] = None  # an LM run with the same model: every weight, tokenizer and vocabulary from it
    embedding: Embedding = Embedding(dim=200)  # its dropout applies to the embeddings (the RNN's input)
    cell: Cell = "lstm"
    hidden: Size = 200
    layers: Size = 2
    dropout: Rate = 0.0  # between RNN layers
    output_dropout: Rate = 0.0  # on the top layer's outputs, before the softmax
    chrono: Optional[Chrono] = None  # gate biases spreading each unit's memory over 2..N steps (nn/chrono.py)
    tie_weights: bool = False  # softmax weights = embedding weights (a projection hidden → dim when they differ)
    softmax: Literal["full", "adaptive"] = "full"  # adaptive: Grave et al.'s adaptive softmax (large vocabularies)
    cutoffs: list[Size] = [2000, 10000]  # adaptive: frequency-ranked vocabulary cut into a head and tail clusters
    div_value: Positive = 4.0  # adaptive: each tail cluster's projection is this many times smaller
    init_range: Optional[Positive] = None  # uniform(-r, r) for every weight (Zaremba et al.: 0.1 small, 0.05 medium)
    mode: Literal["stream", "sentences"] = "stream"
    # forward and backward LSTM LMs sharing the embedding and the softmax (ELMo): `rnn` reads left to
    # right, `rnn_bw` right to left; loss and perplexity over both, reported per direction as well
    bidirectional: bool = False
    bptt: Size = 35  # stream: steps per truncated-BPTT window
    eval_batch: Size = 10  # stream: columns when evaluating

    @model_validator(mode="after")
    def _chrono_needs_gates(self):
        _check_chrono(self.cell, self.chrono)
        return self


class DecCfg(Strict):
    """translate / chat: the attentional decoder."""

    cell: Literal["lstm", "gru", "mingru", "minlstm"] = "lstm"
    hidden: Size = 512
    layers: Size = 1
    dropout: Rate = 0.2  # on RNN outputs, attentional vectors and between layers
    attention: Literal["dot", "general", "bahdanau"] = "general"  # dot/general: Luong; bahdanau: additive
    attn_dim: Count = 0  # bahdanau's hidden size (0 = decoder hidden)
    input_feeding: bool = False  # feed h~(t-1) back in: step-by-step training (slower on CPU)
    bridge: bool = True  # learned map from the encoder's final states to the decoder's initial state
    tie_output: bool = True  # output layer shares the decoder's input embedding
    chrono: Optional[Chrono] = None  # gate biases spreading each unit's memory over 2..N steps (nn/chrono.py)


class Seq2SeqModel(Strict):
    init_from: Optional[str] = None  # translate: an LM run's tokenizer, vocabulary, embedding and encoder (source side)
    embedding: Embedding = Embedding(dim=256)
    encoder: Encoder = Encoder(hidden=256, bidirectional=True)
    decoder: DecCfg = DecCfg()
    share_vocab: bool = True  # one vocabulary over both sides and one embedding matrix for encoder and decoder
    tokenizer_tgt: Optional[Tokenizer] = None  # target-side tokenizer (default: the pipeline's `tokenizer:`, joint)
    label_smoothing: Rate = 0.1


class ChatModel(Seq2SeqModel):
    history: Size = 2  # turns of context before each reply


# ---------------------------------------------------------------- generate: per task


class LMGenerate(Strict):
    """lm: `generate:` defaults in the pipeline (the CLI's options override them)."""

    max_tokens: Count = 50
    temperature: NonNegative = 1.0
    top_k: Count = 0
    top_p: Share = 1.0


class SearchCfg(Strict):
    """translate / chat: decoding settings (the pipeline's `generate:` section; CLI options, the REPL's
    /set and the Python API override them, all validated here; the search is textrnn.decoding.search)."""

    beam: Size = 5  # 1 = greedy
    alpha: NonNegative = 0.6  # length penalty ((5 + len) / 6) ** alpha; 0 = raw log-probability
    max_ratio: NonNegative = 1.5  # max output length = max_ratio × source length + max_extra
    max_extra: Count = 10
    n_best: Size = 1  # hypotheses returned per input (≤ beam)
    block_ngram: Count = 0  # never repeat an n-gram of this size (0 = off)
    min_length: Count = 0  # <eos> forbidden before this many tokens
    repetition_penalty: Positive = 1.0  # > 1: a token already in the output loses log(penalty)
    temperature: NonNegative = 0.0  # > 0: sample (beam is not used); 0: most probable token
    top_k: Count = 0  # sampling: keep the k most probable tokens (0 = all)
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0  # sampling: keep the smallest set holding this much probability
    seed: Optional[Seed] = None  # sampling: same seed, same output
    batch_tokens: Size = 6000  # decoding batch: source tokens × beam


# ---------------------------------------------------------------- the pipeline

TaskName = Literal["classify", "lm", "translate", "chat"]

# the schema that validates `model:` for each task (Pipeline.model holds an instance of it after validate())
MODEL_SCHEMAS: dict[str, type[Strict]] = {
    "classify": ClassifyModel,
    "lm": LMModel,
    "translate": Seq2SeqModel,
    "chat": ChatModel,
}
# train.select: the valid metrics each task can pick its best epoch by (True: higher is better); the first is
# the default (classify: accuracy; translate: greedy BLEU, degenerate when valid sentences are 1-3 words long)
SELECT: dict[str, dict[str, bool]] = {
    "classify": {"accuracy": True, "macro_f1": True, "loss": False},
    "lm": {"perplexity": False, "loss": False},
    "translate": {"bleu": True, "chrf": True, "perplexity": False, "loss": False},
    "chat": {"perplexity": False, "loss": False, "bleu": True},
}
# the schema of `generate:` for each task that generates text (a classify pipeline has no such section)
GENERATE_SCHEMAS: dict[str, type[Strict]] = {"lm": LMGenerate, "translate": SearchCfg, "chat": SearchCfg}


class Pipeline(Strict):
    name: str
    task: TaskName = "classify"
    data: Data
    tokenizer: Tokenizer = Tokenizer()
    vocab: Vocab = Vocab()
    model: Any = {}  # a mapping; validate() makes it a MODEL_SCHEMAS[task] instance (tasks read it typed: task.m)
    train: Train = Train()
    generate: dict[str, Any] = {}  # decoding defaults for tasks that generate text (validated by the task)
    output: Optional[str] = None  # run directory (default runs/<name>)

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not re.fullmatch(r"[\w.-]+", v) or v in (".", ".."):
            raise ValueError("one folder name: letters, digits, '.', '_' or '-' (not '.' or '..')")
        return v


# ---------------------------------------------------------------- loading

_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value: Any, where: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m):
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise UserError(f"{where}: environment variable {var} is not set (write ${{{var}:-default}} for a default)")

        return _ENV.sub(sub, value)
    return value


def apply_set(raw: dict, assignment: str, base: Path | None = None) -> None:
    """Apply one `key.sub=value` override (value parsed as YAML) to the raw tree."""
    if "=" not in assignment:
        raise UserError(f"--set {assignment!r}: expected key.sub=value")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    apply_value(raw, key, value, base)


def apply_value(raw: dict, key: str, value: Any, base: Path | None = None) -> None:
    """Set `key.sub` to a value in the raw tree; a relative path value is resolved against `base`."""
    parts = key.strip().split(".")
    if not all(parts):
        raise UserError(f"override {key!r}: expected a dotted key such as train.epochs")
    node = raw
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    if parts[-1] in PATH_KEYS and isinstance(value, str) and base is not None and not os.path.isabs(value):
        value = str((base / value).resolve())
    elif isinstance(value, (dict, list)) and base is not None:
        value = _resolve_paths({parts[-1]: value}, base)[parts[-1]]  # paths inside a mapping, as in a YAML file
    node[parts[-1]] = value


def _resolve_paths(node: Any, base: Path) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in PATH_KEYS and isinstance(v, str):
                v = _abs(v, base)
            elif k in PATH_KEYS and isinstance(v, list):
                v = [_abs(x, base) if isinstance(x, str) else x for x in v]
            elif k == "files" and isinstance(v, dict):
                v = {lab: _abs(p, base) if isinstance(p, str) else p for lab, p in v.items()}
            elif k == "hub" and isinstance(v, dict) and isinstance(v.get("name"), str):
                # a local dataset folder is resolved like a path; a hub name stays as it is
                cand = base / v["name"]
                v = dict(v, name=str(cand.resolve())) if cand.exists() else v
            else:
                v = _resolve_paths(v, base)
            out[k] = v
        return out
    if isinstance(node, list):
        return [_resolve_paths(v, base) for v in node]
    return node


def _abs(p: str, base: Path) -> str:
    return p if os.path.isabs(p) else str((base / p).resolve())


def _submodel(cls: Any) -> Any:
    """The BaseModel class inside an annotation like Optional[X], list[X], dict[str, X]."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return cls
    for arg in typing.get_args(cls):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        if not isinstance(part, str) or cls is None or part not in cls.model_fields:
            continue
        cls = _submodel(cls.model_fields[part].annotation)
    return list(cls.model_fields) if cls is not None else []


def explain(err: ValidationError, cls: type[BaseModel], origin: str, prefix: tuple = ()) -> str:
    """One line for the first validation error: file, dotted key, what is wrong."""
    e = err.errors()[0]
    rel = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
    loc = prefix + rel
    key = ".".join(str(p) for p in loc)
    if e["type"] == "extra_forbidden":
        valid = _fields_at(cls, rel[:-1])
        near = difflib.get_close_matches(str(rel[-1]), valid, n=1)
        hint = f" (did you mean '{'.'.join(str(p) for p in loc[:-1] + (near[0],))}'?)" if near else ""
        return f"{origin}: unknown key '{key}'{hint}"
    if e["type"] == "missing":
        return f"{origin}: missing key '{key}'"
    got = e.get("input")
    got_s = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    msg = e["msg"].removeprefix("Value error, ")
    return f"{origin}: {key or 'pipeline'}: {msg}{got_s}"


def upgrade_saved(raw: dict) -> dict:
    """A run directory's pipeline.yaml written by an earlier textrnn, in today's keys (the file stays as it is).

    train.amp (every run saved it) was folded into train.precision: amp true + auto became mixed.
    """
    train = raw.get("train")
    if isinstance(train, dict) and "amp" in train:
        if train.pop("amp") is True and train.get("precision", "auto") == "auto":
            train["precision"] = "mixed"
    return raw


def validate(raw: Any, origin: str) -> Pipeline:
    """Validate the whole pipeline, then `model:` with the schema of the declared task."""
    if not isinstance(raw, dict):
        raise UserError(f"{origin}: expected a mapping of keys at the top level")
    try:
        cfg = Pipeline.model_validate(raw)
    except ValidationError as err:
        raise UserError(explain(err, Pipeline, origin)) from None
    schema = MODEL_SCHEMAS[cfg.task]
    if not isinstance(cfg.model, dict):
        raise UserError(f"{origin}: model: expected a mapping of keys")
    try:
        model = schema.model_validate(cfg.model)
    except ValidationError as err:
        raise UserError(explain(err, schema, origin, prefix=("model",))) from None
    gen = GENERATE_SCHEMAS.get(cfg.task)
    if cfg.generate and gen is None:
        raise UserError(f"{origin}: generate: a {cfg.task} pipeline generates no text (remove the section)")
    if gen is not None:
        try:
            gen.model_validate(cfg.generate)
        except ValidationError as err:
            raise UserError(explain(err, gen, origin, prefix=("generate",))) from None
    if cfg.vocab.extend is not None:
        if cfg.task != "classify":
            raise UserError(
                f"{origin}: vocab.extend: for a classify pipeline with model.init_from "
                f"(a {cfg.task} model's vocabulary also shapes its output layer)"
            )
        if not getattr(model, "init_from", None):
            raise UserError(
                f"{origin}: vocab.extend: only with model.init_from (it adds the train split's words to "
                f"that run's vocabulary; without it vocab.min_freq and vocab.max_size build the vocabulary)"
            )
    if cfg.train.adversarial is not None and cfg.task != "classify":
        raise UserError(
            f"{origin}: train.adversarial: only a classify pipeline trains adversarially (this one is {cfg.task})"
        )
    select = cfg.train.select
    if select is not None and select not in SELECT[cfg.task]:
        raise UserError(
            f"{origin}: train.select: {select!r} is no valid metric of a {cfg.task} pipeline "
            f"(choose {' | '.join(SELECT[cfg.task])})"
        )
    return cfg.model_copy(update={"model": model})


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such pipeline file")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{line} invalid YAML: {getattr(e, 'problem', e)}") from None


def load(
    path: str | Path, overrides: Sequence[str] = (), cwd: Path | None = None, values: dict[str, Any] | None = None
) -> Pipeline:
    """Read a pipeline YAML: interpolate ${ENV}, resolve relative paths, apply --set (then `values`:
    {"train.epochs": 3}, already typed), validate."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level")
    raw = interpolate(raw)
    raw = _resolve_paths(raw, path.resolve().parent)
    for a in overrides:
        apply_set(raw, interpolate(a), cwd or Path.cwd())
    for key, value in (values or {}).items():
        if not isinstance(key, str):
            raise UserError(f"overrides: keys are dotted names such as 'train.epochs', not {key!r}")
        apply_value(raw, key, value, cwd or Path.cwd())
    return validate(raw, str(path))


def dump(cfg: Pipeline) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
