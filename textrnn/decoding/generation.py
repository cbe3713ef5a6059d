"""Language-model generation: sampled continuations of a prompt and next-word completion.

Works on a language-model task (`textrnn.tasks.lm.LM`: tokenizer, vocabulary, data mode) and
its model; `textrnn.decoding.sampling` picks tokens. Completion returns whole words, also for subword
(sentencepiece) vocabularies, where a small beam over word pieces sums the probability of
each word.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Optional

import torch

from textrnn.decoding import sampling
from textrnn.errors import UserError


def select(state, rows: torch.Tensor):
    """Rows of the batch dimension of a state: h [L, B, H] -> [L, len(rows), H]."""
    return tuple(s[:, rows] for s in state) if isinstance(state, tuple) else state[:, rows]


def _start(task) -> int:
    """The first context token: <bos> for sentence models, <eos> (a line break) for stream models."""
    return task.vocab.bos if task.m.mode == "sentences" else task.vocab.eos


@torch.no_grad()
def read_prompt(task, model, prompt: str, device):
    """Run the prompt through the model: (state, logits of the next token [1, V])."""
    model.eval()
    ids = [_start(task)]
    if prompt.strip():
        toks = task.vocab.encode(task.tok.tokenize(prompt))
        if all(i == task.vocab.unk for i in toks):
            raise UserError(f"prompt {prompt!r}: none of its words is in the model's vocabulary")
        ids += toks
    logits, state = model(torch.tensor([ids], device=device))  # [1, T, V]
    return state, logits[:, -1].float()


def banned(task, logits: torch.Tensor) -> torch.Tensor:
    """Never produce padding, <bos> or <unk>: logits [N, V] with those set to -inf."""
    logits = logits.clone()
    logits[:, [task.vocab.pad, task.vocab.bos, task.vocab.unk]] = float("-inf")
    return logits


@torch.no_grad()
def generate(
    task,
    model,
    prompt: str,
    device,
    max_tokens: int = 50,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: Optional[int] = None,
    num: int = 1,
) -> list[str]:
    """`num` continuations of the prompt (without it), each until <eos> or `max_tokens` tokens."""
    sampling.check(temperature, top_k, top_p)
    if not isinstance(max_tokens, int) or max_tokens < 0:
        raise UserError(f"--max-tokens {max_tokens}: must be 0 or more")
    if not isinstance(num, int) or num < 1:
        raise UserError(f"--num {num}: must be 1 or more")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise UserError(f"--seed {seed}: must be a whole number from 0 to 2**63 - 1")
    gen = sampling.generator(seed)
    state, logits = read_prompt(task, model, prompt, device)
    rows = torch.zeros(num, dtype=torch.long, device=device)
    state = select(state, rows)  # [L, num, H]
    logits = logits[rows]  # [num, V]
    out: list[list[str]] = [[] for _ in range(num)]
    alive = torch.ones(num, dtype=torch.bool)
    eos = task.vocab.eos
    for _ in range(max_tokens):
        nxt = sampling.pick(banned(task, logits), temperature, top_k, top_p, gen)  # [num]
        for r in range(num):
            if alive[r]:
                if int(nxt[r]) == eos:
                    alive[r] = False
                else:
                    out[r].append(task.vocab.itos[int(nxt[r])])
        if not alive.any():
            break
        logits, state = model(nxt[:, None], state)  # [num, 1, V]
        logits = logits[:, -1].float()
    return [task.tok.detokenize(toks) for toks in out]


@torch.no_grad()
def complete(task, model, prompt: str, device, k: int = 5) -> list[tuple[str, float]]:
    """The k most likely next words with their probabilities (whole words for subword tokenizers)."""
    v = task.vocab
    specials = {v.pad, v.unk, v.bos, v.eos}
    n_words = len(v) - len(specials)
    if not isinstance(k, int) or k < 1 or k > n_words:
        raise UserError(f"-k {k}: must be between 1 and the vocabulary size ({n_words} words)")
    state, logits = read_prompt(task, model, prompt, device)
    if task.cfg.tokenizer.kind == "sentencepiece":
        return _complete_pieces(task, model, state, logits, k, device)
    probs = logits.softmax(-1)[0]  # [V]
    probs[list(specials)] = -1.0
    top = probs.topk(k)
    return [(v.itos[int(i)], float(p)) for p, i in zip(top.values, top.indices)]


def _complete_pieces(task, model, state, logits, k: int, device, width: int = 0, depth: int = 8):
    """Whole words from subword pieces: a word starts with a '▁' piece and ends before the next
    '▁' piece, punctuation or <eos>. P(word) = P(pieces) · P(a boundary next); a small beam over partial words."""
    width = width or max(4 * k, 20)
    vocab = task.vocab
    V = len(vocab)
    specials = torch.tensor([vocab.pad, vocab.unk, vocab.bos, vocab.eos])
    starts = torch.tensor([t.startswith("▁") and any(c.isalnum() for c in t) for t in vocab.itos])  # [V]
    starts[specials] = False
    cont = torch.tensor([not t.startswith("▁") and any(c.isalnum() for c in t) for t in vocab.itos])
    cont[specials] = False
    boundary = ~cont  # a new word, punctuation or <eos> ends the word
    boundary[[vocab.pad, vocab.unk, vocab.bos]] = False
    logp = logits.log_softmax(-1)[0].cpu()  # [V]
    first = logp.masked_fill(~starts, float("-inf")).topk(min(width, int(starts.sum())))
    beam = [([int(i)], float(lp)) for lp, i in zip(first.values, first.indices)]
    state = select(state, torch.zeros(len(beam), dtype=torch.long, device=device))
    done: dict[str, float] = defaultdict(float)
    for _ in range(depth):
        if not beam:
            break
        last = torch.tensor([[p[-1]] for p, _ in beam], device=device)  # [N, 1]
        out, state = model(last, state)
        nlp = out[:, -1].float().log_softmax(-1).cpu()  # [N, V]
        end = torch.logsumexp(nlp.masked_fill(~boundary, float("-inf")), -1)  # [N]
        for (pieces, lp), e in zip(beam, end):
            done[task.tok.detokenize(vocab.decode(pieces)).strip()] += math.exp(lp + float(e))
        floor = sorted(done.values(), reverse=True)[k - 1] if len(done) >= k else 0.0
        ext = nlp.masked_fill(~cont, float("-inf")) + torch.tensor([lp for _, lp in beam])[:, None]  # [N, V]
        top = ext.flatten().topk(min(width, ext.numel()))
        keep = [
            (int(f) // V, int(f) % V, float(x))
            for x, f in zip(top.values, top.indices)
            if math.isfinite(float(x)) and math.exp(float(x)) > floor
        ]
        beam = [(beam[r][0] + [i], x) for r, i, x in keep]
        state = select(state, torch.tensor([r for r, _, _ in keep], dtype=torch.long, device=device))
    best = sorted(done.items(), key=lambda kv: -kv[1])[:k]
    return [(w, p) for w, p in best]
