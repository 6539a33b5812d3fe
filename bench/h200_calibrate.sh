#!/usr/bin/env bash
# The calibration section of docs/results/h200.md, from the committed sweeps (CPU only, seconds):
# one profile per engine (leave-one-out error inside), then held-out checks of two profiles on
# runs they never saw (new concurrencies, the other model shape).
#   bench/h200_calibrate.sh [RESULTS_DIR]   (default docs/results/h200)
set -euo pipefail
R=${1:-docs/results/h200}
IM="python -m infermeter"
cal() {  # NAME SHAPE DTYPE SWEEP...
  local name=$1 shape=$2 dtype=$3; shift 3
  local args=(); for s in "$@"; do args+=(--calibrate "$R/$s"); done
  $IM estimate --model "$shape" --gpu h200 --dtype "$dtype" "${args[@]}" --engine "$name" \
    --out "$R/$name-profile.json"
}
cal llamacpp-f16 llama-2-7b fp16 llamacpp-f16 llamacpp-f16-lengths
cal llamacpp-f16-steady llama-2-7b fp16 llamacpp-f16-steady llamacpp-f16-lengths
cal llamacpp-q8 llama-2-7b int8 llamacpp-q8 llamacpp-q8-lengths
cal llamacpp-f16-8b llama-3.1-8b fp16 llamacpp-f16-8b
cal hf-eager llama-2-7b bf16 hf-eager
cal hf-eager-8b llama-3.1-8b bf16 hf-eager-8b
cal hf-static llama-2-7b bf16 hf-static
cal hf-compiled llama-2-7b bf16 hf-compiled hf-compiled-b
cal transformers-serve llama-2-7b bf16 transformers-serve
chk() {  # PROFILE SHAPE SWEEP...
  local prof=$1 shape=$2; shift 2
  local args=(); for s in "$@"; do args+=(--check "$R/$s"); done
  echo "## $prof -> $shape: $*"
  $IM estimate --model "$shape" --gpu h200 --dtype fp16 --profile "$R/$prof-profile.json" \
    "${args[@]}"
}
chk llamacpp-f16 llama-2-7b llamacpp-f16-val
chk llamacpp-f16 llama-3.1-8b llamacpp-f16-8b llamacpp-f16-8b-val
chk llamacpp-f16-steady llama-3.1-8b llamacpp-f16-8b-steady llamacpp-f16-8b-steady-b
