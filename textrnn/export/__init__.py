"""Export a trained run for inference without torch: ONNX graphs, vocabulary / tokenizer files and
signature.json (`textrnn export RUN -o DIR`; see docs/export.md).

    from textrnn.export import export
    sig = export("runs/sentiment", "exported/sentiment")   # DIR/model.onnx, vocab.json, signature.json
    sig["check"]["max_abs_diff"]                            # onnxruntime vs PyTorch, largest difference
"""

from __future__ import annotations

import shutil
from pathlib import Path

from textrnn.errors import UserError

FORMATS = ("onnx",)
EXTRA = "pip install 'textrnn[export]'"


def export(run: str | Path, out_dir: str | Path, format: str = "onnx", overwrite: bool = False) -> dict:
    """Write RUN's best model to OUT_DIR (created whole or not at all) after checking onnxruntime
    against PyTorch; returns the signature (also OUT_DIR/signature.json). Bad input raises UserError."""
    if format not in FORMATS:
        raise UserError(f"--format {format}: the export formats are {', '.join(FORMATS)}")
    from textrnn import __version__, inference, rundir

    run_path, _ = inference.read_pipeline(run)
    out = Path(out_dir)
    rundir.check_out_folder(out, run_path, overwrite)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise UserError(f"export needs onnx and onnxruntime ({e.name} is missing): {EXTRA}") from None
    from textrnn.export import onnx as to_onnx
    from textrnn.export import signature

    loaded = inference.load(run_path, device="cpu")
    refuse_scan_cells(loaded.model)
    tmp = rundir.folder_beside(out)
    try:
        made = to_onnx.write(loaded, tmp)
        texts = signature.text_files(loaded.task)
        signature.copy_files(run_path, texts, tmp)
        files = [*made["graphs"], *texts, "signature.json"]
        sig = {
            "format": "onnx",
            "opset": to_onnx.OPSET,
            "textrnn_version": __version__,
            "task": loaded.task_name,
            "name": loaded.pipeline.name,
            "files": files,
            **made,
            **signature.task_fields(loaded),
        }
        rundir.write_json(tmp / "signature.json", sig)
        rundir.replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sig


def refuse_scan_cells(model) -> None:
    """minGRU / minLSTM have no ONNX graph yet: their scan has no ONNX operator (a trace would fix T)."""
    from textrnn.nn.mincells import MinRNN

    for m in model.modules():
        if isinstance(m, MinRNN):
            raise UserError(f"export: cell {m.kind} has no ONNX graph yet (lstm, gru and rnn runs export)")
