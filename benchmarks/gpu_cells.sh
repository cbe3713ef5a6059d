#!/usr/bin/env bash
# Issue 18's GPU table in one short call (docs/min-cells.md): training tokens/s of the LSTM (cuDNN) beside
# minGRU / minLSTM (the log-space scan) on the IMDB, SST-2 and PTB small shapes, at each pipeline's own
# batch and at a token budget 8x (IMDB) or 16x (SST-2) larger that fills a large GPU, plus IMDB at the
# LSTM's parameter count; first the CUDA tests (min cells' scan against the CPU loop among them).
#
#   TEXTRNN_CORPORA=... bash benchmarks/gpu_cells.sh OUT      # about 6-8 minutes on one H100
#
# Needs textrnn and its test extra installed over a CUDA build of torch. Not yet run on a GPU (none lent
# since it was written); its dry run below took 2.6 minutes on the 2-core CPU VM.
#
# DEVICE=cpu QUICK=1 runs the same commands on the CPU with few steps (a dry run of the script).
set -uo pipefail
out=${1:?usage: gpu_cells.sh OUT}
device=${DEVICE:-cuda}
mkdir -p "$out"
py=python3
export PYTHONUNBUFFERED=1
steps() { if [ "${QUICK:-0}" = 1 ]; then echo 2; else echo "$1"; fi; }

$py -m pytest -p no:cacheprovider tests/test_cuda.py >"$out/test_cuda.log" 2>&1
echo "tests/test_cuda.py: $(grep -E '(passed|failed|skipped|error).* in [0-9.]+s' "$out/test_cuda.log" | tail -1)"

cs() {  # name, pipeline, steps per round, then cells_speed.py's other arguments
  local name=$1 pipeline=$2 n=$3
  shift 3
  $py benchmarks/cells_speed.py "$pipeline" --device "$device" --steps "$(steps "$n")" --rounds 3 "$@" \
    >"$out/$name.json" 2>"$out/$name.log" || echo "$name failed: see $out/$name.log"
}
cs imdb pipelines/imdb.yaml 20 --cells lstm mingru minlstm mingru@2 minlstm@2
cs imdb-96k pipelines/imdb.yaml 20 --cells lstm mingru minlstm mingru@2 minlstm@2 --set train.batch_tokens=96000
cs imdb-equal pipelines/imdb.yaml 20 --cells lstm mingru minlstm --equal-params
cs sst2 pipelines/sst2.yaml 40 --cells lstm mingru minlstm mingru@2 minlstm@2
cs sst2-24k pipelines/sst2.yaml 40 --cells lstm mingru minlstm mingru@2 minlstm@2 --set train.batch_tokens=24000
cs ptb pipelines/ptb-small.yaml 40 --cells lstm mingru minlstm

for f in "$out"/*.json; do
  $py -c "import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-1][:-5], d['device'], {k: (v['tokens_per_s'], v['vs_lstm']) for k, v in d['cells'].items()})" "$f"
done
