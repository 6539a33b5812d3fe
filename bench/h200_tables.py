"""Markdown tables of docs/results/h200.md from the committed sweep directories.

python bench/h200_tables.py docs/results/h200
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ENGINES = {
    "hf-eager": "transformers in-process (eager, dynamic cache, bf16)",
    "llamacpp-f16": "llama.cpp (llama-server, CUDA sm_90, f16 GGUF, 64 slots)",
}


def _f(x: float | None, d: int = 1) -> str:
    return "-" if x is None else f"{x:,.{d}f}"


def main(root: Path) -> None:
    best: dict[str, dict] = {}
    print(
        "| engine | c | out tok/s (bound) | TTFT p50 ms (bound, ×) | TPOT p50 ms (bound, ×) "
        "| MBU | MFU decode | MFU prefill | GPU util mean/max % | GPU mem max GB |"
    )
    print("|" + " --- |" * 10)
    for name, label in ENGINES.items():
        index = json.loads((root / name / "sweep.json").read_text())
        for p in index["points"]:
            if p["status"] != "ok":
                print(
                    f"| {name} | {p['concurrency']} | not finished (stage time ran out) |"
                    + " |" * 7
                )
                continue
            r = json.loads((root / name / p["dir"] / "results.json").read_text())
            e = r["analysis"]["efficiency"]
            s = r["summary"]
            g = (r["telemetry"].get("gpu") or [{}])[0]
            util = g.get("util_percent") or {}
            mem = (g.get("memory_used_bytes") or {}).get("max")
            tput = s["output_token_throughput_tok_s"]
            ttft, tpot = p["latency"]["ttft_ms"]["p50"], p["latency"]["tpot_ms"]["p50"]
            print(
                f"| {name} | {p['concurrency']} | {_f(tput)} ({_f(e['output_throughput_upper_bound_tok_s'], 0)}) "
                f"| {_f(ttft)} ({_f(e['ttft_lower_bound_ms'])}, {ttft / e['ttft_lower_bound_ms']:.0f}×) "
                f"| {_f(tpot, 2)} ({_f(e['tpot_lower_bound_ms'], 2)}, {tpot / e['tpot_lower_bound_ms']:.1f}×) "
                f"| {e['mbu']:.1%} | {e['mfu_decode']:.2%} | {e['mfu_prefill']:.2%} "
                f"| {_f(util.get('mean'), 0)}/{_f(util.get('max'), 0)} | {_f(mem / 1e9 if mem else None)} |"
            )
            if tput > best.get(name, {}).get("tput", 0):
                best[name] = {"tput": tput, "c": p["concurrency"], "mem": mem, "label": label}
        c1 = next(p for p in index["points"] if p["concurrency"] == 1)
        best[name]["ttft1"] = c1["latency"]["ttft_ms"]["p50"]
        best[name]["tpot1"] = c1["latency"]["tpot_ms"]["p50"]
    slow = min(b["tput"] for b in best.values())
    print()
    print(
        "| engine | best output tok/s (at c) | ratio to slowest | TTFT p50 at c=1 | TPOT p50 at c=1 | GPU memory (max) |"
    )
    print("|" + " --- |" * 6)
    for b in best.values():
        print(
            f"| {b['label']} | {_f(b['tput'])} (c={b['c']}) | {b['tput'] / slow:.1f}× "
            f"| {_f(b['ttft1'])} ms | {_f(b['tpot1'], 2)} ms | {_f(b['mem'] / 1e9 if b['mem'] else None)} GB |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/h200"))
