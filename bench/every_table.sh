#!/bin/bash
# Every held-out table whose runs are in docs/results, re-run with the code of a checkout:
# the medians per metric of each (what a change to `fit` or the simulation must be held to;
# docs/results/prediction.md gives each table in full and says what it is).
#   bash bench/every_table.sh [CHECKOUT]        (default: this one; about half a minute)
# Run it before and after a change and diff the two outputs.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
CODE=$(cd "${1:-$HERE}" && pwd)
R=$HERE/docs/results
PY=${PYTHON:-$HERE/.venv/bin/python}
export PYTHONPATH=$CODE/src
P() { (cd "$CODE" && "$PY" bench/prediction.py "$@" 2>&1 | grep '^- \|^\*\*'); }
echo "## committed (H200 llama.cpp 7B, 8B)"; P committed
for d in h100-dense h100-dense-b h100-dense-c h100-dense-d; do
  echo "## $d"; P table --fit $R/$d/predict-fit --held $R/$d/predict-held-rate $R/$d/predict-held-c $R/$d/predict-held-mix
done
echo "## h100 sparse"; P table --fit $R/h100/predict-fit --held $R/h100/predict-held-rate
echo "## what-if h100-dense -> h200"; P table --fit $R/h100-dense/predict-fit --held $R/h200/llamacpp-f16-val --on-gpu h200
echo "## replicas-16b"; P table --fit $R/h100-replicas-16b/fit --held $R/h100-replicas-16b/replicas-1
for d in h100-tserve-b h100-tserve-c h100-tserve-d h100-tserve-e h200-tserve h100-tserve-nocudnn h100-tserve-nocudnn-b h100-tserve-nocudnn-c h100-tserve-nocudnn-d h100-tserve-nocudnn-e h100-tserve-nocudnn-f h100-tserve-nocudnn-g; do
  echo "## $d"; P table --fit $R/$d/tserve-fit --held $R/$d/tserve-held-rate $R/$d/tserve-held-mix $R/$d/tserve-held-c
done
echo "## what-if h100-tserve-c -> h200"
P table --fit $R/h100-tserve-c/tserve-fit --held $R/h200-tserve/tserve-held-rate $R/h200-tserve/tserve-held-mix $R/h200-tserve/tserve-held-c --on-gpu h200
for d in cpu-llamacpp cpu-llamacpp-b cpu-llamacpp-c cpu-llamacpp-d cpu-llamacpp-e cpu-llamacpp-f cpu-vllm cpu-vllm-b cpu-vllm-c cpu-tserve-b; do
  echo "## $d"; P table --fit $R/$d/fit --held $R/$d/rate-30 $R/$d/rate-60 $R/$d/rate-90 $R/$d/c3 $R/$d/mix-c4
done
echo "## vllm-preempt"
P table --fit $R/vllm-preempt/fit $R/vllm-preempt/fit-c8-short --held $R/vllm-preempt/held-c8 $R/vllm-preempt/held-rate --max-seqs 8
echo "## vllm-preempt-b"
P table --fit $R/vllm-preempt-b/fit $R/vllm-preempt-b/fit-c8-short --held $R/vllm-preempt-b/held-c8 $R/vllm-preempt-b/held-rate $R/vllm-preempt-b/held-rate-045 --max-seqs 8
