"""A loaded model as ONNX graphs, checked against PyTorch with onnxruntime before anything is kept.

Exporter: the TorchScript one (`torch.onnx.export(..., dynamo=False)`). Measured with torch 2.13 /
onnxscript 0.7: the dynamo exporter (dynamo=True) unrolls nn.RNN over the example's length (the graph
then accepts that length only), stamps the example's length on LSTM / GRU output shapes and takes
about 14 s per graph; the TorchScript one maps LSTM, GRU and RNN, one or two directions, to the
ONNX LSTM / GRU / RNN operators with dynamic batch and length axes in under a second.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from textrnn.errors import UserError
from textrnn.export import graphs as G

OPSET = 17
TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted on any output
TRACE = (2, 7)  # (batch, length) of the traced example
CHECKS = ((1, 3), (1, 12), (5, 3), (5, 12))  # (batch, length) the check runs: 2 batch sizes x 2 lengths


def write_graph(graph: G.Graph, example: dict, path: Path) -> None:
    """Trace `graph` on `example` (name -> tensor) into an ONNX file with its dynamic axes named."""
    ports = graph.inputs + graph.outputs
    axes = {p.name: {i: d for i, d in enumerate(p.shape) if isinstance(d, str)} for p in ports}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # "the legacy TorchScript-based exporter"
        # "LSTM with a batch size other than 1 ..." and tracer warnings: the check below runs other shapes
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            graph.module.eval(),
            tuple(example[p.name] for p in graph.inputs),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=[p.name for p in graph.inputs],
            output_names=[p.name for p in graph.outputs],
            dynamic_axes=axes,
        )
    import onnx

    model = onnx.load(str(path))
    for info, p in zip([*model.graph.input, *model.graph.output], ports):
        for dim, size in zip(info.type.tensor_type.shape.dim, p.shape):
            if isinstance(size, int):
                dim.dim_value = size  # the exporter leaves some fixed sizes symbolic (e.g. memory's last)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def session(path: Path, threads: int = 1):
    """An onnxruntime CPU session on `threads` threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@torch.no_grad()
def difference(graph: G.Graph, sess, inputs: dict) -> float:
    """Largest |onnxruntime - PyTorch| over every output of `graph` on `inputs` (name -> tensor)."""
    want = graph.module(*[inputs[p.name] for p in graph.inputs])
    want = want if isinstance(want, tuple) else (want,)
    got = sess.run([p.name for p in graph.outputs], {k: v.numpy() for k, v in inputs.items()})
    return max(float(np.abs(w.float().numpy() - np.asarray(g, dtype=np.float32)).max()) for w, g in zip(want, got))


def write(loaded, folder: Path) -> dict:
    """Write the graphs of a loaded model (textrnn.load, on the CPU) into `folder`; check each against
    PyTorch at every CHECKS shape. Returns {"graphs": {file: ports}, "check": figures}."""
    build, cases = G.BUILDERS[loaded.task_name]
    task = loaded.task
    graphs = build(loaded.model.eval(), task)
    gen = torch.Generator().manual_seed(0)
    example = cases(graphs, task, *TRACE, gen)
    for g in graphs:
        write_graph(g, example[g.file], folder / g.file)
    sessions = {g.file: session(folder / g.file) for g in graphs}
    worst = {g.file: 0.0 for g in graphs}
    for B, T in CHECKS:
        inputs = cases(graphs, task, B, T, gen)
        for g in graphs:
            d = difference(g, sessions[g.file], inputs[g.file])
            if not d <= TOLERANCE:  # NaN fails too
                raise UserError(
                    f"export: {g.file} differs from the PyTorch model by {d:.2g} (over {TOLERANCE:g}) "
                    f"at batch {B}, length {T}; nothing was written"
                )
            worst[g.file] = max(worst[g.file], d)
    return {
        "graphs": {
            g.file: {"inputs": [port(p) for p in g.inputs], "outputs": [port(p) for p in g.outputs]} for g in graphs
        },
        "check": {
            "max_abs_diff": max(worst.values()),
            "per_graph": worst,
            "tolerance": TOLERANCE,
            "shapes": [{"batch": B, "length": T} for B, T in CHECKS],
        },
    }


def port(p: G.Port) -> dict:
    return {"name": p.name, "shape": list(p.shape), "dtype": p.dtype}
