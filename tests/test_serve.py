"""`textrnn serve`: every endpoint against the Python API, batching equals one by one, bad requests,
auth, sessions, a full queue, graceful shutdown."""

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
import numpy as np  # noqa: E402

import textrnn  # noqa: E402
from textrnn.errors import UserError  # noqa: E402
from textrnn.serve.app import Settings  # noqa: E402
from textrnn.serve.batcher import Batcher, Busy  # noqa: E402
from textrnn.serve.run import named_runs  # noqa: E402
from textrnn.serve.schemas import Limits  # noqa: E402
from textrnn.serve.sessions import Sessions  # noqa: E402

from helpers import NEG, PAIRS, POS, ROOT, free_port, live  # noqa: E402


@pytest.fixture(scope="module")
def models(runs):
    return {task: textrnn.load(run.path, device="cpu") for task, run in runs.items()}


@pytest.fixture(scope="module")
def server(models):
    with live(
        models,
        Settings(max_wait_ms=50, limits=Limits(max_texts=8, max_chars=200, max_beam=5, max_tokens=30, max_body=20_000)),
    ) as (url, app):
        yield url, app


def post(url, path, body, **kw):
    return httpx.post(url + path, json=body, timeout=30, **kw)


# -- every endpoint gives what the Python API gives
def test_models_and_health(server):
    url, _ = server
    assert httpx.get(url + "/health").json()["status"] == "ok"
    listed = {m["name"]: m for m in httpx.get(url + "/v1/models").json()["models"]}
    assert set(listed) == {"classify", "lm", "translate", "chat"}
    assert listed["classify"]["endpoints"] == ["predict"] and set(listed["classify"]["labels"]) == {
        "positive",
        "negative",
    }
    assert listed["lm"]["endpoints"] == ["complete", "generate"] and listed["translate"]["generate"]["beam"] == 3
    assert "openapi" in httpx.get(url + "/openapi.json").json()


def test_predict_equals_the_api(server, models):
    url, _ = server
    texts = POS[:3] + ["", NEG[0]]
    r = post(url, "/v1/models/classify/predict", {"texts": texts})
    assert r.status_code == 200
    got = r.json()["results"]
    want = models["classify"].predict(texts)
    assert [g["label"] for g in got] == [w.label for w in want]
    assert [g["prob"] for g in got] == pytest.approx([w.prob for w in want], abs=1e-6)
    assert set(got[0]["probs"]) == {"positive", "negative"} and got[0]["tokens"] > 0


def test_translate_complete_generate_equal_the_api(server, models):
    url, _ = server
    src = [s for s, _ in PAIRS[:4]] + [""]
    r = post(url, "/v1/models/translate/translate", {"texts": src, "beam": 2})
    assert r.json()["results"] == models["translate"].translate(src, beam=2) and r.json()["results"][-1] == ""
    nb = post(url, "/v1/models/translate/translate", {"texts": src[:2], "beam": 3, "n_best": 2}).json()["results"]
    assert all(isinstance(x, list) and len(x) == 2 for x in nb)
    c = post(url, "/v1/models/lm/complete", {"texts": ["the cat", "I'll be"], "k": 3}).json()["results"]
    want = models["lm"].complete(["the cat", "I'll be"], k=3)
    assert [[w["word"] for w in ws] for ws in c] == [[w for w, _ in ws] for ws in want]
    g = post(url, "/v1/models/lm/generate", {"texts": ["the"], "seed": 3, "max_tokens": 5, "num": 2}).json()
    assert g["results"] == [models["lm"].generate("the", seed=3, max_tokens=5, num=2)]


def test_chat_keeps_history_per_session_and_resets(server, models):
    url, _ = server
    a = post(url, "/v1/models/chat/chat", {"message": "hello"}).json()
    assert a["reply"] == models["chat"].reply("hello") and a["turns"] == 1
    sid = a["session"]
    b = post(url, "/v1/models/chat/chat", {"message": "how are you", "session": sid}).json()
    assert b["session"] == sid and b["turns"] == 2
    assert b["reply"] == models["chat"].reply(["hello", a["reply"], "how are you"])
    other = post(url, "/v1/models/chat/chat", {"message": "good bye", "session": "mine-1"}).json()
    assert other["session"] == "mine-1" and other["turns"] == 1
    assert post(url, f"/v1/models/chat/chat/{sid}/reset", {}).json()["turns"] == 0
    assert post(url, "/v1/models/chat/chat", {"message": "hello", "session": sid}).json()["turns"] == 1


# -- dynamic batching
def concurrently(n, fn):
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


@pytest.mark.parametrize(
    "endpoint,model,make,body",
    [
        ("predict", "classify", lambda i: (POS + NEG)[i % 20], {}),
        ("translate", "translate", lambda i: PAIRS[i % 8][0], {"beam": 3}),
    ],
)
def test_concurrent_requests_are_batched_and_equal_one_by_one(server, models, endpoint, model, make, body):
    url, app = server
    batcher = app.state.batchers[model]
    before = batcher.calls
    batcher.executor.submit(time.sleep, 0.5)  # the model is busy: the requests queue up and merge
    out = concurrently(12, lambda i: post(url, f"/v1/models/{model}/{endpoint}", {"texts": [make(i)], **body}))
    assert all(r.status_code == 200 for r in out)
    assert batcher.calls - before < 12  # requests were merged
    results = [r.json()["results"][0] for r in out]
    if endpoint == "predict":
        want = [models[model].predict(make(i)).label for i in range(12)]
        assert [r["label"] for r in results] == want
    else:
        assert results == [models[model].translate(make(i), beam=3) for i in range(12)]


def test_concurrent_chat_sessions_are_batched_and_each_keeps_its_history(server, models):
    url, app = server
    before = app.state.batchers["chat"].calls
    app.state.batchers["chat"].executor.submit(time.sleep, 0.5)
    msgs = ["hello", "how are you", "good bye"]
    out = concurrently(9, lambda i: post(url, "/v1/models/chat/chat", {"message": msgs[i % 3], "session": f"s{i}"}))
    assert app.state.batchers["chat"].calls - before < 9
    assert [r.json()["reply"] for r in out] == [models["chat"].reply(msgs[i % 3]) for i in range(9)]


def test_a_bad_request_in_a_batch_fails_alone():
    async def main():
        b = Batcher("m", max_batch=8, max_wait_ms=100)
        b.start()

        def call(items):
            if "bad" in items:
                raise UserError("bad text")
            return [x.upper() for x in items]

        res = await asyncio.gather(
            b.submit("k", ["a"], call), b.submit("k", ["bad"], call), b.submit("k", ["c"], call), return_exceptions=True
        )
        await b.stop()
        return res, b.calls

    (a, bad, c), calls = asyncio.run(main())
    assert a == ["A"] and c == ["C"] and isinstance(bad, UserError)
    assert calls == 4  # one merged call, then one by one


def test_a_full_queue_answers_busy():
    async def main():
        b = Batcher("m", max_batch=1, max_queue=2)
        b.start()
        slow = lambda items: time.sleep(0.3) or items  # noqa: E731
        jobs = [asyncio.ensure_future(b.submit(i, [i], slow)) for i in range(5)]
        res = await asyncio.gather(*jobs, return_exceptions=True)
        await b.stop()
        return res

    res = asyncio.run(main())
    assert sum(isinstance(r, Busy) for r in res) >= 2 and res[0] == [0]


def test_busy_is_a_503_with_retry_after(models):
    with live({"classify": models["classify"]}, Settings(max_batch=1, max_queue=1)) as (url, _):
        out = concurrently(16, lambda i: post(url, "/v1/models/classify/predict", {"texts": [POS[0]] * 8}))
    codes = [r.status_code for r in out]
    assert set(codes) <= {200, 503} and 200 in codes
    for r in out:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]


# -- bad requests: a 4xx with a JSON error naming the field, and the server still answers
BAD = [
    ("/v1/models/classify/predict", b"{not json", 400, "JSON"),
    ("/v1/models/classify/predict", [1, 2], 422, "body"),
    ("/v1/models/classify/predict", {}, 422, "texts"),
    ("/v1/models/classify/predict", {"texts": "a film"}, 422, "texts"),
    ("/v1/models/classify/predict", {"texts": ["ok", 3]}, 422, "texts.1"),
    ("/v1/models/classify/predict", {"texts": ["ok"], "beam": 2}, 422, "beam"),
    ("/v1/models/classify/predict", {"texts": ["x"] * 9}, 422, "at most 8"),
    ("/v1/models/classify/predict", {"texts": ["x" * 201]}, 422, "texts[0]"),
    ("/v1/models/classify/predict", {"texts": ["x" * 30_000]}, 413, "bytes"),
    ("/v1/models/nosuch/predict", {"texts": ["a"]}, 404, "no model 'nosuch'"),
    ("/v1/models/classify/translate", {"texts": ["a"]}, 404, "serves /predict"),
    ("/v1/models/translate/translate", {"texts": ["a"], "beam": 0}, 422, "beam"),
    ("/v1/models/translate/translate", {"texts": ["a"], "beam": 50}, 422, "at most 5"),
    ("/v1/models/translate/translate", {"texts": ["a"], "beam": 2, "n_best": 3}, 422, "n-best"),
    ("/v1/models/translate/translate", {"texts": ["a"], "temperature": -1}, 422, "temperature"),
    ("/v1/models/translate/translate", {"texts": ["a"], "top_p": 2}, 422, "top_p"),
    ("/v1/models/translate/translate", {"texts": ["a"], "seed": -4}, 422, "seed"),
    ("/v1/models/lm/generate", {"texts": ["the"], "max_tokens": 1000}, 422, "max_tokens"),
    ("/v1/models/lm/generate", {"texts": ["zzzq qqqz"]}, 400, "vocabulary"),
    ("/v1/models/lm/complete", {"texts": ["the"], "k": 0}, 422, "k"),
    ("/v1/models/chat/chat", {"message": "  "}, 422, "message"),
    ("/v1/models/chat/chat", {"message": "hi", "session": "../etc"}, 422, "session"),
    ("/v1/models/chat/chat", {"texts": ["hi"]}, 422, "message"),
    ("/v1/models/chat/chat/never-started/reset", {}, 404, "no session"),
]


@pytest.mark.parametrize("path,body,status,says", BAD, ids=[f"{i}-{b[3]}" for i, b in enumerate(BAD)])
def test_bad_requests_get_a_4xx_naming_the_problem(server, path, body, status, says):
    url, _ = server
    if isinstance(body, bytes):
        r = httpx.post(url + path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = post(url, path, body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]
    assert httpx.get(url + "/health").status_code == 200


def test_wrong_method_and_streamed_oversize_body(server):
    url, _ = server
    assert httpx.get(url + "/v1/models/classify/predict").status_code == 405

    def chunks():
        for _ in range(40):
            yield b" " * 1000

    r = httpx.post(url + "/v1/models/classify/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413) and "error" in r.json()


def test_limits_name_the_field():
    from textrnn.serve.schemas import TranslateBody

    with pytest.raises(UserError, match="beam: 11, at most 10"):
        Limits().check(TranslateBody(texts=["a"], beam=11))


# -- auth
def test_api_key(models):
    with live({"classify": models["classify"]}, Settings(api_key="s3cret")) as (url, _):
        body = {"texts": ["a film"]}
        assert post(url, "/v1/models/classify/predict", body).status_code == 401
        r = post(url, "/v1/models/classify/predict", body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert (
            post(url, "/v1/models/classify/predict", body, headers={"Authorization": "Bearer s3cret"}).status_code
            == 200
        )
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/health").status_code == 200 and httpx.get(url + "/").status_code == 200


# -- sessions
def test_sessions_expire_and_are_capped():
    now = [0.0]
    made = []
    store = Sessions(lambda: made.append(1) or _Fake(), cap=2, ttl=10, clock=lambda: now[0])
    store.get("a")[1].session.turns.append("x")
    assert store.get("a")[1].session.turns == ["x"]
    now[0] = 11
    assert store.get("a")[1].session.turns == []  # expired: a new conversation
    store.get("b"), store.get("c")
    assert list(store.items) == ["b", "c"]  # "a" was the least recently used
    assert not store.reset("a") and store.reset("b")
    sid, _ = store.get(None)
    assert len(sid) >= 12


class _Fake:
    def __init__(self):
        self.turns = []

    def reset(self):
        self.turns.clear()


# -- the command line
def test_named_runs():
    assert named_runs(["runs/sentiment", "mt=runs/x/"]) == {"sentiment": ["runs/sentiment"], "mt": ["runs/x/"]}
    assert named_runs(["ens=runs/a,runs/b", "runs/c/,runs/d"]) == {
        "ens": ["runs/a", "runs/b"],
        "c": ["runs/c/", "runs/d"],
    }
    with pytest.raises(UserError, match="two models named 'a'"):
        named_runs(["x/a", "y/a"])
    with pytest.raises(UserError, match="model name"):
        named_runs(["b a d=runs/x"])
    with pytest.raises(UserError, match="no run directory"):
        named_runs(["ens=,"])


def test_serve_an_ensemble(runs, tmp_path):
    """NAME=RUN1,RUN2 serves the ensemble of the runs: its answers are textrnn.ensemble's."""
    from textrnn.serve.run import open_models

    clf = runs["classify"].path
    other = textrnn.train(clf / "pipeline.yaml", overrides={"train.seed": 2}, output=tmp_path / "c2", progress=False)
    models = open_models([f"ens={clf},{other.path}", str(clf)])
    ens = textrnn.ensemble([clf, other.path])
    assert models["ens"].members == (clf, other.path) and not hasattr(models[clf.name], "members")
    texts = POS[:2] + NEG[:2]
    assert not np.allclose(ens.predict_proba(texts), models[clf.name].predict_proba(texts), atol=1e-3)
    with live(models) as (url, _):
        listed = {m["name"]: m for m in httpx.get(url + "/v1/models").json()["models"]}
        assert listed["ens"]["members"] == [str(clf), str(other.path)]
        got = post(url, "/v1/models/ens/predict", {"texts": texts}).json()["results"]
    assert [g["prob"] for g in got] == pytest.approx([p.prob for p in ens.predict(texts)], abs=1e-6)


def test_serve_a_missing_run_is_one_line(cli, tmp_path):
    code, _, err = cli("serve", tmp_path / "nope", "--port", "0")
    assert code == 2 and err.count("\n") == 1 and "nope" in err


def test_serve_a_bad_ensemble_is_one_line(cli, runs):
    code, _, err = cli("serve", f"ens={runs['classify'].path},{runs['translate'].path}", "--port", "0")
    assert code == 2 and err.count("\n") == 1 and "share a task" in err


def test_sigterm_drains_and_exits_0(runs):
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "textrnn", "serve", f"lm={runs['lm'].path}", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a start-up (torch, spaCy, the model) on busy cores takes a while
        while True:
            assert p.poll() is None, p.stdout.read().decode()  # the server died: say why
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not listen within 180 s"
                time.sleep(0.1)
        body = {"texts": ["the"] * 8, "max_tokens": 30, "num": 16, "temperature": 1.0}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/v1/models/lm/generate", json.dumps(body), {"Content-Type": "application/json"})
        time.sleep(0.5)  # the request is sent (and long: 8 x 16 samples): let the server take it before SIGTERM
        p.send_signal(signal.SIGTERM)
        r = conn.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["results"]) == 8
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
    out = p.stdout.read().decode()
    assert "Traceback" not in out and "serving lm" in out


def test_json_errors_are_json(server):
    url, _ = server
    r = httpx.post(url + "/v1/models/classify/predict", content=b"", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422) and json.loads(r.text)["error"]


def test_loopback_addresses():
    from textrnn.serve.run import loopback

    assert loopback("127.0.0.1") and loopback("::1") and loopback("localhost") and loopback("127.0.0.2")
    assert not loopback("0.0.0.0") and not loopback("192.168.1.4") and not loopback("example.org")
