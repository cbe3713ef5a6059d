"""Writes the shipped sample sentiment corpus (our own text, CC0): `python corpora/make_samples.py`.

Sentences are composed from hand-written phrase lists with a fixed seed, so the files are
reproducible; each split draws from the same phrase lists but different combinations.
"""

import random
from pathlib import Path

POS_ADJ = ["an absolute delight", "a joy to watch", "wonderful", "brilliant", "charming and warm", "a triumph",
           "deeply moving", "funny and clever", "beautifully shot", "a real pleasure", "gripping from start to finish",
           "superb", "delightful", "heartfelt", "a little masterpiece", "fresh and inventive", "thoroughly enjoyable",
           "smart, tender and funny", "rich and rewarding", "a great ride", "lovely", "touching", "excellent",
           "uplifting", "magnificent", "witty", "engaging", "a gem", "stunning", "terrific"]
NEG_ADJ = ["a dull, lifeless mess", "boring", "a waste of time", "painfully slow", "clumsy and tired", "a disaster",
           "flat and lifeless", "tedious", "awful", "a chore to sit through", "utterly forgettable", "dreadful",
           "lazy and predictable", "a muddled mess", "stale", "poorly acted", "an ugly, joyless slog", "terrible",
           "badly written", "a dull disappointment", "lifeless", "bland", "unwatchable", "annoying", "shallow",
           "a mess", "pointless", "grating", "dull", "weak"]
SUBJ = ["the film", "this movie", "the story", "the cast", "the script", "the ending", "the director's new film",
        "the whole thing", "the sequel", "the performance", "this comedy", "the documentary", "the animation",
        "the soundtrack", "the second half", "this thriller", "the dialogue", "the lead actor", "the show",
        "the remake"]
POS_TAIL = ["and I loved every minute", "and I would happily see it again", "and the audience cheered",
            "and it stays with you", "and everyone should see it", "", "", "", "and it made me smile",
            "and the cast shines"]
NEG_TAIL = ["and I wanted my money back", "and I nearly fell asleep", "and the audience walked out",
            "and it goes nowhere", "and nobody should see it", "", "", "", "and it made me wince",
            "and the cast looks bored"]
POS_FULL = ["an absolute delight", "what a wonderful film", "I loved it", "a joy from the first scene to the last",
            "one of the best films of the year", "I could watch it again and again", "pure delight",
            "highly recommended", "a beautiful, moving story", "it was great fun"]
NEG_FULL = ["a dull, lifeless mess", "what a boring film", "I hated it", "a chore from the first scene to the last",
            "one of the worst films of the year", "I could not wait for it to end", "pure tedium",
            "not recommended", "an ugly, pointless story", "it was no fun at all"]


def sentence(rng, positive):
    if rng.random() < 0.2:
        return rng.choice(POS_FULL if positive else NEG_FULL)
    adj = rng.choice(POS_ADJ if positive else NEG_ADJ)
    tail = rng.choice(POS_TAIL if positive else NEG_TAIL)
    subj = rng.choice(SUBJ)
    verb = rng.choice(["is", "was", "feels", "turns out to be", "is simply"])
    s = f"{subj} {verb} {adj}"
    if tail:
        s += f", {tail}"
    return s[0].upper() + s[1:] + rng.choice([".", ".", "!"])


def write(path, n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        rows.append(f"{sentence(rng, positive)}\t{'positive' if positive else 'negative'}")
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    out = Path(__file__).parent / "sentiment"
    out.mkdir(exist_ok=True)
    write(out / "train.tsv", 800, 1)
    write(out / "valid.tsv", 150, 2)
    write(out / "test.tsv", 150, 3)
