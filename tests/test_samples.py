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
