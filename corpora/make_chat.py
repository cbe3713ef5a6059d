"""Build corpora/chat/ from chatterbot-corpus English (BSD-3-Clause; see README.md) for pipelines/chat.yaml.

    python corpora/make_chat.py [ENGLISH_DIR]    # default: the installed chatterbot_corpus package's english/

Writes chatterbot YAML (the format textrnn reads with `format: chatterbot`): `chat/train/chatterbot.yml`
and `chat/test.yml`. `chat/train/smalltalk.yml` and `chat/valid.yml` are ours, written by hand, and
not touched here. What changes from the package (1.3.3):

- `coding` (program listings) is left out; `tech_support` (1,050 conversations, 10 distinct) and
  every other repeated conversation is kept once.
- In `emotion` and `computers` a conversation lists alternative answers to its first turn
  ("You are arrogant" / "Arrogance is not one of my emotions." / "I have no real emotions, so
  how can I be arrogant?" / ...), not a dialogue: read as a chain, each answer would "reply" to
  the one before. Each answer becomes a two-turn conversation with the first turn. Elsewhere a
  list is a dialogue and stays one.
- test: the conversations whose first turn (lower-cased, without punctuation) falls in a fixed
  hash bucket of about 1 in 10, all answers to a question together; greetings are never drawn
  (there are 25 and all are needed). A test conversation with a turn that some train turn answers
  moves to train, so no message to reply to is in both splits (tests/test_samples.py checks it;
  short replies such as "Yes." may be in both).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
LEFT_OUT = {"coding"}
ALTERNATIVES = {"emotion", "computers"}  # a list = a question and its alternative answers
NEVER_TEST = {"greetings"}
TEST_BUCKETS = 10  # 1 in 10 questions


def key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def read(english: Path) -> list[tuple[str, list[str]]]:
    """(topic, turns) for every conversation kept, in file order, each once."""
    out, seen = [], set()
    for f in sorted(english.glob("*.yml")):
        if f.stem in LEFT_OUT:
            continue
        doc = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for conv in doc.get("conversations") or []:
            turns = [" ".join(str(t).split()) for t in conv if t is not None and str(t).strip()]
            if len(turns) < 2:
                continue
            convs = [[turns[0], a] for a in turns[1:]] if f.stem in ALTERNATIVES else [turns]
            for c in convs:
                if tuple(c) not in seen:
                    seen.add(tuple(c))
                    out.append((f.stem, c))
    return out


def split(convs: list[tuple[str, list[str]]]) -> tuple[list[list[str]], list[list[str]]]:
    """(train, test) conversations."""

    def bucket(text: str) -> int:
        return int(hashlib.md5(key(text).encode("utf-8")).hexdigest(), 16) % TEST_BUCKETS

    test = [c for topic, c in convs if topic not in NEVER_TEST and bucket(c[0]) == 0]
    train = [c for topic, c in convs if topic in NEVER_TEST or bucket(c[0]) != 0]
    train_contexts = {key(t) for c in train for t in c[:-1]}
    moved = [c for c in test if any(key(t) in train_contexts for t in c[:-1])]
    test = [c for c in test if c not in moved]
    return train + moved, test


def write(path: Path, convs: list[list[str]], what: str) -> None:
    head = (
        f"# {what}\n# From chatterbot-corpus 1.3.3 English (BSD-3-Clause, Copyright (c) 2017, Gunther Cox;\n"
        "# licence in corpora/chat/LICENSE-chatterbot-corpus), rearranged by corpora/make_chat.py.\n"
    )
    body = yaml.safe_dump(
        {"categories": ["chatterbot-corpus english"], "conversations": convs},
        allow_unicode=True,
        sort_keys=False,
        width=1000,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + body, encoding="utf-8")


def main() -> None:
    if len(sys.argv) > 1:
        english = Path(sys.argv[1])
    else:
        import chatterbot_corpus

        english = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    train, test = split(read(english))
    write(HERE / "chat/train/chatterbot.yml", train, "pipelines/chat.yaml's train split (with smalltalk.yml)")
    write(HERE / "chat/test.yml", test, "pipelines/chat.yaml's test split: questions that are in no other split")
    pairs = lambda cs: sum(len(c) - 1 for c in cs)  # noqa: E731
    print(f"train {len(train)} conversations ({pairs(train)} pairs), test {len(test)} ({pairs(test)} pairs)")


if __name__ == "__main__":
    main()
