"""What the tests share besides fixtures: the repository root, a file writer, tiny data sets."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- tiny data (conftest's `runs` fixture trains one run per task on it)
POS = [
    "a wonderful film",
    "great acting and a great story",
    "I loved it",
    "superb and moving",
    "a delight",
    "truly great fun",
    "wonderful music",
    "I loved the cast",
    "a superb story",
    "great, just great",
]
NEG = [
    "a dull film",
    "boring and far too long",
    "I hated it",
    "awful acting",
    "a mess",
    "dull, dull, dull",
    "a boring story",
    "I hated the cast",
    "awful music",
    "truly awful",
]
LM_TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the mat is red",
    "I'll be there in five minutes",
    "I'll be there in ten minutes",
    "see you soon",
] * 6
PAIRS = [
    ("ein hund", "a dog"),
    ("eine katze", "a cat"),
    ("der hund läuft", "the dog runs"),
    ("die katze läuft", "the cat runs"),
    ("der hund schläft", "the dog sleeps"),
    ("die katze schläft", "the cat sleeps"),
    ("ein roter hund", "a red dog"),
    ("eine rote katze", "a red cat"),
]
TINY_TRAIN = (
    "train: {epochs: %d, batch_tokens: 60, optimizer: {lr: 0.02}, threads: 1, patience: 50, checkpoint_every: 0}\n"
)
