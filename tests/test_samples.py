"""The shipped sample corpora: no sentence in two splits, the documented sizes and labels."""

import csv

from helpers import ROOT


def _rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_sentiment_sample_splits_are_disjoint_and_balanced():
    splits = {s: _rows(ROOT / "corpora/sentiment" / f"{s}.tsv") for s in ("train", "valid", "test")}
    assert {s: len(r) for s, r in splits.items()} == {"train": 2382, "valid": 298, "test": 298}
    keys = {s: {" ".join(r["text"].lower().split()) for r in rows} for s, rows in splits.items()}
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
    for rows in splits.values():
        assert {r["label"] for r in rows} == {"negative", "positive"} and {r["source"] for r in rows} == {
            "amazon",
            "imdb",
            "yelp",
        }
        assert abs(sum(r["label"] == "positive" for r in rows) / len(rows) - 0.5) < 0.02
        assert all(r["text"].strip() for r in rows)
    assert "CC BY 4.0" in (ROOT / "corpora/README.md").read_text(encoding="utf-8")


def test_tatoeba_samples_are_aligned_and_disjoint():
    d = ROOT / "corpora/translation"
    sizes = {"train": 20000, "valid": 1000, "test": 1000}
    fr = {s: (d / f"{s}.fr").read_text(encoding="utf-8").splitlines() for s in sizes}
    en = {s: (d / f"{s}.en").read_text(encoding="utf-8").splitlines() for s in sizes}
    lm = {s: (ROOT / "corpora/lm" / f"{s}.txt").read_text(encoding="utf-8").splitlines() for s in sizes}
    for s, n in sizes.items():
        assert len(fr[s]) == len(en[s]) == n and lm[s] == en[s] and all(fr[s]) and all(en[s])
    for side in (fr, en):
        keys = {s: {t.lower() for t in side[s]} for s in sizes}
        assert (
            not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
        )
    assert "CC BY 2.0 FR" in (ROOT / "corpora/README.md").read_text(encoding="utf-8")


def _make_chat():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_chat", ROOT / "corpora/make_chat.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_chat_sample_splits_share_no_message_and_are_licensed():
    from textrnn.data import dialogue

    key = _make_chat().key
    d = ROOT / "corpora/chat"
    splits = {
        s: dialogue.read("chatterbot", str(d / p))
        for s, p in (("train", "train"), ("valid", "valid.yml"), ("test", "test.yml"))
    }
    pairs = {s: sum(len(c) - 1 for c in convs) for s, convs in splits.items()}
    assert pairs["train"] > 1000 and pairs["valid"] >= 50 and pairs["test"] >= 50
    # a message answered in one split is answered in no other (a short reply such as "Yes." may recur)
    msgs = {s: {key(t) for c in convs for t in c[:-1]} for s, convs in splits.items()}
    assert not msgs["train"] & msgs["valid"] and not msgs["train"] & msgs["test"] and not msgs["valid"] & msgs["test"]
    assert all(len(c) >= 2 and all(t.strip() for t in c) for convs in splits.values() for c in convs)
    assert "BSD" in (ROOT / "corpora/README.md").read_text(encoding="utf-8")
    assert "Gunther Cox" in (d / "LICENSE-chatterbot-corpus").read_text(encoding="utf-8")


def test_make_chat_reads_alternatives_drops_repeats_and_listings(tmp_path):
    from helpers import write

    mc = _make_chat()
    conv = "conversations:\n"
    write(tmp_path / "emotion.yml", conv + "- - You are sad\n  - I am not.\n  - Software cannot be sad.\n")
    write(tmp_path / "greetings.yml", conv + "- - Hello\n  - Hi\n  - How are you?\n  - Fine.\n")
    write(tmp_path / "tech_support.yml", conv + "- - It is broken.\n  - Restart it.\n" * 3)
    write(tmp_path / "coding.yml", conv + "- - Write a loop\n  - 'for x in y: pass'\n")
    convs = mc.read(tmp_path)
    assert [c for _, c in convs] == [
        ["You are sad", "I am not."],  # alternatives: each answer replies to the first turn
        ["You are sad", "Software cannot be sad."],
        ["Hello", "Hi", "How are you?", "Fine."],  # elsewhere a list is a dialogue
        ["It is broken.", "Restart it."],  # kept once; coding left out
    ]
    many = [("psychology", [f"question {i}?", "An answer."]) for i in range(200)] + [("greetings", ["Hey", "Hi"])]
    many += [("psychology", ["question 7?", "Another answer."])]
    train, test = mc.split(many)
    assert 5 < len(test) < 40 and ["Hey", "Hi"] in train  # about 1 in 10; greetings always train
    assert not {mc.key(c[0]) for c in train} & {mc.key(c[0]) for c in test}  # all answers to a question together
