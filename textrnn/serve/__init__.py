"""`textrnn serve`: models over HTTP (FastAPI + uvicorn, the `serve` extra) with dynamic batching,
server-side chat sessions and a web page. `create_app` builds the app; `run` loads runs and serves.
"""
