#!/usr/bin/env bash
# The H200 study of docs/results/h200.md, with infermeter's own commands. Run from the repo root
# on the GPU machine:  bench/gpu_study.sh stage1   then   bench/gpu_study.sh stage2
# stage1: build llama-server (CUDA) ‖ generate the model; sweep transformers (eager) and
#         llama.cpp (f16 GGUF). stage2: llama.cpp on the 8-bit GGUF; transformers with a
#         static cache, eager and compiled. Each sweep directory is packed as OUT/NAME.tgz.
# Knobs (env): OUT, CACHE, SHAPE, CONCS, N, DUR, CUDA (on|off), LIMIT (seconds for the stage).
set -uo pipefail
STAGE=${1:-stage1}
T0=$(date +%s)
LIMIT=${LIMIT:-570}
OUT=${OUT:-$PWD/study-out}
CACHE=${CACHE:-$PWD/.devcache}
SHAPE=${SHAPE:-llama-2-7b}
CONCS=${CONCS:-1,2,4,8,16,32,64}
HF_CONCS=${HF_CONCS:-1,4,16,64}
CUDA=${CUDA:-on}
GPU=${GPU:-h200}
mkdir -p "$OUT" "$CACHE"
export PYTHONUNBUFFERED=1
IM="python3 -m infermeter"
COMMON=(--input-tokens 512 --output-tokens 128 -n "${N:-128}" --duration "${DUR:-10}" --warmup 8
        --ignore-eos --gpu "$GPU" --model-shape "$SHAPE" --keep-going -q --format html)
log() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/study.log"; }
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
pack() { tar czf "$OUT/$1.tgz" -C "$OUT" "$1" && rm -rf "${OUT:?}/$1"; }

sweep() {  # NAME SECONDS_NEEDED ARGS...
  local name=$1 need=$2; shift 2
  if (( $(left) < need )); then log "skip $name: $(left) s left, $need needed"; return; fi
  log "sweep $name"
  # Never past the stage's limit: SIGINT ends a sweep keeping the points it finished.
  timeout -s INT $(( $(left) - 15 )) $IM sweep "$@" "${COMMON[@]}" --out "$OUT/$name" \
    >> "$OUT/study.log" 2>&1
  log "sweep $name rc=$?"
  pack "$name"
}

serve() {  # GGUF PORT -> starts llama-server, waits until it answers
  $IM engine serve --gguf "$1" --alias "$SHAPE" --slots 64 --ctx 1024 --cuda "$CUDA" \
    --port "$2" --cache-dir "$CACHE" >> "$OUT/serve.log" 2>&1 &
  for _ in $(seq 1 240); do
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$2/health', timeout=2)" \
      2>/dev/null && return 0
    sleep 1
  done
  log "llama-server did not come up"; return 1
}

build() {
  log "build llama-server (cuda $CUDA)"
  $IM engine build --cuda "$CUDA" --source .devcarry/llama-src.tar.gz --cache-dir "$CACHE" \
    > "$OUT/build.log" 2>&1
  log "build rc=$?"
}

model() {  # DTYPE [--no-hf]
  $IM engine model "$SHAPE" --dtype "$1" --hf-dtype bfloat16 --cache-dir "$CACHE" "${@:2}" \
    | tee "$OUT/model-$1.txt"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  > "$OUT/gpu.txt" 2>&1 || true
log "stage $STAGE on $(head -2 "$OUT/gpu.txt" | tail -1)"
case "$STAGE" in
  stage1)
    build & BUILD=$!
    log "generate $SHAPE (f16 GGUF; HF config only: initialised at random on the GPU)"
    model f16 --no-hf-weights > /dev/null
    log "model ready"
    HF=$(awk '/^hf:/{print $2}' "$OUT/model-f16.txt")
    GGUF=$(awk '/^gguf:/{print $2}' "$OUT/model-f16.txt")
    sweep hf-eager 150 --url "hf:$HF" -c "$HF_CONCS" --weight-dtype bf16
    wait $BUILD
    serve "$GGUF" 18080 && sweep llamacpp-f16 120 --url http://127.0.0.1:18080 -c "$CONCS" \
      --weight-dtype fp16
    pkill -f llama-server || true
    sweep hf-static 100 --url "hf:$HF" -c 1,8,64 --weight-dtype bf16 --hf-cache static
    ;;
  stage2)
    [ -x "$(ls "$CACHE"/llama.cpp-*/bin/llama-server 2>/dev/null | head -1)" ] || build
    log "generate $SHAPE (8-bit GGUF)"
    model q8_0 --no-hf > /dev/null
    GGUF=$(awk '/^gguf:/{print $2}' "$OUT/model-q8_0.txt")
    serve "$GGUF" 18081 && sweep llamacpp-q8 120 --url http://127.0.0.1:18081 -c "$CONCS" \
      --weight-dtype int8
    pkill -f llama-server || true
    [ -f "$OUT/model-f16.txt" ] || model f16 --no-hf-weights > /dev/null
    HF=$(awk '/^hf:/{print $2}' "$OUT/model-f16.txt")
    sweep hf-static 120 --url "hf:$HF" -c 1,8,64 --weight-dtype bf16 --hf-cache static
    sweep hf-compiled 150 --url "hf:$HF" -c 1,8,64 --weight-dtype bf16 --hf-cache static \
      --hf-compile
    ;;
esac
pkill -f llama-server || true
log "done"
