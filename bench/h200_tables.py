"""Markdown tables of docs/results/h200.md from the committed sweep directories.

python bench/h200_tables.py docs/results/h200
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Controls of an A/B comparison and prompt-length points: in the per-point table only.
CONTROLS = {"llamacpp-f16-default", "llamacpp-f16-t2", "llamacpp-f16-lengths"}
_COMPILED = "transformers in-process, static cache + torch.compile (CUDA graphs), bf16"
_STEADY = "25 s points, starts ramped over 5 s"
#: sweep directory -> label; the Llama-2-7B shape, 512 in / 128 out, unless the label says.
#: Directories with one label are one engine in the summary (a sweep and its later points).
ENGINES = {
    "hf-eager": "transformers in-process, eager, dynamic cache, bf16",
    "hf-static": "transformers in-process, eager, static cache, bf16",
    "hf-compiled": _COMPILED,
    "hf-compiled-b": _COMPILED,
    "transformers-serve": "transformers serve --continuous-batching, bf16",
    "llamacpp-f16-promptcache": "llama.cpp f16, as shipped (host prompt cache on; session 1)",
    "llamacpp-f16-default": "llama.cpp f16, as shipped (host prompt cache on)",
    "llamacpp-f16": "llama.cpp f16, --cache-ram 0",
    "llamacpp-f16-val": "llama.cpp f16, --cache-ram 0",
    "llamacpp-f16-lengths": "llama.cpp f16, --cache-ram 0, prompt lengths",
    "llamacpp-f16-steady": f"llama.cpp f16, --cache-ram 0, {_STEADY}",
    "llamacpp-f16-t2": "llama.cpp f16, --cache-ram 0 -t 2",
    "llamacpp-q8": "llama.cpp Q8_0, --cache-ram 0",
    "hf-eager-8b": "Llama-3.1-8B shape: transformers in-process, eager, dynamic cache, bf16",
    "llamacpp-f16-8b": "Llama-3.1-8B shape: llama.cpp f16, --cache-ram 0",
    "llamacpp-f16-8b-val": "Llama-3.1-8B shape: llama.cpp f16, --cache-ram 0",
    "llamacpp-f16-8b-steady": f"Llama-3.1-8B shape: llama.cpp f16, --cache-ram 0, {_STEADY}",
    "llamacpp-f16-8b-steady-b": f"Llama-3.1-8B shape: llama.cpp f16, --cache-ram 0, {_STEADY}",
}


def _f(x: float | None, d: int = 1) -> str:
    return "-" if x is None else f"{x:,.{d}f}"


def _point(root: Path, name: str, p: dict[str, Any]) -> dict[str, Any]:
    r = json.loads((root / name / p["dir"] / "results.json").read_text())
    e = r["analysis"]["efficiency"]
    g = (r["telemetry"].get("gpu") or [{}])[0]
    mem = (g.get("memory_used_bytes") or {}).get("max")
    return {
        "c": p["concurrency"],
        "tput": r["summary"]["output_token_throughput_tok_s"],
        "tput_bound": e["output_throughput_upper_bound_tok_s"],
        "ttft": p["latency"]["ttft_ms"]["p50"],
        "ttft_bound": e["ttft_lower_bound_ms"],
        "tpot": p["latency"]["tpot_ms"]["p50"],
        "tpot_bound": e["tpot_lower_bound_ms"],
        "mbu": e["mbu"],
        "mfu_d": e["mfu_decode"],
        "mfu_p": e["mfu_prefill"],
        "util": g.get("util_percent") or {},
        "mem": mem / 1e9 if mem else None,
    }


def _failure(root: Path, name: str, p: dict[str, Any]) -> str:
    """The point's status and its first failed request's error."""
    with (root / name / p["dir"] / "records.jsonl").open() as fh:
        errors = (json.loads(line).get("error_message") for line in fh if line.strip())
        first = next((e for e in errors if e), None)
    why = (first or "").split(" (at ")[0].strip()
    status = "failed" if p["status"] == "ok" else p["status"]  # ok as a point, no request done
    return f"{status}: {why}" if why else status


def main(root: Path) -> None:
    best: dict[str, dict[str, Any]] = {}
    print(
        "| engine | c | out tok/s (bound) | TTFT p50 ms (bound, ×) | TPOT p50 ms (bound, ×) "
        "| MBU | MFU decode | MFU prefill | GPU util mean/max % | GPU mem max GB |"
    )
    print("|" + " --- |" * 10)
    for name in ENGINES:
        if not (root / name / "sweep.json").exists():
            continue
        index = json.loads((root / name / "sweep.json").read_text())
        for p in index["points"]:
            if p["status"] != "ok" or not p["summary"]["requests_completed"]:
                print(f"| {name} | {p['concurrency']} | {_failure(root, name, p)} |" + " |" * 7)
                continue
            x = _point(root, name, p)
            print(
                f"| {name} | {x['c']} | {_f(x['tput'])} ({_f(x['tput_bound'], 0)}) "
                f"| {_f(x['ttft'])} ({_f(x['ttft_bound'])}, {x['ttft'] / x['ttft_bound']:.0f}×) "
                f"| {_f(x['tpot'], 2)} ({_f(x['tpot_bound'], 2)}, "
                f"{x['tpot'] / x['tpot_bound']:.1f}×) "
                f"| {x['mbu']:.1%} | {x['mfu_d']:.2%} | {x['mfu_p']:.2%} "
                f"| {_f(x['util'].get('mean'), 0)}/{_f(x['util'].get('max'), 0)} "
                f"| {_f(x['mem'])} |"
            )
            if name in CONTROLS:
                continue
            b = best.setdefault(ENGINES[name], {"label": ENGINES[name], "mem": 0.0, "top": 0})
            b["top"] = max(b["top"], x["c"])
            b["mem"] = max(b["mem"], x["mem"] or 0.0)
            if x["tput"] > b.get("tput", 0):
                b.update(tput=x["tput"], tput_bound=x["tput_bound"], c=x["c"])
            if x["c"] == 1:
                b["one"] = x
    # the ratio's base: the slowest engine whose sweep reached concurrency 64
    slow = min(b["tput"] for b in best.values() if b["top"] >= 64)
    print()
    print(
        "| engine | best out tok/s (at c; bound) | ratio to slowest | TTFT p50 at c=1 (bound) "
        "| TPOT p50 at c=1 (bound) | MBU at c=1 | GPU memory max |"
    )
    print("|" + " --- |" * 7)
    for b in best.values():
        one = b.get("one")
        at1 = (
            f"| {_f(one['ttft'])} ms ({_f(one['ttft_bound'])}) "
            f"| {_f(one['tpot'], 2)} ms ({_f(one['tpot_bound'], 2)}) | {one['mbu']:.0%} "
            if one
            else "| - | - | - "
        )
        only = "" if b["top"] >= 64 else f" (sweep ran to c={b['top']} only)"
        print(
            f"| {b['label']}{only} | {_f(b['tput'])} (c={b['c']}; {_f(b['tput_bound'], 0)}) "
            f"| {b['tput'] / slow:.1f}× {at1}| {_f(b['mem'])} GB |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/h200"))
