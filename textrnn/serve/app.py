"""The FastAPI application: JSON endpoints over loaded models, dynamic batching, sessions, the web page.

    app = create_app({"sentiment": textrnn.load("runs/sentiment")}, Settings(api_key="…"))

Endpoints (every /v1 route needs `Authorization: Bearer KEY` when a key is set):
    GET  /health, /v1/models, / (the web page), /docs (OpenAPI)
    POST /v1/models/{name}/predict | complete | generate | translate   {"texts": [...], <options>}
    POST /v1/models/{name}/chat                                        {"message": "...", "session": "id"}
    POST /v1/models/{name}/chat/{session}/reset
Errors are JSON {"error": "one sentence", "field": "texts.2"?}: 4xx for the client's mistakes,
503 + Retry-After when a model's queue is full.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Optional

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from textrnn.errors import UserError
from textrnn.inference.base import TaskModel
from textrnn.inference.translator import Chatbot
from textrnn.serve.batcher import Batcher, Busy
from textrnn.serve.limits import BodyLimit
from textrnn.serve.schemas import Body, ChatBody, CompleteBody, GenerateBody, Limits, PredictBody, TranslateBody
from textrnn.serve.sessions import Sessions

ENDPOINTS = {"classify": ("predict",), "lm": ("complete", "generate"), "translate": ("translate",), "chat": ("chat",)}


@dataclass(frozen=True)
class Settings:
    """How the server batches, what it accepts, who may call it."""

    max_batch: int = 32  # texts per model call; 1 = no merging of requests
    max_wait_ms: float = 5.0  # how long a batch waits for more requests
    max_queue: int = 256  # requests waiting per model before 503
    limits: Limits = Limits()
    api_key: Optional[str] = None
    sessions: int = 1000  # chat sessions kept per model
    session_ttl: float = 1800.0  # seconds a chat session may stay idle


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.headers = status, headers


def create_app(models: dict[str, TaskModel], settings: Settings = Settings()) -> FastAPI:
    """The server for `models` (name -> loaded model)."""
    batchers = {n: Batcher(n, settings.max_batch, settings.max_wait_ms, settings.max_queue) for n in models}

    def conversation(m: TaskModel):
        return lambda: m.session(max_chars=settings.limits.max_chars)

    sessions = {
        n: Sessions(conversation(m), settings.sessions, settings.session_ttl)
        for n, m in models.items()
        if isinstance(m, Chatbot)
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        for b in batchers.values():
            b.start()
        yield
        for b in batchers.values():
            await b.stop()

    app = FastAPI(
        title="textrnn",
        version=_version(),
        lifespan=lifespan,
        **_no_telemetry(),
        description="Recurrent text models served by `textrnn serve`.",
    )
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body)
    app.state.batchers, app.state.sessions = batchers, sessions
    _errors(app)
    auth = _auth(settings.api_key)

    def model(name: str, endpoint: str) -> TaskModel:
        m = models.get(name)
        if m is None:
            raise ApiError(404, f"no model {name!r} (served: {', '.join(models)})")
        if endpoint not in ENDPOINTS[m.task_name]:
            serves = ", ".join(f"/{e}" for e in ENDPOINTS[m.task_name])
            raise ApiError(404, f"model {name!r} is {m.kind}: it serves {serves}")
        return m

    def accept(name: str, endpoint: str, body: Body) -> TaskModel:
        """The model `name` if it serves `endpoint` and the body is within the limits."""
        m = model(name, endpoint)
        try:
            settings.limits.check(body)
        except UserError as e:
            raise ApiError(422, str(e)) from None
        return m

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("textrnn.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "models": len(models)}

    @app.get("/v1/models", dependencies=[Depends(auth)])
    def list_models() -> dict:
        return {"models": [_describe(n, m) for n, m in models.items()]}

    @app.post("/v1/models/{name}/predict", dependencies=[Depends(auth)])
    async def predict(name: str, body: PredictBody) -> dict:
        m = accept(name, "predict", body)
        preds = await batchers[name].submit("predict", body.texts, m.predict)
        return {"model": name, "results": [asdict(p) for p in preds]}

    @app.post("/v1/models/{name}/complete", dependencies=[Depends(auth)])
    async def complete(name: str, body: CompleteBody) -> dict:
        m = accept(name, "complete", body)
        out = await batchers[name].submit(("complete", body.k), body.texts, lambda t: m.complete(t, k=body.k))
        return {"model": name, "results": [[{"word": w, "prob": p} for w, p in words] for words in out]}

    @app.post("/v1/models/{name}/generate", dependencies=[Depends(auth)])
    async def generate(name: str, body: GenerateBody) -> dict:
        m = accept(name, "generate", body)
        opts = body.model_dump(exclude={"texts"})
        out = await batchers[name].submit(
            ("generate", *sorted(opts.items())), body.texts, lambda prompts: [m.generate(p, **opts) for p in prompts]
        )
        return {"model": name, "results": out}

    @app.post("/v1/models/{name}/translate", dependencies=[Depends(auth)])
    async def translate(name: str, body: TranslateBody) -> dict:
        m = accept(name, "translate", body)
        opts, s = _search(m, body)
        out = await batchers[name].submit(
            ("translate", *sorted(opts.items())),
            body.texts,
            lambda texts: m.translate(texts, **opts),
            mergeable=s.temperature == 0,
        )
        return {"model": name, "results": out}

    @app.post("/v1/models/{name}/chat", dependencies=[Depends(auth)])
    async def chat(name: str, body: ChatBody) -> dict:
        m = accept(name, "chat", body)
        opts, s = _search(m, body)
        if not body.message.strip():
            raise ApiError(422, "message: empty")
        sid, entry = sessions[name].get(body.session)
        async with entry.lock:
            context = entry.session.context(body.message)
            reply = (
                await batchers[name].submit(
                    ("chat", *sorted(opts.items())),
                    [context],
                    lambda cs: m.respond_many(cs, opts),
                    mergeable=s.temperature == 0,
                )
            )[0]
            entry.session.add(body.message, reply)
        return {"model": name, "session": sid, "reply": reply, "turns": len(entry.session.history)}

    @app.post("/v1/models/{name}/chat/{session}/reset", dependencies=[Depends(auth)])
    def reset(name: str, session: str) -> dict:
        model(name, "chat")
        if not sessions[name].reset(session):
            raise ApiError(404, f"no session {session!r} for model {name!r} (expired or never started)")
        return {"model": name, "session": session, "turns": 0}

    return app


def _search(m, body):
    """The request's decoding options and the settings they make (validated: 422 naming the value)."""
    opts = body.options()
    try:
        return opts, m.settings(**opts)
    except UserError as e:
        raise ApiError(422, str(e)) from None


def _describe(name: str, m: TaskModel) -> dict:
    return {"name": name, "endpoints": list(ENDPOINTS[m.task_name]), **m.describe()}


def _auth(key: Optional[str]):
    bearer = HTTPBearer(auto_error=False)

    async def check(cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:  # async: no thread hop
        if key is None:
            return
        if cred is None or not secrets.compare_digest(cred.credentials.encode(), key.encode()):
            raise ApiError(401, "this server needs Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})

    return check


def _errors(app: FastAPI) -> None:
    def error(status: int, message: str, field: Optional[str] = None, headers: Optional[dict] = None):
        body = {"error": message} | ({"field": field} if field else {})
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return error(e.status, str(e), headers=e.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError):
        return error(400, str(e))

    @app.exception_handler(Busy)
    async def busy(request: Request, e: Busy):
        return error(503, f"busy: {e}; retry shortly", headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc)
        msg = first.get("msg", "invalid")
        if first.get("type") == "json_invalid":
            return error(400, f"the body is not valid JSON: {first.get('ctx', {}).get('error', msg)}")
        return error(422, f"{field or 'body'}: {msg}", field or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return error(e.status_code, str(e.detail), headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception):  # a bug of ours: still JSON, the server lives on
        return error(500, f"internal error: {type(e).__name__}: {e}")


def _no_telemetry() -> dict:
    """FastAPI >= 0.16x checks for OpenTelemetry providers on every request (9 % of the event loop's
    time under load here); we export none, so switch it off where the option exists."""
    import inspect

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def _version() -> str:
    from textrnn import __version__

    return __version__
