"""Load runs and serve them with uvicorn until Ctrl-C / SIGTERM (in-flight requests finish; exit 0)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from textrnn.errors import UserError


def named_runs(specs: Sequence[str]) -> dict[str, list[str]]:
    """'RUN', 'NAME=RUN' or either with RUN1,RUN2,... (an ensemble) -> {name: [run, ...]}; the name
    defaults to the (first) run directory's name."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
        paths = [p for p in path.split(",") if p]
        if not paths:
            raise UserError(f"{spec}: no run directory (give RUN, NAME=RUN or NAME=RUN1,RUN2,...)")
        name = name if sep else Path(paths[0].rstrip("/")).name
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise UserError(f"{spec}: a model name is letters, digits, '-', '_' or '.' (give NAME=RUN)")
        if name in out:
            raise UserError(f"two models named {name!r} ({','.join(out[name])} and {path}); name them: NAME=RUN")
        out[name] = paths
    if not out:
        raise UserError("serve: give at least one run directory")
    return out


def open_models(specs: Sequence[str], device: str = "cpu", quantize: bool = False) -> dict:
    """Every served model by name: one run (textrnn.load) or the ensemble of several (textrnn.ensemble)."""
    import textrnn

    return {
        name: textrnn.load(paths[0], device=device, quantize=quantize)
        if len(paths) == 1
        else textrnn.ensemble(paths, device=device, quantize=quantize)
        for name, paths in named_runs(specs).items()
    }


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    specs: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    quantize: bool = False,
    log_level: str = "info",
    threads: Optional[int] = None,
    **settings,
) -> int:
    """Open every run first (a bad one stops before anything listens), then serve; returns 0."""
    try:
        import uvicorn

        from textrnn.serve.app import Settings, create_app
    except ImportError as e:
        raise UserError(f"serve needs the serve extra ({e.name} is missing): pip install 'textrnn[serve]'") from None

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        raise UserError(f"--log-level {log_level}: one of critical, error, warning, info, debug, trace")
    cfg = Settings(**settings)
    if not loopback(host) and not cfg.api_key:
        print(
            f"warning: serving on {host} without an API key: anyone who reaches this address can use the "
            "models (set --api-key or TEXTRNN_API_KEY)",
            file=sys.stderr,
        )
    import torch

    # The event loop (HTTP, JSON) needs a core of its own: a model that spreads over every core makes
    # its threads wait on each other whenever the loop runs (measured on 2 cores: 1.9 ms per sentence
    # on 1 thread, 37 ms on 2 threads with the other core busy).
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) - 1))
    models = open_models(specs, device, quantize)
    for name, m in models.items():
        runs = ", ".join(str(r) for r in getattr(m, "members", ())) or str(m.run)
        print(f"serving {name}: {m.kind} from {runs}", file=sys.stderr)
    app = create_app(models, cfg)
    server = Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30))
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind (its own log line says why)
        if e.code:
            raise UserError(f"could not serve on {host}:{port} (in use, or not an address of this machine)") from None
    return 0


try:
    import uvicorn as _uvicorn

    class Server(_uvicorn.Server):
        """uvicorn's server, except that a Ctrl-C / SIGTERM that shut it down gracefully is not re-raised
        (uvicorn re-raises it so the process dies of it; a drained server exits 0)."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

except ImportError:  # the serve extra is missing: serve() says so
    pass
