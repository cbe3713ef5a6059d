"""What the chat sample says to ordinary messages: the replies of a run to a fixed list of inputs.

    python benchmarks/chat_sample.py [RUN] [--json]      # RUN defaults to runs/chat

Each message is sent twice: in a fresh conversation (`session.reset()` before it, as a first
message in the REPL) and in one conversation that goes through the whole list in order (what
`printf '...' | textrnn chat RUN` gives: the earlier turns are fed back as context when the
pipeline's `model.history` is above 1). Decoding uses the pipeline's `generate:` defaults.

`seen` says whether the message, lower-cased and without punctuation, is the first turn of a
pair in the run's training data (the valid part carved out of it is not counted): a reply to a
seen message is recall, not generalisation. The first list is the one in README.md ("## Chat",
judged there by hand); the second holds paraphrases that are in no training file. No automatic
"sensible" score: read the replies.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import torch

import textrnn

MESSAGES = [
    "Hi there!",
    "Hello",
    "Good morning",
    "How are you?",
    "What is your name?",
    "Who are you?",
    "Are you a robot?",
    "Do you like music?",
    "What do you like to eat?",
    "Tell me a joke",
    "What can you do?",
    "Thank you",
    "Bye",
    "What is AI?",
    "Do you like sports?",
]

# paraphrases of the same requests, written for this benchmark and kept out of every training file
PARAPHRASES = [
    "hey, how's it going?",
    "Good evening!",
    "what should I call you?",
    "are you a human or a machine?",
    "do you listen to songs?",
    "what is your favourite meal?",
    "can you make me laugh?",
    "thanks a lot",
    "see you tomorrow",
    "do you play football?",
]


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", nargs="?", default="runs/chat")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bot = textrnn.load(a.run, device="cpu")
    from textrnn.tasks.chat import TURN_BREAK, read_splits

    cfg = bot.pipeline
    train = read_splits(cfg.data, cfg.model.history, cfg.train.seed)["train"]
    seen = {norm(c.split(TURN_BREAK)[-1]) for c in train.src}

    out = {"run": a.run, "history": cfg.model.history, "generate": bot.settings().model_dump(), "lists": {}}
    t0 = time.perf_counter()
    for name, msgs in (("messages", MESSAGES), ("paraphrases", PARAPHRASES)):
        session, rows = bot.session(), []
        fresh = []
        for m in msgs:
            session.reset()
            fresh.append(session.reply(m))
        session.reset()
        for m, f in zip(msgs, fresh):
            rows.append({"message": m, "seen": norm(m) in seen, "fresh": f, "in_conversation": session.reply(m)})
        out["lists"][name] = rows
    out["seconds"] = round(time.perf_counter() - t0, 2)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{a.run}: history {out['history']}, beam {out['generate']['beam']}, alpha {out['generate']['alpha']}")
    for name, rows in out["lists"].items():
        print(f"\n| {name} | seen | reply (fresh) | reply (in one conversation) |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['message']} | {'yes' if r['seen'] else 'no'} | {r['fresh']} | {r['in_conversation']} |")


if __name__ == "__main__":
    main()
