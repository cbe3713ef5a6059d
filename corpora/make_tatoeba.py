"""Build corpora/lm/ and corpora/translation/ from Tatoeba English-French pairs (CC BY 2.0 FR; see README.md).

    python corpora/make_tatoeba.py [SOURCE_DIR]    # default: ../shared/corpora/translation/tatoeba-fra-eng

The shared copy has a train and a valid split (its test split is held out and never read here).
Samples are drawn with a fixed seed: the translation train split from the shared train split,
the translation valid and test splits from the shared valid split (halved by a hash of the English
side); pairs whose English or French sentence occurs in an earlier split are dropped, so no
sentence is in two splits. The language-model sample is the English side of each translation
split, each sentence once (everyday short sentences: "I'll be there in an hour.").
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"train": 20000, "valid": 1000, "test": 1000}


def _pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        en, fr = line.split("\t")[:2]
        en, fr = " ".join(en.split()), " ".join(fr.split())
        if en and fr:
            out.append((fr, en))
    return out


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared/corpora/translation/tatoeba-fra-eng"
    train_pool, other = _pairs(src / "fra-eng.train.tsv"), _pairs(src / "fra-eng.valid.tsv")
    half = lambda en: int(hashlib.md5(en.encode("utf-8")).hexdigest(), 16) % 2  # noqa: E731
    pools = {
        "train": train_pool,
        "valid": [p for p in other if half(p[1]) == 0],
        "test": [p for p in other if half(p[1]) == 1],
    }
    rng = random.Random(2017)
    seen_fr, seen_en, splits = set(), set(), {}
    for name in ("train", "valid", "test"):
        pool = list(pools[name])
        rng.shuffle(pool)
        keep = []
        for fr, en in pool:
            kf, ke = fr.lower(), en.lower()
            if kf in seen_fr or ke in seen_en:
                continue
            seen_fr.add(kf)
            seen_en.add(ke)
            keep.append((fr, en))
            if len(keep) == SIZES[name]:
                break
        splits[name] = keep
    (HERE / "translation").mkdir(exist_ok=True)
    (HERE / "lm").mkdir(exist_ok=True)
    for name, pairs in splits.items():
        (HERE / "translation" / f"{name}.fr").write_text("".join(f"{fr}\n" for fr, _ in pairs), encoding="utf-8")
        (HERE / "translation" / f"{name}.en").write_text("".join(f"{en}\n" for _, en in pairs), encoding="utf-8")
        (HERE / "lm" / f"{name}.txt").write_text("".join(f"{en}\n" for _, en in pairs), encoding="utf-8")
        print(f"{name}: {len(pairs)} pairs")


if __name__ == "__main__":
    main()
