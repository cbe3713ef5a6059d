"""`textrnn serve`: trained runs over HTTP, with a web page (the `serve` extra: FastAPI + uvicorn)."""

from __future__ import annotations

from typing import List, Optional

import typer

from textrnn.cli.app import DEVICE_HELP, QUANTIZE_HELP


def serve(
    runs: List[str] = typer.Argument(
        ...,
        metavar="RUN...",
        help="Run directories, each served under its directory name or as NAME=RUN; "
        "RUN1,RUN2,... (or NAME=RUN1,RUN2,...) serves their ensemble as one model.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="TEXTRNN_API_KEY", help="Require 'Authorization: Bearer KEY' on every /v1 request."
    ),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="Texts per batched model call (1 = no batching)."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", min=0, help="How long a batch waits for more requests."),
    max_queue: int = typer.Option(256, "--max-queue", min=1, help="Requests queued per model before 503."),
    max_texts: int = typer.Option(64, "--max-texts", min=1, help="Texts per request."),
    max_chars: int = typer.Option(2000, "--max-chars", min=1, help="Characters per text or message."),
    max_tokens: int = typer.Option(200, "--max-tokens", min=1, help="Tokens a request may ask to generate."),
    max_beam: int = typer.Option(10, "--max-beam", min=1, help="Largest beam (and n-best) a request may ask for."),
    max_body: int = typer.Option(1_000_000, "--max-body", min=1, help="Request body size in bytes."),
    sessions: int = typer.Option(1000, "--sessions", min=1, help="Chat sessions kept per model."),
    session_ttl: float = typer.Option(1800.0, "--session-ttl", min=1, help="Seconds a chat session may stay idle."),
    log_level: str = typer.Option(
        "info", "--log-level", help="uvicorn's log level (info logs each request; warning only problems)."
    ),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        min=1,
        help="torch threads for the models (default: the CPU count less one, which serves HTTP).",
    ),
    quantize: bool = typer.Option(False, "--quantize", metavar="", help=QUANTIZE_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
):
    """Serve runs over HTTP: JSON endpoints, a web page at /, API docs at /docs."""
    from textrnn.serve.run import serve as run_server
    from textrnn.serve.schemas import Limits

    limits = Limits(
        max_texts=max_texts, max_chars=max_chars, max_tokens=max_tokens, max_beam=max_beam, max_body=max_body
    )
    run_server(
        runs,
        host,
        port,
        device,
        quantize,
        log_level,
        threads,
        api_key=api_key or None,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        limits=limits,
        sessions=sessions,
        session_ttl=session_ttl,
    )
