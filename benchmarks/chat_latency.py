"""Chat reply latency: a conversation of the Python API (what the REPL and the server use) answering N messages.

    python benchmarks/chat_latency.py RUN MESSAGES_FILE [-n 100] [--threads 2] [--reset-every 4]

MESSAGES_FILE: one message per line (e.g. the first turns of held-out dialogues). Each reply is
timed from the message to the reply text (tokenize, encode, decode, detokenize), with the
history the REPL feeds back; the conversation is reset every `--reset-every` messages. Prints
JSON: median, p95, mean and max seconds, and the decoding settings used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import textrnn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("messages")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reset-every", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bot = textrnn.load(a.run, device="cpu")
    session, cfg = bot.session(), bot.pipeline
    msgs = [m.strip() for m in open(a.messages, encoding="utf-8") if m.strip()][: a.n]
    session.reply("hello")  # warm-up, not timed
    session.reset()
    times, replies = [], []
    for i, m in enumerate(msgs):
        if i and i % a.reset_every == 0:
            session.reset()
        t0 = time.perf_counter()
        replies.append(session.reply(m))
        times.append(time.perf_counter() - t0)
    times.sort()
    print(
        json.dumps(
            {
                "run": a.run,
                "pipeline": cfg.name,
                "messages": len(times),
                "threads": a.threads,
                "median_s": statistics.median(times),
                "p95_s": times[max(0, int(0.95 * len(times)) - 1)],
                "mean_s": statistics.fmean(times),
                "max_s": times[-1],
                "options": session.options,
                "examples": [[m, r] for m, r in list(zip(msgs, replies))[:5]],
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
