"""infermeter beside vLLM's own client (``vllm bench serve``) on the same vLLM server.

The vLLM CPU build that infermeter installs serves a generated model on all cores but the
first; both clients run pinned to the first core, one after the other, on the same workload
(random prompts of ``--input-tokens``, exactly ``--output-tokens`` out, closed loop at each
concurrency, no warm-up: the server is warm after the first run, and ``vllm bench serve``'s
warm-up sends measured prompts again, which its prefix cache then serves). Each run of either
client draws prompts of its own (vLLM's client a new ``--seed`` per round: with one seed its
later rounds hit the prefix cache, TTFT 10× lower). The host is noisy, so the two alternate ``--rounds`` times per concurrency,
which goes first swapping each round. Printed: a Markdown table of each client's figures
(means over the rounds) and infermeter's ratio to vLLM's, with the prompt length each
actually sent as the server counted it.

    python bench/vllm_peer.py --shape demo --concurrency 1 4 --rounds 3 --requests 24

``vllm bench serve`` comes from the same cached environment as the server. Where the two
define a figure differently the table says so: its ITL is the gap between stream chunks
(infermeter's inter-chunk latency), and its random prompts carry the chat template on top.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from infermeter.cli.common import default_cache_dir
from infermeter.engines.model import make_model, model_key
from infermeter.engines.shapes import get_shape
from infermeter.engines.vllm_cpu import VllmServer, env_bin, install_vllm, vllm_config

#: (label, infermeter's results.json path, vLLM's result key, note)
FIGURES = (
    ("TTFT mean (ms)", ("distributions", "ttft_ms", "mean"), "mean_ttft_ms", ""),
    ("TTFT p50 (ms)", ("distributions", "ttft_ms", "p50"), "median_ttft_ms", ""),
    ("TTFT p99 (ms)", ("distributions", "ttft_ms", "p99"), "p99_ttft_ms", ""),
    ("TPOT mean (ms)", ("distributions", "tpot_ms", "mean"), "mean_tpot_ms", ""),
    ("TPOT p50 (ms)", ("distributions", "tpot_ms", "p50"), "median_tpot_ms", ""),
    ("ITL mean (ms)", ("distributions", "inter_chunk_ms", "mean"), "mean_itl_ms",
     "vLLM's ITL = infermeter's inter-chunk"),
    ("ITL p99 (ms)", ("distributions", "inter_chunk_ms", "p99"), "p99_itl_ms", ""),
    ("E2E mean (ms)", ("distributions", "e2e_ms", "mean"), "mean_e2el_ms", ""),
    ("E2E p50 (ms)", ("distributions", "e2e_ms", "p50"), "median_e2el_ms", ""),
    ("output tok/s", ("summary", "output_token_throughput_tok_s"), "output_throughput", ""),
    ("requests/s", ("summary", "request_throughput_rps"), "request_throughput", ""),
)  # fmt: skip


def dig(obj: dict, path: tuple[str, ...]) -> float:
    for key in path:
        obj = obj[key]
    return float(obj)  # type: ignore[arg-type]


def pinned(core: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *cmd]


def run_infermeter(
    url: str, c: int, n: int, args: argparse.Namespace, tmp: Path, _round: int
) -> dict:
    cmd = [
        sys.executable, "-m", "infermeter", "bench", "--url", url, "-c", str(c), "-n", str(n),
        "--input-tokens", str(args.input_tokens), "--output-tokens", str(args.output_tokens),
        "--ignore-eos", "--quiet", "--format", "json",
        "--out", str(tmp / "im"),
    ]  # fmt: skip
    done = subprocess.run(pinned(0, cmd), capture_output=True, text=True, timeout=1800)
    res = json.loads(done.stdout)
    out = {label: dig(res, path) for label, path, _key, _note in FIGURES}
    out["prompt tokens sent"] = res["distributions"]["input_tokens"]["mean"]
    return out


def run_vllm_client(
    url: str, c: int, n: int, args: argparse.Namespace, tmp: Path, rnd: int, model_dir: Path
) -> dict:
    cmd = [
        str(env_bin(args.cache, "vllm")), "bench", "serve", "--backend", "openai-chat",
        "--base-url", url, "--endpoint", "/v1/chat/completions", "--model", args.name,
        "--tokenizer", str(model_dir), "--dataset-name", "random",
        "--random-input-len", str(args.input_tokens),
        "--random-output-len", str(args.output_tokens), "--random-range-ratio", "0",
        "--num-prompts", str(n), "--max-concurrency", str(c), "--request-rate", "inf",
        "--num-warmups", "0", "--ignore-eos", "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", "50,99", "--save-result", "--result-dir", str(tmp),
        "--result-filename", "v.json", "--disable-tqdm", "--seed", str(os.getpid() + 1000 * rnd + c),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    subprocess.run(pinned(0, cmd), capture_output=True, text=True, timeout=1800, env=env)
    res = json.loads((tmp / "v.json").read_text())
    out = {label: float(res[key]) for label, _path, key, _note in FIGURES}
    out["prompt tokens sent"] = res["total_input_tokens"] / res["completed"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="demo")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--input-tokens", type=int, default=256)
    ap.add_argument("--output-tokens", type=int, default=64)
    args = ap.parse_args()
    args.cache = default_cache_dir()
    args.name = args.shape
    python = install_vllm(args.cache, say=lambda s: print(s, file=sys.stderr))
    shape = get_shape(args.shape)
    model = make_model(shape, args.cache / "models" / model_key(shape, 0, "f16"), gguf=False)
    assert model.hf_dir is not None
    cfg = vllm_config(python, model.hf_dir, served_name=args.name, max_model_len=2048)
    rows: dict[tuple[int, str], dict[str, list[float]]] = {}
    with VllmServer(cfg) as server:
        print(f"vLLM at {server.url} on cores {cfg.cpus}; clients on core 0", file=sys.stderr)
        for c in args.concurrency:
            for r in range(args.rounds):
                order = ["infermeter", "vllm"] if r % 2 == 0 else ["vllm", "infermeter"]
                for who in order:
                    with tempfile.TemporaryDirectory() as tmp:
                        got = (
                            run_infermeter(server.url, c, args.requests, args, Path(tmp), r)
                            if who == "infermeter"
                            else run_vllm_client(
                                server.url, c, args.requests, args, Path(tmp), r, model.hf_dir
                            )
                        )
                    for k, v in got.items():
                        rows.setdefault((c, who), {}).setdefault(k, []).append(v)
                    print(f"c={c} round {r} {who}: TPOT mean {got['TPOT mean (ms)']:.2f} ms",
                          file=sys.stderr)  # fmt: skip
    for c in args.concurrency:
        im, vl = rows[(c, "infermeter")], rows[(c, "vllm")]
        print(f"\n**c={c}** ({args.rounds} interleaved rounds of {args.requests} requests, "
              f"{args.input_tokens} → {args.output_tokens} tokens; means over rounds, "
              "with each round's ratio range)\n")  # fmt: skip
        print("| figure | infermeter | vllm bench serve | ratio (min-max) | note |")
        print("|---|---|---|---|---|")
        notes = {label: note for label, _p, _k, note in FIGURES}
        for label in [*(f[0] for f in FIGURES), "prompt tokens sent"]:
            a, b = im[label], vl[label]
            ratios = [x / y for x, y in zip(a, b, strict=True) if y]
            print(
                f"| {label} | {statistics.mean(a):,.2f} | {statistics.mean(b):,.2f} | "
                f"{statistics.mean(a) / statistics.mean(b):.3f} "
                f"({min(ratios):.3f}-{max(ratios):.3f}) | {notes.get(label, '')} |"
            )


if __name__ == "__main__":
    main()
