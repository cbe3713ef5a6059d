"""`textrnn export`: a run as ONNX graphs + vocabulary + signature.json, for inference without torch."""

from __future__ import annotations

import typer


def export(
    run_dir: str = typer.Argument(..., metavar="RUN", help="Run directory (any task)."),
    output: str = typer.Option(
        ..., "--output", "-o", metavar="DIR", help="Folder to write (created whole or not at all)."
    ),
    fmt: str = typer.Option("onnx", "--format", help="onnx (the only format)."),
    overwrite: bool = typer.Option(False, "--overwrite", metavar="", help="Replace DIR if it is not empty."),
):
    """Export the model for onnxruntime; checks the graphs against PyTorch and prints the largest difference."""
    from textrnn.export import export as write

    sig = write(run_dir, output, fmt, overwrite)
    c = sig["check"]
    shapes = ", ".join(f"{s['batch']}x{s['length']}" for s in c["shapes"])
    typer.echo(f"wrote {output}: {', '.join(sig['files'])}")
    typer.echo(
        f"onnxruntime vs PyTorch: max |difference| {c['max_abs_diff']:.2g} (tolerance {c['tolerance']:g}; "
        f"batch x length {shapes})"
    )
