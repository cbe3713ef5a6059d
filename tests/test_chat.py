"""Dialogue pairs, the chat REPL driven through a pipe, and the chat task end to end."""

import io

import pytest

from textrnn.cli.repl import Session, run_pipe
from textrnn.data import dialogue
from textrnn.errors import UserError

from helpers import write


def test_pairs_with_history_window():
    ctx, rep = dialogue.make_pairs([["a", "b", "c", "d"], ["x"], ["p", "q"]], history=2)
    assert rep == ["b", "c", "d", "q"]
    assert ctx == [["a"], ["a", "b"], ["b", "c"], ["p"]]


def test_readers(tmp_path):
    dd = write(tmp_path / "d.txt", "Hi . __eou__ Hello ! __eou__ How are you ? __eou__\nA __eou__\n")
    assert dialogue.read("dailydialog", str(dd)) == [["Hi .", "Hello !", "How are you ?"], ["A"]]
    js = write(tmp_path / "t.jsonl", '{"turns": ["hi", "yo"]}\n\n{"turns": ["a", " ", "b"]}\n')
    assert dialogue.read("turns", str(js)) == [["hi", "yo"], ["a", "b"]]
    bad = write(tmp_path / "b.jsonl", '{"turns": ["hi"]}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"b.jsonl:2: expected a JSON object"):
        dialogue.read("turns", str(bad))
    tsv = write(tmp_path / "p.tsv", "hi\thello\nbad line\n")
    with pytest.raises(UserError, match=r"p.tsv:2: expected context<TAB>reply"):
        dialogue.read("pairs", str(tsv))
    yml = write(
        tmp_path / "cb" / "greet.yml",
        "categories: [g]\nconversations:\n- - Hello\n  - Hi there\n- - How are you?\n  - Fine.\n  - Good.\n",
    )
    assert dialogue.read("chatterbot", str(yml.parent)) == [["Hello", "Hi there"], ["How are you?", "Fine.", "Good."]]


def test_chatterbot_package_language():
    convs = dialogue.read("chatterbot", "english")
    assert len(convs) > 1000 and any("Hello" in c[0] for c in convs)
    with pytest.raises(UserError, match="no such folder or chatterbot-corpus language"):
        dialogue.read("chatterbot", "klingon")


def drive(lines: str, history: int = 2):
    seen = []

    def reply(context, options):
        seen.append((list(context), dict(options)))
        return f"re:{context[-1]}|t={options['temperature']}"

    s = Session(reply, {"temperature": 0.0, "beam": 1}, history=history, max_chars=20)
    out, err = io.StringIO(), io.StringIO()
    run_pipe(s, io.StringIO(lines), out, err)
    return out.getvalue().splitlines(), err.getvalue().splitlines(), seen


def test_repl_through_a_pipe():
    out, err, seen = drive(
        "hello\n\n   \nhow are you\n/history\n/set temperature 0.7\n/set beam zero\n"
        "/set colour 3\nthird\n/reset\nnew start\nünïcödé ✓ 日本\n" + "x" * 50 + "\n/quit\nnot read\n"
    )
    assert out == [
        "re:hello|t=0.0",
        "re:how are you|t=0.0",
        "re:third|t=0.7",
        "re:new start|t=0.7",
        "re:ünïcödé ✓ 日本|t=0.7",
        "re:" + "x" * 20 + "|t=0.7",
    ]
    # history window of 2 turns: the previous reply and the new message
    assert seen[1][0] == ["re:hello|t=0.0", "how are you"]
    assert seen[2][0] == ["re:how are you|t=0.0", "third"]
    assert seen[3][0] == ["new start"]  # after /reset
    assert err[:2] == ["you: hello", "bot: re:hello|t=0.0"]
    assert "temperature = 0.7" in err and "beam: 'zero' is not a number" in err
    assert any("unknown option 'colour'" in e for e in err) and "(conversation reset)" in err


def test_repl_options_are_search_settings():
    from textrnn.cli.repl import FLOAT_OPTIONS, INT_OPTIONS
    from textrnn.decoding.search import SearchCfg

    assert (INT_OPTIONS | FLOAT_OPTIONS) <= set(SearchCfg.model_fields)
    _, err, seen = drive("/set block_ngram 3\n/set alpha 0.2\nhi\n")
    assert seen[0][1]["block_ngram"] == 3 and seen[0][1]["alpha"] == 0.2 and "block_ngram = 3" in err


def test_repl_eof_without_quit():
    out, _, _ = drive("hi")
    assert out == ["re:hi|t=0.0"]


def test_sampling_and_repetition_penalty():
    import torch

    from textrnn.decoding.search import SearchCfg, constrain, pick

    logp = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]] * 4), -1)
    assert pick(logp, SearchCfg(temperature=0), None).tolist() == [0, 0, 0, 0]
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = [pick(logp, SearchCfg(temperature=1.0), g()).tolist() for _ in range(2)]
    assert a[0] == a[1]  # same seed, same sample
    many = torch.cat([pick(logp, SearchCfg(temperature=1.0, top_k=2), g()) for _ in range(50)])
    assert set(many.tolist()) <= {0, 1}
    many = torch.cat([pick(logp, SearchCfg(temperature=5.0, top_p=0.01), g()) for _ in range(20)])
    assert set(many.tolist()) == {0}  # the nucleus holds the top token only
    hist = torch.tensor([[0, 0]] * 4)
    pen = constrain(logp.clone(), hist, SearchCfg(repetition_penalty=100.0), torch.tensor([50] * 4), eos=4)
    assert pen.argmax(-1).tolist() == [1, 1, 1, 1]


def test_ngram_blocking_never_repeats():
    import torch

    from textrnn.decoding.search import SearchCfg, constrain

    hist = torch.tensor([[5, 6, 7, 5, 6]])
    logp = torch.zeros(1, 10)
    out = constrain(logp, hist, SearchCfg(block_ngram=3), torch.tensor([50]), eos=1)
    assert out[0, 7] == float("-inf") and out[0].isfinite().sum() == 9  # 5 6 7 would repeat


def _chat_pipeline(tmp_path):
    lines = []
    for i in range(40):
        lines.append('{"turns": ["hello", "hi there", "how are you", "fine thanks"]}')
        lines.append('{"turns": ["good bye", "see you soon"]}')
    write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    return write(
        tmp_path / "chat.yaml",
        """name: c
task: chat
data:
  train: {path: d.jsonl, format: turns}
  valid: {path: d.jsonl, format: turns, limit: 20}
tokenizer: {kind: whitespace, lower: true, max_length: 12}
model:
  history: 2
  embedding: {dim: 16}
  encoder: {hidden: 16}
  decoder: {hidden: 32}
generate: {beam: 3, block_ngram: 2, max_extra: 6}
train: {epochs: 25, batch_tokens: 400, optimizer: {lr: 0.01}, threads: 1, patience: 30}
""",
    )


def test_chat_trains_and_talks_through_a_pipe(tmp_path, cli):
    from textrnn import config
    from textrnn.training.trainer import run_pipeline

    run, summary = run_pipeline(config.load(_chat_pipeline(tmp_path)), output=str(tmp_path / "run"))
    assert {"perplexity", "distinct_1", "distinct_2", "top_reply_share"} <= set(summary["valid"])
    code, out, err = cli("chat", run, stdin="hello\n\n/set temperature 0\nhow are you\n/reset\ngood bye\n".encode())
    assert code == 0, err
    assert out.splitlines() == ["hi there", "fine thanks", "see you soon"]
    code, out, _ = cli("chat", run, "--temperature", "1.0", "--seed", "7", stdin=b"hello\nhello\n")
    code2, out2, _ = cli("chat", run, "--temperature", "1.0", "--seed", "7", stdin=b"hello\nhello\n")
    assert code == 0 and out == out2 and len(out.splitlines()) == 2


def test_chat_refuses_a_classifier_and_empty_dialogues(tmp_path, cli):
    write(tmp_path / "one.jsonl", '{"turns": ["only one turn"]}\n')
    p = write(tmp_path / "p.yaml", "name: c\ntask: chat\ndata:\n  train: {path: one.jsonl, format: turns}\n")
    code, _, err = cli("run", p, "--output", tmp_path / "r")
    assert code == 2 and "no dialogue with two turns" in err
    from helpers import ROOT

    code, _, _ = cli(
        "run",
        ROOT / "tests/data/sentiment.yaml",
        "--output",
        tmp_path / "cls",
        "--set",
        "train.epochs=1",
        "--set",
        "model.encoder.hidden=8",
    )
    assert code == 0
    code, _, err = cli("chat", tmp_path / "cls", stdin=b"hello\n")
    assert code == 2 and "chat needs a chat or translation run directory" in err
