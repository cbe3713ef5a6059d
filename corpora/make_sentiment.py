"""Build corpora/sentiment/ from the UCI "Sentiment Labelled Sentences" (CC BY 4.0; see README.md).

    python corpora/make_sentiment.py [SOURCE_DIR]    # default: ../shared/samples/sentiment-labelled-sentences

The 3,000 sentences (amazon, imdb, yelp; `sentence<TAB>0|1`) are stripped, deduplicated on their
lower-cased text (a sentence that occurs with both labels is dropped), and split 80 / 10 / 10 into
train / valid / test with a fixed seed, stratified by source and label, so that no sentence is in
two splits. The same input always gives the same files.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt", "yelp": "yelp_labelled.txt"}
LABELS = {"0": "negative", "1": "positive"}


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared/samples/sentiment-labelled-sentences"
    rows, seen, conflict = [], {}, set()
    for source, name in FILES.items():
        for line in (src / name).read_text(encoding="utf-8").splitlines():
            text, label = line.rsplit("\t", 1)
            text, key = " ".join(text.split()), " ".join(text.lower().split())
            if key in seen:
                if seen[key] != label:
                    conflict.add(key)
                continue
            seen[key] = label
            rows.append((text, LABELS[label.strip()], source, key))
    rows = [r for r in rows if r[3] not in conflict]
    rng = random.Random(2015)
    splits: dict[str, list] = {"train": [], "valid": [], "test": []}
    for source in FILES:
        for label in LABELS.values():
            group = [r for r in rows if r[2] == source and r[1] == label]
            rng.shuffle(group)
            n = len(group)
            cut1, cut2 = round(0.8 * n), round(0.9 * n)
            splits["train"] += group[:cut1]
            splits["valid"] += group[cut1:cut2]
            splits["test"] += group[cut2:]
    out = HERE / "sentiment"
    out.mkdir(exist_ok=True)
    for name, part in splits.items():
        rng.shuffle(part)
        (out / f"{name}.tsv").write_text(
            "text\tlabel\tsource\n" + "".join(f"{t}\t{lab}\t{s}\n" for t, lab, s, _ in part), encoding="utf-8"
        )
        print(f"{name}: {len(part)} sentences")
    print(f"dropped: {3000 - len(rows) - len(conflict)} duplicates, {len(conflict)} texts with both labels")


if __name__ == "__main__":
    main()
