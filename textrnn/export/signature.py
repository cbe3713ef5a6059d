"""signature.json: what a program without torch needs to feed the graphs: tokenization as steps, the
vocabulary files, the special ids, the labels, how to decode."""

from __future__ import annotations

import shutil
from pathlib import Path

SPLIT = {  # tokens of a normalised text, as textrnn's tokenizers make them
    "whitespace": "tokens = text.split()",
    "char": "tokens = list(text)",
    "spacy": "tokens = [t.text for t in spacy.blank(lang).tokenizer(text) if not t.is_space]",
    "sentencepiece": "tokens = sentencepiece.SentencePieceProcessor(model_file=model).encode(text, out_type=str)",
}


def tokenizer(tok, vocab: str, max_length, folder: str = "") -> dict:
    """How texts become ids for one side: settings and the steps in order (Python); the first
    `max_length` tokens are kept."""
    c = tok.cfg
    info = {"kind": c.kind, "lower": c.lower, "strip_html": c.strip_html, "max_length": max_length, "vocab": vocab}
    if c.kind == "spacy":
        info["lang"] = c.lang
    if c.kind == "sentencepiece":
        info["model"] = f"{folder}{tok.FILE}"
    steps = ["text = re.sub(r'<[^>]+>', ' ', text)"] if c.strip_html else []
    steps += ["text = text.lower()"] if c.lower else []
    steps.append(SPLIT[c.kind])
    if max_length:
        steps.append(f"tokens = tokens[:{max_length}]")
    steps.append(f'ids = [stoi.get(t, unk) for t in tokens]  # stoi: {{token: index}} of {vocab}\'s "itos" list')
    info["steps"] = steps
    return info


JOIN = {  # text of output tokens, as textrnn's tokenizers detokenize
    "whitespace": "text = ' '.join(tokens)",
    "char": "text = ''.join(tokens)",
    "spacy": "text = re.sub(r\" ([.,!?;:%)\\]}]|n't|'s|'re|'ve|'ll|'d|'m)\", r'\\1', "
    "re.sub(r'([(\\[{]) ', r'\\1', ' '.join(tokens)))",
    "sentencepiece": "text = sentencepiece.SentencePieceProcessor(model_file=model).decode_pieces(tokens)",
}


def detokenizer(tok, vocab: str, folder: str = "") -> dict:
    """How output ids become text (the target side of translation and chat)."""
    c = tok.cfg
    info = {"kind": c.kind, "vocab": vocab}
    if c.kind == "sentencepiece":
        info["model"] = f"{folder}{tok.FILE}"
    info["steps"] = [f"tokens = [itos[i] for i in ids]  # itos: {vocab}'s list; ids without bos and eos", JOIN[c.kind]]
    return info


def text_files(task) -> list[str]:
    """The run's files that tokenize and numericalize: vocabularies and sentencepiece models."""
    names = ["vocab.json"]
    if task.tok.cfg.kind == "sentencepiece":
        names.append(task.tok.FILE)
    tgt = getattr(task, "tok_tgt", task.tok)
    if tgt is not task.tok and tgt.cfg.kind == "sentencepiece":
        names.append(f"target/{tgt.FILE}")
    if getattr(task, "vocab_tgt", task.vocab) is not task.vocab:
        names.append("vocab_tgt.json")
    return names


def copy_files(run: Path, names: list[str], folder: Path) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / name, folder / name)


def specials(vocab) -> dict:
    return {"pad": vocab.pad, "unk": vocab.unk, "bos": vocab.bos, "eos": vocab.eos}


def task_fields(loaded) -> dict:
    """The task's part of the signature: tokenization, special ids, labels or decoding (each task's
    `export_fields` picks one of the functions below)."""
    return loaded.task.export_fields()


def classify_fields(task) -> dict:
    return {
        "tokenizer": tokenizer(task.tok, "vocab.json", task.tok.cfg.max_length),
        "specials": specials(task.vocab),
        "labels": list(task.labels),
        "usage": "probs[i] are the labels' probabilities; a text with no tokens is read as [unk]; "
        "pad the batch with pad after each text's length",
    }


BIDIRECTIONAL = "; the graph is the forward (left-to-right) LM of a bidirectional run (its backward LM is not exported)"


def lm_fields(task) -> dict:
    start = task.vocab.bos if task.m.mode == "sentences" else task.vocab.eos
    return {
        "tokenizer": tokenizer(task.tok, "vocab.json", task.tok.cfg.max_length),
        "specials": specials(task.vocab),
        "mode": task.m.mode,
        "start_id": start,
        "usage": "h (and c) start as zeros; feed [start_id] + the text's ids (all rows of a batch the same "
        "length, or one token at a time), then each chosen id with the returned h_new (c_new); "
        "log_probs is over the next token" + (BIDIRECTIONAL if task.m.bidirectional else ""),
    }


def seq2seq_fields(task, max_length) -> dict:
    """Translation (and chat): the source side's tokenization (its first `max_length` tokens kept), the
    target side's detokenization, the decoding settings."""
    tgt_folder = "" if task.tok_tgt is task.tok else "target/"
    tgt_vocab = "vocab.json" if task.vocab_tgt is task.vocab else "vocab_tgt.json"
    return {
        "tokenizer": tokenizer(task.tok, "vocab.json", max_length),
        "specials": specials(task.vocab),
        "target": {
            "detokenizer": detokenizer(task.tok_tgt, tgt_vocab, tgt_folder),
            "specials": specials(task.vocab_tgt),
        },
        "generate": task.search.model_dump(),  # the pipeline's search settings, as textrnn decodes
        "usage": "encoder.onnx once per source batch (a text with no tokens is read as [unk]); then "
        "decoder.onnx per step from y = target bos, feeding back h/c/feed (the *_new outputs) with "
        "memory, keys and mask, until target eos; for a beam, repeat the encoder's rows per "
        "hypothesis; log_probs is over the target vocabulary",
    }


def chat_fields(task) -> dict:
    """seq2seq_fields with a context: turns are tokenized whole and the joined context is cut instead."""
    history = task.m.history
    return {
        **seq2seq_fields(task, None),
        "context": {
            "history": history,
            "sep_id": task.vocab.stoi["<sep>"],
            "how": f"the last {history} turns, each tokenized alone (no truncation), "
            f"joined with sep_id, then the last {task.max_src} ids kept",
        },
    }
