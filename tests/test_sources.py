"""Data sources: tsv / csv / jsonl / per-label files / the hub (a local dataset dir), carved valid, named errors."""

import gzip
import json

import pytest

from textrnn.config import Data, Source
from textrnn.data.sources import read, read_splits
from textrnn.errors import UserError

from helpers import write


def test_tsv_with_header(tmp_path):
    p = write(tmp_path / "a.tsv", 'sentence\tlabel\nit \'s "great"\t1\nnull\t0\n')
    ex = read(Source(path=str(p), text="sentence"), {"1": "pos"})
    assert ex.texts == ['it \'s "great"', "null"]  # no quote handling, no NA conversion
    assert ex.labels == ["pos", "0"]


def test_label_first_lines(tmp_path):
    p = write(tmp_path / "stsa.binary.test", "1 a fine film\n0 not good\n")
    ex = read(Source(path=str(p), format="label_first"), {})
    assert ex.texts == ["a fine film", "not good"] and ex.labels == ["1", "0"]


def test_one_file_per_label_latin1(tmp_path):
    (tmp_path / "x.pos").write_bytes("caf\xe9 is good\n".encode("latin-1"))
    (tmp_path / "x.neg").write_bytes(b"bad\n\nworse\n")
    ex = read(
        Source(files={"positive": str(tmp_path / "x.pos"), "negative": str(tmp_path / "x.neg")}, encoding="latin-1"), {}
    )
    assert ex.texts == ["café is good", "bad", "worse"]
    assert ex.labels == ["positive", "negative", "negative"]
    assert ex.skipped_empty == 1


def test_jsonl_gz_and_headerless_csv_positions(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        for t, y in [("good", 1), ("bad", 0)]:
            f.write(json.dumps({"text": t, "label": y}) + "\n")
    assert read(Source(path=str(p)), {}).labels == ["1", "0"]
    c = write(tmp_path / "b.csv", 'neg,"bad, really"\npos,fine\n')
    ex = read(Source(path=str(c), header=False, text=1, label=0), {})
    assert ex.texts == ["bad, really", "fine"] and ex.labels == ["neg", "pos"]


def test_hub_source_from_local_dataset_dir(tmp_path):
    import datasets

    ds = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["good", "bad"], "label": [1, 0]},
                features=datasets.Features(
                    {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
                ),
            )
        }
    )
    ds.save_to_disk(str(tmp_path / "hubds"))
    ex = read(Source(hub={"name": str(tmp_path / "hubds"), "split": "train"}), {})
    assert ex.texts == ["good", "bad"] and ex.labels == ["pos", "neg"]  # ClassLabel names kept
    with pytest.raises(UserError, match="no split 'test'"):
        read(Source(hub={"name": str(tmp_path / "hubds"), "split": "test"}), {})


def test_valid_carved_from_train_with_fixed_seed(tmp_path):
    p = write(tmp_path / "a.tsv", "text\tlabel\n" + "".join(f"t{i}\t{i % 2}\n" for i in range(100)))
    d = Data(train=Source(path=str(p)), valid_fraction=0.2)
    a, b = read_splits(d, seed=1), read_splits(d, seed=1)
    assert len(a["valid"].texts) == 20 and len(a["train"].texts) == 80
    assert a["valid"].texts == b["valid"].texts
    assert not set(a["valid"].texts) & set(a["train"].texts)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="nope.tsv: no such file"):
        read(Source(path=str(tmp_path / "nope.tsv")), {})
    p = write(tmp_path / "a.tsv", "sentence\tlabel\nx\t1\n")
    with pytest.raises(UserError, match=r"a.tsv: no column 'text' for the text \(columns: sentence, label\)"):
        read(Source(path=str(p)), {})
    e = write(tmp_path / "e.tsv", "text\tlabel\n")
    with pytest.raises(UserError, match="e.tsv: no examples"):
        read(Source(path=str(e)), {})
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"1 fine\n0 caf\xe9 ok\n")
    with pytest.raises(UserError, match=r"bad.txt:2: bytes that are not valid utf-8"):
        read(Source(path=str(bad), format="label_first"), {})
