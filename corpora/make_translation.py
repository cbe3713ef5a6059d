"""Writes the shipped sample German→English corpus (our own text, CC0): `python corpora/make_translation.py`.

Sentence pairs are composed from hand-written phrase tables with a fixed seed: statements,
negations, questions and a fronted time adverb (German verb-second word order), so the model
has to learn agreement, do-support and some reordering. No pair occurs in two splits.
"""

import random
from pathlib import Path

# (German, English, person): person picks the verb form
SUBJECTS = [
    ("der Mann", "the man", "3s"), ("die Frau", "the woman", "3s"), ("das Kind", "the child", "3s"),
    ("der Junge", "the boy", "3s"), ("das Mädchen", "the girl", "3s"), ("mein Bruder", "my brother", "3s"),
    ("meine Schwester", "my sister", "3s"), ("der Lehrer", "the teacher", "3s"), ("die Ärztin", "the doctor", "3s"),
    ("unser Nachbar", "our neighbour", "3s"), ("ich", "I", "1s"), ("du", "you", "2s"), ("wir", "we", "1p"),
    ("die Kinder", "the children", "3p"), ("meine Eltern", "my parents", "3p"), ("die Studenten", "the students", "3p"),
]
# German forms for 1s, 2s, 3s, plural; English base form, 3rd singular; objects (German accusative, English)
VERBS = [
    (("lese", "liest", "liest", "lesen"), ("read", "reads"),
     [("ein Buch", "a book"), ("die Zeitung", "the newspaper"), ("einen Brief", "a letter"), ("das Buch", "the book")]),
    (("esse", "isst", "isst", "essen"), ("eat", "eats"),
     [("einen Apfel", "an apple"), ("das Brot", "the bread"), ("eine Suppe", "a soup"), ("den Kuchen", "the cake")]),
    (("trinke", "trinkst", "trinkt", "trinken"), ("drink", "drinks"),
     [("Wasser", "water"), ("einen Kaffee", "a coffee"), ("den Tee", "the tea"), ("Milch", "milk")]),
    (("sehe", "siehst", "sieht", "sehen"), ("see", "sees"),
     [("den Hund", "the dog"), ("das Haus", "the house"), ("einen Vogel", "a bird"), ("die Katze", "the cat")]),
    (("kaufe", "kaufst", "kauft", "kaufen"), ("buy", "buys"),
     [("ein Auto", "a car"), ("Blumen", "flowers"), ("ein neues Fahrrad", "a new bicycle"), ("den Tisch", "the table")]),
    (("schreibe", "schreibst", "schreibt", "schreiben"), ("write", "writes"),
     [("einen Brief", "a letter"), ("ein Gedicht", "a poem"), ("eine Geschichte", "a story")]),
    (("suche", "suchst", "sucht", "suchen"), ("look for", "looks for"),
     [("den Schlüssel", "the key"), ("die Katze", "the cat"), ("ein Zimmer", "a room")]),
]
INTRANSITIVE = [
    (("schlafe", "schläfst", "schläft", "schlafen"), ("sleep", "sleeps")),
    (("arbeite", "arbeitest", "arbeitet", "arbeiten"), ("work", "works")),
    (("spiele", "spielst", "spielt", "spielen"), ("play", "plays")),
    (("singe", "singst", "singt", "singen"), ("sing", "sings")),
    (("warte", "wartest", "wartet", "warten"), ("wait", "waits")),
]
PLACES = [("im Park", "in the park"), ("in der Küche", "in the kitchen"), ("am Bahnhof", "at the station"),
          ("zu Hause", "at home"), ("in der Schule", "at school"), ("im Garten", "in the garden"),
          ("in der Stadt", "in the city"), ("", ""), ("", "")]
TIMES = [("heute", "today"), ("jetzt", "now"), ("am Abend", "in the evening"), ("am Morgen", "in the morning")]
SLOT = {"1s": 0, "2s": 1, "3s": 2, "1p": 3, "3p": 3}


def pair(rng):
    de_s, en_s, p = rng.choice(SUBJECTS)
    if rng.random() < 0.7:
        de_v, en_v, objs = rng.choice(VERBS)
        de_o, en_o = rng.choice(objs)
    else:
        (de_v, en_v), de_o, en_o = rng.choice(INTRANSITIVE), "", ""
    dv, third = de_v[SLOT[p]], p == "3s"
    de_pl, en_pl = rng.choice(PLACES)
    kind = rng.choices(["plain", "time", "neg", "question"], [4, 2, 2, 2])[0]
    rest_de = " ".join(x for x in (de_o, de_pl) if x)
    rest_en = " ".join(x for x in (en_o, en_pl) if x)
    cap = lambda s: s[0].upper() + s[1:]  # noqa: E731
    if kind == "question":
        de = f"{dv} {de_s} {rest_de}".strip() + "?"
        en = f"{'does' if third else 'do'} {en_s} {en_v[0]} {rest_en}".strip() + "?"
    elif kind == "neg":
        # German: nicht after a definite object, "kein-" is avoided by using only definite / no objects
        if de_o and not de_o.split()[0] in ("der", "die", "das", "den"):
            de_o, en_o = "", ""
            rest_de, rest_en = de_pl, en_pl
        de = " ".join(x for x in (de_s, dv, de_o, "nicht", de_pl) if x) + "."
        en = " ".join(x for x in (en_s, "does not" if third else "do not", en_v[0], en_o, en_pl) if x) + "."
    elif kind == "time":
        de_t, en_t = rng.choice(TIMES)
        de = f"{de_t} {dv} {de_s} {rest_de}".strip() + "."
        en = f"{en_t} {en_s} {en_v[1] if third else en_v[0]} {rest_en}".strip() + "."
    else:
        de = f"{de_s} {dv} {rest_de}".strip() + "."
        en = f"{en_s} {en_v[1] if third else en_v[0]} {rest_en}".strip() + "."
    return cap(de.replace("  ", " ")), cap(en.replace("  ", " "))


def main():
    out = Path(__file__).parent / "translation"
    out.mkdir(exist_ok=True)
    rng, seen = random.Random(7), set()
    for split, n in (("train", 1500), ("valid", 150), ("test", 150)):
        pairs = []
        while len(pairs) < n:
            p = pair(rng)
            if p not in seen:
                seen.add(p)
                pairs.append(p)
        (out / f"{split}.de").write_text("".join(d + "\n" for d, _ in pairs), encoding="utf-8")
        (out / f"{split}.en").write_text("".join(e + "\n" for _, e in pairs), encoding="utf-8")


if __name__ == "__main__":
    main()
