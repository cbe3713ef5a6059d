"""Tokenizers (spaCy, whitespace, char, sentencepiece), the vocabulary, the tokenization cache."""

from collections import Counter

import numpy as np
import pytest

from textrnn.config import Tokenizer as TokCfg
from textrnn.text import tokenized, tokenizers
from textrnn.text.vocab import Vocab


def tok(**kw):
    return tokenizers.build(TokCfg(**kw))


def test_spacy_splits_punctuation_and_lowers():
    assert tok(kind="spacy", lower=True).tokenize("Don't stop, Bob!") == ["do", "n't", "stop", ",", "bob", "!"]


def test_spacy_other_language_and_unknown_language():
    assert tok(kind="spacy", lang="de").tokenize("Ein Hund läuft.") == ["Ein", "Hund", "läuft", "."]
    from textrnn.errors import UserError

    with pytest.raises(UserError, match="no language 'xx-nope'"):
        tok(kind="spacy", lang="xx-nope")


def test_whitespace_char_truncation_and_html():
    assert tok(kind="whitespace", max_length=2).tokenize("a b c") == ["a", "b"]
    assert tok(kind="char").tokenize("ab c") == ["a", "b", " ", "c"]
    assert tok(kind="whitespace", strip_html=True).tokenize("good<br /><br />film") == ["good", "film"]


def test_sentencepiece_trains_saves_and_loads(tmp_path):
    texts = [f"the cat sat on mat number {i} and the dog ran" for i in range(200)]
    t = tok(kind="sentencepiece", vocab_size=60, model_type="bpe")
    t.fit(texts)
    pieces = t.tokenize("the cat ran")
    assert t.detokenize(pieces) == "the cat ran"
    t.save(tmp_path)
    t2 = tok(kind="sentencepiece", vocab_size=60, model_type="bpe")
    t2.load(tmp_path)
    assert t2.tokenize("the dog sat") == t.tokenize("the dog sat")


def test_vocab_specials_min_freq_max_size(tmp_path):
    counts = Counter({"a": 5, "b": 3, "c": 3, "d": 1})
    v = Vocab.build(counts, min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c"]
    assert (v.pad, v.unk, v.bos, v.eos) == (0, 1, 2, 3)
    assert v.encode(["a", "d"]) == [4, 1]
    assert len(Vocab.build(counts, max_size=5)) == 5
    v.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").itos == v.itos


def test_tokenized_cache_gives_same_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path))
    t = tok(kind="whitespace")
    texts = ["a b a", "c", "b c d"]
    first = tokenized.tokenize(t, texts)
    assert len(list(tmp_path.iterdir())) == 1
    calls = []
    monkeypatch.setattr(t, "tokenize_many", lambda xs: calls.append(xs))
    second = tokenized.tokenize(t, texts)  # served from the cache, tokenizer not called
    assert calls == []
    v = Vocab.build(first.counts())
    assert [list(a) for a in first.numericalize(v)] == [list(a) for a in second.numericalize(v)]
    assert second.tokens(2) == ["b", "c", "d"]
    assert np.array_equal(second.lengths(), [3, 1, 3])
