"""Dialogue pairs, the chat REPL driven through a pipe, and the chat task end to end."""

import io

import pytest

from textrnn.chat import Session, run_pipe
from textrnn.data import dialogue
from textrnn.errors import UserError

from conftest import write


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
    yml = write(tmp_path / "cb" / "greet.yml", "categories: [g]\nconversations:\n- - Hello\n  - Hi there\n- - How are you?\n  - Fine.\n  - Good.\n")
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
    out, err, seen = drive("hello\n\n   \nhow are you\n/history\n/set temperature 0.7\n/set beam zero\n"
                           "/set colour 3\nthird\n/reset\nnew start\nünïcödé ✓ 日本\n" + "x" * 50 + "\n/quit\nnot read\n")
    assert out == ["re:hello|t=0.0", "re:how are you|t=0.0", "re:third|t=0.7", "re:new start|t=0.7",
                   "re:ünïcödé ✓ 日本|t=0.7", "re:" + "x" * 20 + "|t=0.7"]
    # history window of 2 turns: the previous reply and the new message
    assert seen[1][0] == ["re:hello|t=0.0", "how are you"]
    assert seen[2][0] == ["re:how are you|t=0.0", "third"]
    assert seen[3][0] == ["new start"]  # after /reset
    assert err[:2] == ["you: hello", "bot: re:hello|t=0.0"]
    assert "temperature = 0.7" in err and "beam: 'zero' is not a number" in err
    assert any("unknown option 'colour'" in e for e in err) and "(conversation reset)" in err


def test_repl_eof_without_quit():
    out, _, _ = drive("hi")
    assert out == ["re:hi|t=0.0"]
