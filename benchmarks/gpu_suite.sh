#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md (and the CPU bf16 ones, where the host CPU has native
# bfloat16), in one go on a machine with a CUDA GPU and 16 cores:
#
#   TEXTRNN_CORPORA=... TEXTRNN_HELDOUT=... bash benchmarks/gpu_suite.sh OUT [GPU_MINUTES]
#
# GPU, one job at a time on cores 0-3: the encoder path x precision x prefetch matrix on SST-2,
# Multi30k and PTB, then Multi30k de-en trained for GPU_MINUTES (default 4.5) and scored on
# test_2016 (greedy and beam 5). Beside it on cores 4-5: the CPU fp32 vs bf16 matrix (2 threads)
# and textrnn against the hand-written seq2seq reference. With CPU_METRICS=1 (the default), also
# SST-2 trained for 3 epochs in fp32 (cores 4-5) and bf16 (cores 6-7), and Multi30k for 2 epochs
# in fp32 (cores 8-11) and bf16 (cores 12-15): held-out metrics at equal epochs.
# Everything lands in OUT/results.tar.gz.
set -uo pipefail
out=${1:?usage: gpu_suite.sh OUT [GPU_MINUTES]}
minutes=${2:-4.5}
mkdir -p "$out"
runs=$(mktemp -d)
py=python3
on() { local cores=$1; shift; if command -v taskset >/dev/null; then taskset -c "$cores" "$@"; else "$@"; fi; }

(   # GPU
  for p in sst2 multi30k-de-en; do
    on 0-3 $py benchmarks/device_matrix.py pipelines/$p.yaml --device cuda --steps 300 \
      >"$out/gpu-matrix-$p.json" 2>"$out/gpu-matrix-$p.log"
  done
  on 0-3 $py benchmarks/device_matrix.py pipelines/ptb-small.yaml --device cuda --steps 300 \
    --precisions fp32,bf16,fp16 >"$out/gpu-matrix-ptb-small.json" 2>"$out/gpu-matrix-ptb-small.log"
  on 0-3 $py -m textrnn run pipelines/multi30k-de-en.yaml --device cuda --output "$runs/m30k-gpu" \
    --set train.max_minutes="$minutes" --set train.checkpoint_every=0 >"$out/m30k-gpu.log" 2>&1
  test=$TEXTRNN_HELDOUT/translation/multi30k/test_2016_flickr
  for beam in 1 5; do   # the CLI as a user runs it, process start included
    s=$(date +%s%N)
    on 0-3 $py -m textrnn translate "$runs/m30k-gpu" "$test.de" --device cuda --beam $beam -o "$out/m30k-gpu-beam$beam.en" 2>/dev/null
    echo "beam $beam: $(( ($(date +%s%N) - s) / 1000000 )) ms for 1000 sentences" >>"$out/m30k-gpu-test.txt"
    $py -m sacrebleu "$test.en" -i "$out/m30k-gpu-beam$beam.en" -m bleu chrf -b >>"$out/m30k-gpu-test.txt"
  done
) &
gpu=$!
(   # CPU speed, then the SST-2 metric change
  for p in "sst2 150" "multi30k-de-en 30"; do
    set -- $p
    on 4-5 $py benchmarks/device_matrix.py pipelines/$1.yaml --device cpu --threads 2 --impls padded \
      --precisions fp32,bf16 --steps "$2" >"$out/cpu-matrix-$1.json" 2>"$out/cpu-matrix-$1.log"
  done
  on 4-5 $py benchmarks/reference_seq2seq.py pipelines/multi30k-de-en.yaml --steps 30 --rounds 2 \
    --set train.threads=2 >"$out/cpu-reference-seq2seq.json" 2>"$out/cpu-reference-seq2seq.log"
  [ "${CPU_METRICS:-1}" = 1 ] || exit 0
  for prec in fp32:4-5 bf16:6-7; do
    on "${prec#*:}" $py -m textrnn run pipelines/sst2.yaml --device cpu --output "$runs/sst2-cpu-${prec%:*}" \
      --set train.precision="${prec%:*}" --set train.epochs=3 --set train.threads=2 --set train.max_minutes=4 \
      >"$out/sst2-cpu-${prec%:*}.log" 2>&1 &
  done
  wait
) &
cpu=$!
[ "${CPU_METRICS:-1}" = 1 ] && for prec in fp32:8-11 bf16:12-15; do   # the Multi30k metric change
  on "${prec#*:}" $py -m textrnn run pipelines/multi30k-de-en.yaml --device cpu --output "$runs/m30k-cpu-${prec%:*}" \
    --set train.precision="${prec%:*}" --set train.epochs=2 --set train.threads=4 --set train.max_minutes=5.5 \
    --set train.checkpoint_every=0 >"$out/m30k-cpu-${prec%:*}.log" 2>&1 &
done
wait
for r in "$runs"/*; do mkdir -p "$out/runs/$(basename "$r")"; cp "$r"/{summary.json,metrics.jsonl,pipeline.yaml} "$out/runs/$(basename "$r")/" 2>/dev/null; done
tar -czf "$out/results.tar.gz" -C "$out" --exclude results.tar.gz . && echo "results: $out/results.tar.gz"
for f in "$out"/*matrix*.json; do $py -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['pipeline'], d['device'], d['ratios'], [(v['impl'], v['precision'], v['tokens_per_s']) for v in d['variants']])" "$f"; done
cat "$out/m30k-gpu-test.txt" "$out/cpu-reference-seq2seq.json"
for r in "$out"/runs/*; do $py -c "import json,sys; s=json.load(open(sys.argv[1]+'/summary.json')); print(sys.argv[1].split('/')[-1], s.get('precision'), s.get('epochs'), round(s.get('tokens_per_s', 0)), {k: v for k, v in s.get('test', {}).items() if k in ('bleu', 'chrf', 'accuracy')})" "$r"; done
