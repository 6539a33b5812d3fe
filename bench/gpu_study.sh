#!/usr/bin/env bash
# The H200 study of docs/results/h200.md, with infermeter's own commands. Run from the repo root
# on the GPU machine, each stage one self-contained command (a fresh device machine holds
# nothing; one still warm from the call before, the next call within its 30 s, keeps the
# repo's ignored folders, so the server built and the models written into .imcache/ there are
# used again and not rebuilt: chain e.g. `slots` then `predict-held` back to back):
#   bench/gpu_study.sh build   llama-server (CUDA) ‖ 7B models ‖ transformers static/compiled
#                              sweeps; then llama.cpp f16 as shipped vs without its host
#                              prompt cache; the built server packed into OUT for the next stage
#   bench/gpu_study.sh more    llama.cpp q8_0; `transformers serve` (continuous batching);
#                              the Llama-3.1-8B shape; prompt-length points for calibration
#   bench/gpu_study.sh final   compiled transformers at batch 8/64; transformers serve again
#   bench/gpu_study.sh validate  held-out points for the calibration (llama.cpp f16 at new
#                              concurrencies and prompt lengths; 8B at new concurrencies)
#   bench/gpu_study.sh steady  llama.cpp f16 (7B, 8B) at 25 s a point, starts ramped over 5 s
#   bench/gpu_study.sh predict-fit   the sweep an engine model is fitted on (llama.cpp f16
#                              7B, --cache-ram 0, a fresh server, c = 1…64), after building
#                              the server unless one is carried in .devcarry-cuda/
#   bench/gpu_study.sh predict       predict-fit, then predict-held at rates from its sweep
#   bench/gpu_study.sh predict-held  held-out runs, each group on a fresh server: Poisson at
#                              RATES (30/60/90 % of predict-fit's top throughput), c = 12 and
#                              48, another length mix (bench/prediction.py compares)
#   bench/gpu_study.sh span    why the length mix decoded slower than the fixed lengths: on one
#                              fresh 64-slot server c = 8 fixed, then the mix, then fixed again;
#                              then the mix on a fresh 8-slot server (no slot to scatter to)
#   bench/gpu_study.sh slots   the decode step by which slots are busy: streams pinned to
#                              contiguous or scattered slot ids (bench/slot_runs.py), with
#                              llama.cpp's per-slot KV streams and with one unified stream
#   bench/gpu_study.sh prep    the CUDA server and the 7B f16 GGUF into CACHE, nothing else
#   bench/gpu_study.sh replicas  plan's replica count on one GPU: one llama.cpp replica of the
#                              7B f16 swept and fitted, then the rate plan says needs two,
#                              measured on one replica and on two sharing the GPU behind
#                              the proxy (bench/prediction.py replicas); RSLOTS, RIN, ROUT,
#                              RFITC, RPAST, REQ change its slots, lengths, fit sweep, the
#                              rate asked (× one replica's) and requests a run
#   bench/gpu_study.sh tserve-waves  `transformers serve` at c = 12 in three waves, twice on
#                              one server: whether its fast steps belong to a first wave
#                              (TWN requests a run, 36; TWRUNS runs, 2)
#   bench/gpu_study.sh repeat  one load (c = REPC) on REPN fresh servers in turn: how far a
#                              fresh server's TPOT repeats from run to run
#   bench/gpu_study.sh tserve-gil  tserve-waves' load on a server as shipped, then on one
#                              whose interpreter switches threads every GILSW s (0.0002)
#   bench/gpu_study.sh tserve-sdpa  tserve-waves' load (eight waves) on a server whose first
#                              layer's attention calls, CPU time, allocator counters and
#                              collections are logged (bench/tserve_probe)
#   bench/gpu_study.sh tserve-alloc  the same, then again with expandable allocator segments
#   bench/gpu_study.sh tserve-stacks  tserve-sdpa, the model thread's Python stack sampled too
#   bench/gpu_study.sh tserve-cudnn  tserve-sdpa's load on a server with torch's cuDNN
#                              attention switched off (SDPA_CUDNN=0), then on one as shipped,
#                              then with TORCH_CUDNN_SDPA_AVOID_RECOMPILE=1 (TCONFS picks)
#   bench/gpu_study.sh tserve-native  tserve-sdpa's load while py-spy samples the server's
#                              native and Python stacks in back-to-back windows of
#                              SPY_S seconds (6), each named by its start on the clock the
#                              attention log uses (carry .whl-spy: the py-spy wheel)
#   bench/gpu_study.sh tserve-predict  `transformers serve` (continuous batching, 7B bf16):
#                              the fit sweep c = 1…64, then held out on the same server:
#                              Poisson at 30/60/90 % of its top throughput, the length
#                              mix, c = HELDC (12,48) (carry .whl-serve: its web stack);
#                              AGAIN=1 sweeps c = 1,2,4,8 once more after them
# .whl holds the wheels infermeter needs beyond the image (msgspec, orjson, pydantic,
# pydantic-core, annotated-types, typing-inspection, aiohttp and its stack, typer, click,
# rich, gguf), or the same unpacked into one site.txz; the stage stops at once without them.
# .whl-serve holds the wheels transformers serve needs beyond the image (transformers 5.23,
# fastapi, starlette, uvicorn, h11, openai, httpx2, httpcore2, truststore, jiter, sniffio,
# idna, anyio, opentelemetry-api), or the same unpacked into one site.txz (5 MB, not 19).
# (Session 1 ran an earlier version of this script as `stage1`: transformers eager and
# llama.cpp f16 with the recipe's defaults; see git history.)
# Every sweep directory lands in OUT/sweeps.tgz (OUT holds at most 8 files).
# Knobs (env): OUT, CACHE, LIMIT (seconds for the stage), GPU; CORE_MAP=1 times every
# core before the stage and after it (bench/core_map.py: a slow core, a clock that follows
# the host's load, a hidden sibling); TSERVE_CPUS, the CPUs transformers serve may run on.
set -uo pipefail
STAGE=${1:-build}
T0=$(date +%s)
LIMIT=${LIMIT:-560}
OUT=${OUT:-$PWD/study-out}
CACHE=${CACHE:-$PWD/.imcache}
# the catalogue GPU the analysis (and an engine model fitted here) is told: the one present
GPU=${GPU:-$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 \
  | grep -q H100 && echo h100-sxm || echo h200)}
RES=/tmp/study-sweeps
# the source pack `engine pack-source --out .devcarry/llama-src.tar.xz` writes (5 MB; a
# .tar.gz, 11 MB before the optional backends were left out, is taken too)
SRC=$(ls .devcarry/llama-src.tar.* 2>/dev/null | head -1)
# a machine kept warm from the call before still holds that stage's runs here: start empty,
# so this stage packs only its own
rm -rf "$RES"
mkdir -p "$OUT" "$CACHE" "$RES" "$HOME/.cache/huggingface/hub"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
IM="python3 -m infermeter"
NCPU=$(nproc)
LOW="0-3"                   # the benchmark (and an in-process engine) run on these cores,
HIGH="4-$((NCPU - 1))"      # builds, model writing and servers on these
if (( NCPU < 8 )); then LOW=0; HIGH="0-$((NCPU - 1))"; fi   # a dry run on a small machine
S7=${S7:-llama-2-7b}; S8=${S8:-llama-3.1-8b}; CUDA=${CUDA:-on}   # dry run: S7=S8=tiny CUDA=off
COMMON=(--input-tokens 512 --output-tokens 128 -n 256 --duration 6 --gpu "$GPU"
        --keep-going -q --format html)
EOS=--ignore-eos   # (the generated models never emit EOS; transformers serve rejects the field)
log() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$RES/study.log"; }
left() { echo $(( LIMIT - ($(date +%s) - T0) )); }
finish() {
  pkill -f llama-server; pkill -f "transformers serve"
  mkdir -p "$RES/server-logs" && cp "$CACHE"/logs/*.log "$RES/server-logs/" 2>/dev/null
  tar czf "$OUT/sweeps.tgz" -C "$RES" . && log "packed $(du -h "$OUT/sweeps.tgz" | cut -f1)"
  cp "$RES/study.log" "$OUT/study.log"
}
trap finish EXIT

sweep() {  # NAME SECONDS_NEEDED ARGS...
  local name=$1 need=$2; shift 2
  if (( $(left) < need )); then log "skip $name: $(left) s left, $need needed"; return; fi
  log "sweep $name"
  # Never past the stage's limit: SIGINT ends a sweep keeping the points it finished.
  local t=$(( $(left) - 25 )); (( ${CAP:-0} > 0 && CAP < t )) && t=$CAP
  timeout -s INT "$t" taskset -c "$LOW" $IM sweep "${COMMON[@]}" $EOS "$@" \
    --out "$RES/$name" >> "$RES/study.log" 2>&1
  log "sweep $name rc=$?"
}

wait_up() {  # PORT PATH PID -> waits until the server answers (or its process is gone)
  for _ in $(seq 1 300); do
    kill -0 "$3" 2>/dev/null || { log "server on $1 exited"; return 1; }
    python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$1$2', timeout=2)" \
      2>/dev/null && return 0
    sleep 1
  done
  log "server on $1 did not come up"; return 1
}

serve() {  # GGUF PORT SHAPE [llama-server args...] -> starts llama-server, waits until it answers
  local gguf=$1 port=$2 shape=$3; shift 3
  local extra=(); for a in "$@"; do extra+=("--server-arg=$a"); done
  taskset -c "$HIGH" $IM engine serve --gguf "$gguf" --alias "$shape" --slots "${SLOTS:-64}" \
    --ctx "${CTX:-1024}" \
    --cuda "$CUDA" --port "$port" --cache-dir "$CACHE" "${extra[@]}" >> "$RES/serve.log" 2>&1 &
  wait_up "$port" /health $!
}

stop_servers() { pkill -f llama-server; pkill -f "transformers serve"; sleep 3; }

model() {  # SHAPE DTYPE DIR [flags] -> prints the maker's output
  taskset -c "$HIGH" $IM engine model "$1" --dtype "$2" --hf-dtype bfloat16 --out "$3" "${@:4}"
}

tserve_up() {  # transformers serve (continuous batching) on the 7B bf16 folder, port 18085; its
  # info log says whether CUDA graphs and asynchronous batching are on (they set its steps)
  ( cd /tmp && PYTHONPATH=${GILPATH:+$GILPATH:}/tmp/site-serve:$PYTHONPATH \
      taskset -c "${TSERVE_CPUS:-$HIGH}" \
      python3 -m transformers.cli.transformers serve "$M7-hf/hf" --port 18085 --device cuda \
      --dtype bfloat16 --continuous-batching --log-level info >> "$RES/tserve.log" 2>&1 ) &
  wait_up 18085 /health $!
}

spy_windows() {  # NAME -> py-spy over the serving process in windows of SPY_S seconds until
  # RES/spy-stop appears; each window's start is read from /proc/uptime, the monotonic clock
  # (to 10 ms) that the attention log's perf_counter stamps are on
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/spy .whl-spy/*.whl \
    >> "$RES/study.log" 2>&1 || { log "no py-spy"; return; }
  local pid; pid=$(pgrep -f "transformers.cli.transformers serve" | head -1)
  local i=0
  while [ ! -e "$RES/spy-stop" ] && (( i < 40 )); do
    local t0; t0=$(cut -d' ' -f1 /proc/uptime)
    timeout 20 /tmp/spy/bin/py-spy record --native --threads --pid "$pid" -r "${SPY_HZ:-100}" \
      -d "${SPY_S:-6}" --format raw -o "$RES/$1-spy-$t0.txt" >> "$RES/study.log" 2>&1 \
      || { log "py-spy failed"; return; }
    i=$((i + 1))
  done
}

held_rates() {  # SWEEP -> 30/60/90 % of the sweep's highest request throughput (RATES wins)
  echo "${RATES:-$(python3 -c "import json; s=json.load(open('$RES/$1/sweep.json'))
top=max(p['summary']['request_throughput_rps'] for p in s['points'] if p['status']=='ok')
print(','.join(f'{f*top:.3f}' for f in (0.3, 0.6, 0.9)))")}"
}

tserve_sweep() {  # CAP -> transformers serve swept at c = 1, 4, 16, 64
  tserve_up && \
    EOS= CAP=$1 sweep transformers-serve 60 --url http://127.0.0.1:18085 --model "$M7-hf/hf" \
      -c 1,4,16,64 --model-shape "$S7" --weight-dtype bf16 --warmup 4
  stop_servers
}

serve_site() {  # transformers serve's web stack (and a newer transformers) into /tmp/site-serve:
  # wheels, or the same unpacked and packed as site.txz (a quarter of their size to carry)
  mkdir -p /tmp/site-serve
  if [ -f .whl-serve/site.txz ]; then xz -d < .whl-serve/site.txz | tar -C /tmp/site-serve -xf -
  else python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target \
    /tmp/site-serve .whl-serve/*.whl >> "$RES/study.log" 2>&1; fi
}

unpack_server() {  # the server built by `build` (kept between sessions in .devcarry-cuda/)
  for d in .devcarry .devcarry-cuda; do
    if ls $d/llama-cuda.txz.* > /dev/null 2>&1; then
      cat $d/llama-cuda.txz.* | xz -d | tar -C "$CACHE" -xf - && log "carried server unpacked"
      return
    fi
  done
}

server_and_model() {  # PACK -> the CUDA server (carried, else built beside the 7B f16 GGUF
  # being written; PACK=1 ships a fresh build in OUT for the next stage), and that GGUF
  unpack_server
  if ! ls "$CACHE"/llama.cpp-*/bin/llama-server > /dev/null 2>&1; then
    ( taskset -c "$HIGH" $IM engine build --cuda "$CUDA" --source "$SRC" \
        --cache-dir "$CACHE" > "$RES/build.log" 2>&1; echo "build rc=$?" >> "$RES/build.log" ) &
    local build=$!
    model "$S7" f16 "$M7-f16" --no-hf > "$RES/model-f16.txt" 2>&1
    wait $build; log "$(tail -1 "$RES/build.log")"
    [ "$1" = 1 ] && { (cd "$CACHE" && tar -cf - --exclude="*.log" llama.cpp-0.3.36-*) \
      | xz -T8 -4 | split -b 15M - "$OUT/llama-cuda.txz." && log "server packed"; }
  else
    model "$S7" f16 "$M7-f16" --no-hf > "$RES/model-f16.txt" 2>&1
  fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
  > "$RES/gpu.txt" 2>&1 || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', \
transformers.__version__)" >> "$RES/gpu.txt" 2>&1
log "stage $STAGE on $(sed -n 2p "$RES/gpu.txt"); $(tail -1 "$RES/gpu.txt"); $NCPU cores"
# Every stage writes a model and runs infermeter: a package the image lacks would otherwise
# surface only after the build, minutes of device time later, as a server with no model.
missing=$(python3 -c "import importlib.util as u
print(' '.join(m for m in ('gguf', 'msgspec', 'orjson', 'pydantic', 'aiohttp', 'typer', 'rich')
               if u.find_spec(m) is None))")
if [ -n "$missing" ]; then log "missing Python packages: $missing (carry them in .whl)"; exit 1; fi
M7=$CACHE/models/$S7
core_map() {  # WHEN -> bench/core_map.py over every CPU into RES/core-map-WHEN.{txt,json}
  [[ ${CORE_MAP:-0} == 1 ]] || return 0
  timeout 90 python3 bench/core_map.py --json "$RES/core-map-$1.json" \
    > "$RES/core-map-$1.txt" 2>&1; log "core map ($1): $(sed -n 2,7p "$RES/core-map-$1.txt")"
}
core_map before
case "$STAGE" in
  prep)
    # the CUDA server and the 7B f16 GGUF only: kept in CACHE while the machine stays warm, so
    # a stage called right after starts from them
    server_and_model 0
    ;;
  build)
    log "build llama-server (CUDA) and write the 7B GGUFs, beside the transformers sweeps"
    ( taskset -c "$HIGH" $IM engine build --cuda "$CUDA" --source "$SRC" \
        --cache-dir "$CACHE" > "$RES/build.log" 2>&1; echo "build rc=$?" >> "$RES/build.log" ) &
    BUILD=$!
    ( /usr/bin/time -f "%e s" -o "$RES/model-f16.time" \
        $IM engine model "$S7" --dtype f16 --hf-dtype bfloat16 --no-hf-weights \
        --out "$M7-f16" > "$RES/model-f16.txt" 2>&1 ) &
    MODEL=$!
    # transformers needs only the config (random init on the GPU): write it first
    model "$S7" f16 "$M7-hfcfg" --no-hf-weights --no-gguf > /dev/null 2>&1 &
    for _ in $(seq 1 120); do [ -f "$M7-hfcfg/hf/config.json" ] && break; sleep 1; done
    HF="$M7-hfcfg/hf"
    H=(--model-shape "$S7" --weight-dtype bf16 --warmup 2)
    CAP=130 sweep hf-static 100 --url "hf:$HF" -c 1,8,64 --hf-cache static "${H[@]}"
    CAP=200 sweep hf-compiled 120 --url "hf:$HF" -c 1,8,64 --hf-cache static --hf-compile "${H[@]}"
    wait $BUILD; log "$(tail -1 "$RES/build.log")"
    wait $MODEL; log "7B f16 GGUF written in $(cat "$RES/model-f16.time")"
    # ship the built server back (the next stage carries it instead of building again)
    (cd "$CACHE" && tar -cf - --exclude="*.log" llama.cpp-0.3.36-*) | xz -T8 -4 \
      | split -b 15M - "$OUT/llama-cuda.txz." && log "server packed: $(ls "$OUT" | tr '\n' ' ')"
    G=(--model-shape "$S7" --weight-dtype fp16 --warmup 4)
    serve "$M7-f16/model.gguf" 18080 "$S7" && \
      sweep llamacpp-f16-default 60 --url http://127.0.0.1:18080 -c 1,8 "${G[@]}"
    stop_servers
    serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && \
      sweep llamacpp-f16 130 --url http://127.0.0.1:18081 -c 1,2,4,8,16,32,64 "${G[@]}"
    stop_servers
    serve "$M7-f16/model.gguf" 18082 "$S7" --cache-ram 0 -t 2 && \
      sweep llamacpp-f16-t2 40 --url http://127.0.0.1:18082 -c 1,8 "${G[@]}"
    ;;
  more)
    unpack_server
    ls "$CACHE"/llama.cpp-*/bin/llama-server > /dev/null 2>&1 || {
      log "no carried server: building"
      taskset -c "$HIGH" $IM engine build --cuda "$CUDA" --source "$SRC" \
        --cache-dir "$CACHE" > "$RES/build.log" 2>&1; }
    # transformers serve needs its web stack (and runs the carried transformers 5.23)
    serve_site
    M8=$CACHE/models/$S8-b
    ( model "$S7" q8_0 "$M7-q8" --no-hf > "$RES/model-q8.txt" 2>&1
      model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1   # bf16 weights
      model "$S8" f16 "$M8" --no-hf-weights > "$RES/model-8b.txt" 2>&1 ) &
    MODELS=$!
    for _ in $(seq 1 200); do [ -f "$M7-q8/model.gguf" ] && break; sleep 1; done
    log "7B q8_0 GGUF ready"
    G=(--model-shape "$S7" --warmup 4)
    serve "$M7-q8/model.gguf" 18083 "$S7" --cache-ram 0 && \
      sweep llamacpp-q8 130 --url http://127.0.0.1:18083 -c 1,2,4,8,16,32,64 \
        --weight-dtype int8 "${G[@]}"
    stop_servers
    # prompt lengths at c=1, for the TTFT calibration (prefill at several sizes)
    SLOTS=4 CTX=4096 serve "$M7-q8/model.gguf" 18086 "$S7" --cache-ram 0 && \
      sweep llamacpp-q8-lengths 40 --url http://127.0.0.1:18086 -c 1 \
        --input-tokens 128,2048 --output-tokens 32 --model-shape "$S7" \
        --weight-dtype int8 --warmup 2 --duration 4
    stop_servers
    for _ in $(seq 1 300); do [ -f "$M8/hf/config.json" ] && break; sleep 1; done
    log "models ready"
    serve "$M8/model.gguf" 18084 "$S8" --cache-ram 0 && \
      sweep llamacpp-f16-8b 80 --url http://127.0.0.1:18084 -c 1,4,16,64 \
        --model-shape "$S8" --weight-dtype fp16 --warmup 4
    stop_servers
    # the compiled decode step at batch 8 and 64 (batch 1 ran in the build stage)
    CAP=170 sweep hf-compiled-b 120 --url "hf:$M7-hf/hf" -c 8,64 --hf-cache static \
      --hf-compile --model-shape "$S7" --weight-dtype bf16 --warmup 2
    wait $MODELS
    tserve_sweep 110
    sweep hf-eager-8b 60 --url "hf:$M8/hf" -c 1,16,64 --model-shape "$S8" \
      --weight-dtype bf16 --warmup 2
    ;;
  final)
    # the compiled decode step at batch 8 and 64, now that batches are padded to one size
    # (bench/hf_compile_probe.py ran batch 8 fine on its own: 6.97 ms a step); then
    # transformers serve with continuous batching
    model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1 &
    MODELS=$!
    serve_site
    model "$S7" f16 "$M7-hfcfg" --no-hf-weights --no-gguf > /dev/null 2>&1
    CAP=200 sweep hf-compiled-b 120 --url "hf:$M7-hfcfg/hf" -c 8,64 --hf-cache static \
      --hf-compile --model-shape "$S7" --weight-dtype bf16 --warmup 2
    wait $MODELS
    tserve_sweep 150
    ;;
  validate)
    # held-out points for the calibration: llama.cpp f16 between the calibrated concurrencies,
    # f16 prompt lengths, and the 8B shape at new concurrencies (predicted from the 7B profile)
    unpack_server
    M8=$CACHE/models/$S8-b
    ( model "$S8" f16 "$M8" --no-hf > "$RES/model-8b.txt" 2>&1 ) &
    MODELS=$!
    model "$S7" f16 "$M7-f16" --no-hf > "$RES/model-f16.txt" 2>&1
    G=(--model-shape "$S7" --weight-dtype fp16 --warmup 4)
    serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && \
      sweep llamacpp-f16-val 100 --url http://127.0.0.1:18081 -c 3,6,12,24,48 "${G[@]}"
    stop_servers
    SLOTS=4 CTX=4096 serve "$M7-f16/model.gguf" 18086 "$S7" --cache-ram 0 && \
      sweep llamacpp-f16-lengths 40 --url http://127.0.0.1:18086 -c 1 \
        --input-tokens 128,2048 --output-tokens 32 --model-shape "$S7" \
        --weight-dtype fp16 --warmup 2 --duration 4
    stop_servers
    wait $MODELS
    serve "$M8/model.gguf" 18084 "$S8" --cache-ram 0 && \
      sweep llamacpp-f16-8b-val 60 --url http://127.0.0.1:18084 -c 2,8,32 \
        --model-shape "$S8" --weight-dtype fp16 --warmup 4
    stop_servers
    ;;
  steady)
    # steady-state points: 25 s per point with the streams' starts spread over 5 s, so a point
    # is many request lifetimes and not one lock-step wave (the 6 s points of `build`/`more`
    # are one or two waves at c >= 16)
    unpack_server
    M8=$CACHE/models/$S8-b
    ( model "$S8" f16 "$M8" --no-hf > "$RES/model-8b.txt" 2>&1 ) &
    MODELS=$!
    LONG=(-n 100000 --duration ${DUR:-25} --ramp-up 5 --warmup 4)
    C7=${C7-1,2,4,8,16,24,32,48,64}; C8=${C8-1,4,16,64}   # (an empty list skips that model)
    if [ -n "$C7" ]; then
      model "$S7" f16 "$M7-f16" --no-hf > "$RES/model-f16.txt" 2>&1
      serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && \
        sweep llamacpp-f16-steady 100 --url http://127.0.0.1:18081 -c "$C7" \
          --model-shape "$S7" --weight-dtype fp16 "${LONG[@]}"
      stop_servers
    fi
    wait $MODELS
    serve "$M8/model.gguf" 18084 "$S8" --cache-ram 0 && \
      sweep llamacpp-f16-8b-steady${TAG8:-} 60 --url http://127.0.0.1:18084 -c "$C8" \
        --model-shape "$S8" --weight-dtype fp16 "${LONG[@]}"
    stop_servers
    ;;
  predict-fit|predict)
    server_and_model "$([ "$STAGE" = predict ] && echo 0 || echo 1)"
    P=(--model-shape "$S7" --weight-dtype fp16 -n 100000 --duration "${PDUR:-10}" --ramp-up 2
       --warmup 4)
    serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && \
      sweep predict-fit 60 --url http://127.0.0.1:18081 -c "${FITC:-1,2,4,8,16,32,64}" "${P[@]}"
    stop_servers
    [ "$STAGE" = predict ] || { log "done"; exit 0; }
    # the held-out rates: 30/60/90 % of the fit sweep's highest request throughput
    RATES=$(held_rates predict-fit)
    log "held-out rates $RATES"
    ;&
  predict-held)
    [ "$STAGE" = predict ] || { unpack_server; model "$S7" f16 "$M7-f16" --no-hf > "$RES/model-f16.txt" 2>&1; }
    P=(--model-shape "$S7" --weight-dtype fp16 -n 100000 --duration "${PDUR:-10}" --warmup 4)
    HELD=" ${HELD:-rate c mix} "   # the held-out groups to run, each on a fresh server
    if [[ $HELD == *" rate "* ]]; then
      serve "$M7-f16/model.gguf" 18082 "$S7" --cache-ram 0 && \
        sweep predict-held-rate 40 --url http://127.0.0.1:18082 --rate "$RATES" "${P[@]}"
      stop_servers
    fi
    if [[ $HELD == *" c "* ]]; then
      serve "$M7-f16/model.gguf" 18083 "$S7" --cache-ram 0 && \
        sweep predict-held-c 30 --url http://127.0.0.1:18083 -c 12,48 --ramp-up 2 "${P[@]}"
      stop_servers
    fi
    if [[ $HELD == *" mix "* ]]; then
      serve "$M7-f16/model.gguf" 18084 "$S7" --cache-ram 0 && \
        sweep predict-held-mix 25 --url http://127.0.0.1:18084 -c 8 --ramp-up 2 "${P[@]}" \
          --input-tokens uniform:256:768 --output-tokens uniform:64:192
      stop_servers
    fi
    ;;
  span)
    server_and_model 0
    P=(--model-shape "$S7" --weight-dtype fp16 -n 100000 --duration "${PDUR:-10}" --ramp-up 2
       --warmup 4 -c 8)
    MIX=(--input-tokens uniform:256:768 --output-tokens uniform:64:192)
    serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && {
      sweep span-1-fixed-fresh 25 --url http://127.0.0.1:18081 "${P[@]}"
      sweep span-2-mix-after 25 --url http://127.0.0.1:18081 "${P[@]}" "${MIX[@]}"
      sweep span-3-fixed-after-mix 25 --url http://127.0.0.1:18081 "${P[@]}"
    }
    stop_servers
    SLOTS=8 serve "$M7-f16/model.gguf" 18082 "$S7" --cache-ram 0 && \
      sweep span-4-mix-8-slots 25 --url http://127.0.0.1:18082 "${P[@]}" "${MIX[@]}"
    stop_servers
    ;;
  slots)
    server_and_model 0
    # one ubatch per run of consecutive busy slot ids: the same 4, 8 or 16 streams, pinned
    # to contiguous or scattered slots (bench/slot_runs.py); then one unified KV stream
    L=(0 0,1,2,3 0,16,32,48 "$(seq -s, 0 7)" "$(seq -s, 0 8 56)" 0,1,2,3,32,33,34,35
       "$(seq -s, 0 15)" "$(seq -s, 0 4 60)")
    for kv in split unified; do
      (( $(left) < 90 )) && { log "skip $kv: $(left) s left"; break; }
      U=(); [ $kv = unified ] && U=(--kv-unified)
      # (each table straight into OUT too: the stage may be cut off before it packs)
      serve "$M7-f16/model.gguf" 18083 "$S7" --cache-ram 0 "${U[@]}" && \
        timeout -s INT $(( $(left) - 15 )) taskset -c "$LOW" python3 bench/slot_runs.py \
          --url http://127.0.0.1:18083 --layouts "${L[@]}" --rounds "${ROUNDS:-3}" \
          --tokens 64 "${U[@]}" 2>&1 | tee "$RES/slots-$kv.md" "$OUT/slots-$kv.md" \
          | tee -a "$RES/study.log"
      stop_servers
    done
    ;;
  replicas)
    # plan's replica count on one GPU: two llama-server replicas of the 7B f16, every layer
    # offloaded, each on its own cores, behind infermeter's round-robin proxy
    server_and_model 0
    BIN=$(ls "$CACHE"/llama.cpp-*/bin/llama-server | head -1)
    TOLD=(--gpu "$GPU" --model-shape "$S7" --weight-dtype fp16)
    [ "$CUDA" = off ] && TOLD=()   # a dry run on a CPU: nothing to tell the analysis
    timeout -s INT $(( $(left) - 15 )) taskset -c "$LOW" python3 bench/prediction.py replicas \
      --binary "$BIN" --gguf "$M7-f16/model.gguf" --shape "$S7" --gpu-layers 99 --threads 4 \
      --cores "${RCORES:-4-9,10-15}" --client-core "${RCLIENT:-0-1}" --proxy-core "${RPROXY:-2-3}" \
      --slots "${RSLOTS:-8}" --past "${RPAST:-1.6}" --requests "${REQ:-80}" \
      --input-tokens "${RIN:-256}" --output-tokens "${ROUT:-64}" --fit-concurrency ${RFITC:-1 2 4 8} \
      "${TOLD[@]}" --work "$RES/replicas" 2>&1 \
      | tee "$OUT/replicas.md" | tee -a "$RES/study.log"
    ;;
  tserve-waves)
    # when transformers serve decodes fast: c = 12 sent all at once, three waves of 12 (each
    # wave starting as the last ends), then the same again on the same server
    serve_site
    model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1
    tserve_up || exit 1
    P=(--url http://127.0.0.1:18085 --model "$M7-hf/hf" --model-shape "$S7" --weight-dtype bf16
       -n "${TWN:-36}" --duration 600 --warmup 0 -c 12)
    for i in $(seq 1 "${TWRUNS:-2}"); do EOS= sweep "tserve-waves-$i" 40 "${P[@]}"; done
    stop_servers
    ;;
  repeat)
    # how far one load repeats on fresh servers: c = REPC (16,32) on each of REPN (3) fresh
    # 64-slot servers in turn, 10 s a point as the fit sweep runs it
    server_and_model 0
    P=(--model-shape "$S7" --weight-dtype fp16 -n 100000 --duration "${PDUR:-10}" --ramp-up 2
       --warmup 4)
    for i in $(seq 1 "${REPN:-3}"); do
      serve "$M7-f16/model.gguf" 18081 "$S7" --cache-ram 0 && \
        sweep "repeat-$i" 40 --url http://127.0.0.1:18081 -c "${REPC:-16,32}" "${P[@]}"
      stop_servers
    done
    ;;
  tserve-gil)
    # whether the interpreter's lock sets transformers serve's slow steps: the waves of
    # tserve-waves on a server as shipped, then on one whose threads hand the lock over every
    # GILSW seconds (5 ms as shipped); each server's threads' CPU sampled once a second
    serve_site
    model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1
    P=(--url http://127.0.0.1:18085 --model "$M7-hf/hf" --model-shape "$S7" --weight-dtype bf16
       -n 36 --duration 600 --warmup 0 -c 12)
    threads() {  # NAME -> per-thread CPU of the server, once a second, until it stops
      local pid; pid=$(pgrep -f "transformers serve" | head -1)
      ( while kill -0 "$pid" 2>/dev/null; do echo "t $(date +%s.%N)"
        for t in /proc/"$pid"/task/*; do   # thread id, name, user and system ticks
          echo "${t##*/} $(tr ' ' _ < "$t/comm") $(sed 's/.*) //' "$t/stat" | cut -d' ' -f12,13)"
        done; sleep 1; done ) > "$RES/threads-$1.log" 2>&1 &
    }
    tserve_up || exit 1
    threads default
    EOS= sweep tserve-gil-default-1 40 "${P[@]}"
    EOS= sweep tserve-gil-default-2 40 "${P[@]}"
    stop_servers
    mkdir -p /tmp/gil
    echo "import sys; sys.setswitchinterval(${GILSW:-0.0002})" > /tmp/gil/sitecustomize.py
    GILPATH=/tmp/gil tserve_up || exit 1
    threads switch
    EOS= sweep tserve-gil-switch-1 40 "${P[@]}"
    EOS= sweep tserve-gil-switch-2 40 "${P[@]}"
    stop_servers
    ;;
  tserve-sdpa|tserve-alloc|tserve-stacks|tserve-native|tserve-cudnn)
    # what transformers serve's attention is given in its fast and slow waves: the waves of
    # tserve-waves (TWN requests, 96: eight waves of 12) on a server whose every first-layer
    # attention call is logged with its shapes, mask and strides, the model thread's CPU
    # time, the CUDA allocator's counters and the collector's (bench/tserve_probe);
    # tserve-alloc then runs the same again with the allocator mapping memory in growable
    # segments, to tell whether the allocator sets the modes; tserve-stacks also samples the
    # model thread's Python stack every STACK_MS ms (5), to tell where a slow step's time goes
    serve_site
    model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1
    P=(--url http://127.0.0.1:18085 --model "$M7-hf/hf" --model-shape "$S7" --weight-dtype bf16
       -n "${TWN:-96}" --duration 600 --warmup 0 -c 12)
    CONFS=(default)
    [[ $STAGE == tserve-alloc ]] && CONFS+=(expandable_segments:True)
    [[ $STAGE == tserve-cudnn ]] && CONFS=(nocudnn default avoidrecompile)
    # TCONFS="a b": only these of the stage's servers (a short call's budget)
    [[ -n ${TCONFS:-} ]] && read -ra CONFS <<< "$TCONFS"
    for conf in "${CONFS[@]}"; do
      name=$STAGE-${conf%%_*}
      export SDPA_LOG="$RES/$name.log"
      [[ $STAGE == tserve-stacks ]] && export STACK_LOG="$RES/$name-stacks.log"
      unset PYTORCH_CUDA_ALLOC_CONF SDPA_CUDNN TORCH_CUDNN_SDPA_AVOID_RECOMPILE
      [[ $conf == nocudnn ]] && export SDPA_CUDNN=0
      # torch's own switch (opt-in): cuDNN attention on its ragged path, one graph for all lengths
      [[ $conf == avoidrecompile ]] && export TORCH_CUDNN_SDPA_AVOID_RECOMPILE=1
      [[ $conf == expandable* ]] && export PYTORCH_CUDA_ALLOC_CONF=$conf
      GILPATH=$PWD/bench/tserve_probe tserve_up || exit 1
      spy=
      [[ $STAGE == tserve-native ]] && { spy_windows "$name" & spy=$!; }
      EOS= sweep "$name" 40 "${P[@]}"
      touch "$RES/spy-stop"
      [ -n "$spy" ] && wait "$spy"
      stop_servers
    done
    unset PYTORCH_CUDA_ALLOC_CONF SDPA_CUDNN TORCH_CUDNN_SDPA_AVOID_RECOMPILE
    xz -6 "$RES"/"$STAGE"-*.log
    [[ $STAGE == tserve-native ]] && tar -C "$RES" -cJf "$RES/$STAGE-spy.txz" \
      $(cd "$RES" && ls | grep -- -spy-) && rm -f "$RES"/*-spy-*.txt
    ;;
  tserve-predict)
    serve_site
    model "$S7" f16 "$M7-hf" --no-gguf > "$RES/model-hf.txt" 2>&1   # bf16 weights
    log "7B bf16 weights written"
    tserve_up || exit 1
    log "transformers serve up"
    # (transformers serve answers 422 to ignore_eos; the generated model never emits EOS)
    P=(--url http://127.0.0.1:18085 --model "$M7-hf/hf" --model-shape "$S7" --weight-dtype bf16
       -n 100000 --duration "${PDUR:-10}" --warmup 4)
    EOS= sweep tserve-fit 90 -c "${FITC:-1,2,4,8,16,32,64}" --ramp-up 2 "${P[@]}"
    RATES=$(held_rates tserve-fit)
    log "held-out rates $RATES"
    EOS= sweep tserve-held-rate 70 --rate "$RATES" "${P[@]}"
    # the mix before the concurrencies: the H100's run (c first) had no time left for it
    EOS= sweep tserve-held-mix 45 -c 8 --ramp-up 2 "${P[@]}" \
      --input-tokens uniform:256:768 --output-tokens uniform:64:192
    EOS= sweep tserve-held-c 45 -c "${HELDC:-12,48}" --ramp-up 2 "${P[@]}"
    # AGAIN=1: the fit's first points once more, after the held-out runs, so that a change
    # of the engine's speed meanwhile shows (fit both sweeps: `fit` notes runs that disagree)
    [[ ${AGAIN:-0} == 1 ]] && EOS= sweep tserve-fit-again 70 -c 1,2,4,8 --ramp-up 2 "${P[@]}"
    stop_servers
    ;;
esac
core_map after
log "done"
