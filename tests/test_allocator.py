"""allocator.pin: glibc keeps a training step's large buffers mapped instead of faulting them in each step."""

import os
import platform
import subprocess
import sys

import pytest

from textrnn.training import allocator

from helpers import TINY_TRAIN, write, write_tiny_data

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# a 64 MiB buffer allocated and freed five times, as a training step's buffers are: minor page faults
FAULTS = """
import resource, sys, torch
from textrnn.training import allocator
print(allocator.pin())
for _ in range(12):  # the heap grows until freed neighbours hold the next (aligned) request: a few steps
    x = torch.ones(16 << 20); del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    x = torch.ones(16 << 20); del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(**env) -> tuple[str, int]:
    e = {k: v for k, v in os.environ.items() if k not in allocator.ENV_KEYS + ("TEXTRNN_MALLOC",)} | env
    out = subprocess.run([sys.executable, "-c", FAULTS], env=e, capture_output=True, text=True, check=True)
    label, n = out.stdout.split("\n")[:2]
    return label, int(n)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc thresholds")
def test_pinned_thresholds_stop_the_page_faults_of_a_reused_large_buffer():
    pages = 5 * (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    label, pinned = faults()
    assert label == allocator.LABEL and pinned < pages // 20
    label, default = faults(TEXTRNN_MALLOC="default")  # glibc's own thresholds: each buffer faulted in anew
    assert label == "None" and default > pages // 2


@pytest.mark.parametrize("env", [{"TEXTRNN_MALLOC": "default"}, {"MALLOC_MMAP_THRESHOLD_": "65536"}])
def test_the_users_choice_stands(monkeypatch, env):
    monkeypatch.setattr(allocator, "_state", {})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert allocator.pin() is None


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc thresholds")
def test_a_cpu_run_says_so_in_its_header(tmp_path, cli):
    write_tiny_data(tmp_path)
    p = write(
        tmp_path / "c.yaml",
        "name: c\ntask: classify\ndata: {train: {path: sent.tsv}, valid: {path: sent.tsv}}\n"
        "tokenizer: {kind: whitespace}\nmodel: {embedding: {dim: 8}, encoder: {hidden: 8}}\n" + TINY_TRAIN % 1,
    )
    code, out, err = cli("run", p, "-o", tmp_path / "a")
    assert code == 0, err
    assert allocator.LABEL in out + err
