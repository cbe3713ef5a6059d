"""Writes the shipped sample language-model corpus (our own text, CC0): `python corpora/make_lm_sample.py`.

Short everyday messages, the kind typed on a phone keyboard, composed from hand-written phrase
lists with a fixed seed: one message per line in corpora/lm/{train,valid,test}.txt.
"""

import random
from pathlib import Path

TIMES = ["five minutes", "ten minutes", "twenty minutes", "half an hour", "an hour", "a minute", "a few minutes",
         "a bit", "two hours", "fifteen minutes"]
CLOCK = ["six", "seven", "eight", "nine", "ten", "noon", "half past six", "quarter to eight", "seven thirty"]
PLACES = ["the station", "the office", "the cafe", "the park", "the cinema", "home", "the shop", "the gym",
          "your place", "the restaurant", "the airport", "school"]
DAYS = ["tomorrow", "tonight", "on Monday", "on Friday", "this weekend", "next week", "later", "soon"]
THINGS = ["some milk", "the tickets", "a pizza", "some bread", "the kids", "my keys", "the charger", "coffee"]
ACTIVITIES = ["get lunch", "go for a walk", "watch a film", "grab a coffee", "play tennis", "come over",
              "go to the beach", "have dinner"]
NAMES = ["Sam", "Alex", "mum", "dad", "Jo", "Chris"]

TEMPLATES = [
    "I'll be there in {time}", "I'll be there in {time}", "I'll be there in {time}", "I'll be there at {clock}",
    "I'll be home in {time}", "I'll be home by {clock}", "I'll be there {day}", "I'll be back in {time}",
    "I'm on my way to {place}", "I'm on my way", "I'm at {place}", "I'm running late, sorry",
    "I'm running {time} late", "see you in {time}", "see you at {clock}", "see you {day}", "see you at {place}",
    "meet me at {place} at {clock}", "meet me at {place} in {time}", "can you pick up {thing} on the way?",
    "can you call me when you get to {place}?", "can you call me back?", "let me know when you get home",
    "let me know when you are at {place}", "do you want to {act} {day}?", "shall we {act} {day}?",
    "are you free {day}?", "are you at {place}?", "what time are you coming home?", "what time is dinner?",
    "thanks so much", "thanks for {thing}", "thank you, see you {day}", "no problem", "sounds good",
    "ok, see you in {time}", "ok, I'll be there in {time}", "sorry, I'll be there in {time}",
    "the train is running {time} late", "the bus is late, I'll be there in {time}", "good morning",
    "good night, sleep well", "happy birthday {name}!", "love you", "call you {day}", "where are you?",
    "I forgot {thing}, can you bring it?", "don't forget {thing}", "just left {place}, I'll be there in {time}",
    "on the bus now, I'll be at {place} in {time}", "I'll call you in {time}", "dinner is ready in {time}",
]


def message(rng: random.Random) -> str:
    t = rng.choice(TEMPLATES)
    s = t.format(time=rng.choice(TIMES), clock=rng.choice(CLOCK), place=rng.choice(PLACES), day=rng.choice(DAYS),
                 thing=rng.choice(THINGS), act=rng.choice(ACTIVITIES), name=rng.choice(NAMES))
    r = rng.random()
    if r < 0.15:
        s = rng.choice(["hi", "hey", "ok", "sorry", "yes"]) + ", " + s
    elif r < 0.25:
        s += ", " + rng.choice(["see you soon", "thanks", "love you", "sorry", "x"])
    if s[-1] not in "?!":
        s += rng.choice(["", "", ".", "!"])
    return s[0].upper() + s[1:]


def write(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    path.write_text("\n".join(message(rng) for _ in range(n)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    out = Path(__file__).parent / "lm"
    out.mkdir(exist_ok=True)
    write(out / "train.txt", 4000, 11)
    write(out / "valid.txt", 400, 12)
    write(out / "test.txt", 400, 13)
