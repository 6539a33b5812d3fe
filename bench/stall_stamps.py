"""How often a busy host makes the client read a stream's first token together with later ones
(a "shared first stamp"), how far that moves TTFT and TPOT, and what the client's raised
scheduling priority changes.

Starts a llama-server (tiny generated model, 1 thread, 4 slots) on loopback, then for each
number of CPU hogs (processes spinning on the host's cores) runs the same closed-loop bench with
the client at the default priority (``--no-client-priority``, the behaviour before) and raised
(the default), interleaved. Per run: requests with a shared first stamp, the most tokens that
shared it, the client's TPOT over llama.cpp's own ``predicted_per_token_ms`` per request
(median, worst, share within 1 %), TTFT p50 and the event loop's lag.

    python bench/stall_stamps.py --hogs 0,2,4 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infermeter.cli.common import default_cache_dir
from infermeter.engines.llama_cpp import build_llama_server
from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
from infermeter.engines.model import make_model, model_key
from infermeter.engines.shapes import get_shape

HOG = "while True: pass"


def one_run(url: str, out: Path, priority: bool, args: argparse.Namespace) -> dict[str, object]:
    cmd = [
        sys.executable, "-m", "infermeter", "bench", "--url", url, "-c", str(args.concurrency),
        "-n", str(args.requests), "--input-tokens", "64", "--output-tokens", str(args.output),
        "-q", "--format", "json", "--out", str(out),
        "--client-priority" if priority else "--no-client-priority",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    res = json.loads((out / "results.json").read_text())
    ratios = []
    for r in recs:
        server = (r.get("server_timings") or {}).get("predicted_per_token_ms")
        if server and r["n_out"] > 1 and r["t_first_ns"] is not None:
            tpot = (r["t_last_ns"] - r["t_first_ns"]) / 1e6 / (r["n_out"] - 1)
            ratios.append(tpot / server)
    worker = res["client"]["per_worker"][0]
    shared = res["shared_first_stamp"]
    return {
        "shared": sum(1 for r in recs if r.get("first_stamp_shared")),
        "requests": len(recs),
        "max_tokens": max(r.get("first_stamp_shared", 0) for r in recs),
        "ttft_late_max_ms": shared.get("ttft_late_est_max_ms"),
        "tpot_ratio_median": statistics.median(ratios),
        "tpot_ratio_min": min(ratios),
        "within_1pct": sum(abs(x - 1) <= 0.01 for x in ratios) / len(ratios),
        "ttft_p50_ms": res["distributions"]["ttft_ms"]["p50"],
        "lag_p99_ms": worker["loop_lag_p99_ms"],
        "lag_max_ms": worker["loop_lag_max_ms"],
        "nice": worker.get("nice"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hogs", default="0,2,4")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--output", type=int, default=64)
    args = ap.parse_args()
    cache = default_cache_dir()
    shape = get_shape("tiny")
    model = make_model(shape, cache / "models" / model_key(shape, 0, "f16"))
    cfg = LlamaServerConfig(
        build_llama_server(cache), model.gguf, alias="tiny", ctx_per_slot=1024, slots=4,
        threads=1,
    )  # fmt: skip
    rows = []
    with LlamaServer(cfg) as server, tempfile.TemporaryDirectory() as tmp:
        for hogs in [int(x) for x in args.hogs.split(",")]:
            procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
            try:
                time.sleep(0.5)
                for rep in range(args.repeats):
                    for priority in (False, True):
                        out = Path(tmp) / f"h{hogs}-r{rep}-{'raised' if priority else 'default'}"
                        row = one_run(server.url, out, priority, args)
                        row.update(hogs=hogs, priority="raised" if priority else "default")
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
    print()
    print("| hogs | client priority | runs | shared first stamp | most tokens sharing | "
          "est. TTFT late max (ms) | TPOT/server median | worst | within 1 % | TTFT p50 (ms) | "
          "loop lag p99 / max (ms) |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for hogs in dict.fromkeys(r["hogs"] for r in rows):
        for pr in ("default", "raised"):
            rs = [r for r in rows if r["hogs"] == hogs and r["priority"] == pr]
            shared = sum(int(r["shared"]) for r in rs)
            total = sum(int(r["requests"]) for r in rs)
            late = [float(r["ttft_late_max_ms"]) for r in rs if r["ttft_late_max_ms"] is not None]
            print(
                f"| {hogs} | {pr} (nice {rs[0]['nice']}) | {len(rs)} | {shared}/{total} "
                f"({100 * shared / total:.0f} %) | {max(int(r['max_tokens']) for r in rs)} | "
                f"{max(late) if late else 0:,.1f} | "
                f"{statistics.median(float(r['tpot_ratio_median']) for r in rs):.4f} | "
                f"{min(float(r['tpot_ratio_min']) for r in rs):.3f} | "
                f"{statistics.mean(float(r['within_1pct']) for r in rs):.2f} | "
                f"{statistics.median(float(r['ttft_p50_ms']) for r in rs):.1f} | "
                f"{max(float(r['lag_p99_ms']) for r in rs):.1f} / "
                f"{max(float(r['lag_max_ms']) for r in rs):.1f} |"
            )


if __name__ == "__main__":
    main()
