"""infermeter beside guidellm, NVIDIA AIPerf and evalscope, in the same runs, same setup.

The ground-truth emulator (TTFT exactly 50 ms after it reads a request, then one token every
10 ms, 128 tokens) runs pinned to one core; each client in turn is pinned to the other,
closed loop at C concurrent streams for 2 × C requests. A client's reported TTFT minus 50 ms
is its own error. Peers are installed from PyPI into throwaway virtual environments given
with --peer NAME=PATH_TO_ITS_BIN_DIR; their own output files are read for their figures.

    python bench/peers.py --tokenizer HF_FOLDER --peer guidellm=/tmp/peers/guidellm/bin \\
        --peer aiperf=/tmp/peers/aiperf/bin --peer evalscope=/tmp/peers/evalscope/bin
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 9511
URL = f"http://127.0.0.1:{PORT}"


def pin(core: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *cmd]


def run_infermeter(c: int, n: int, core: int, tmp: Path, _tok: str, _bin: str) -> dict:
    out = tmp / "im"
    cmd = [
        sys.executable,
        "-m",
        "infermeter",
        "bench",
        "--url",
        URL,
        "--concurrency",
        str(c),
        "--num-requests",
        str(n),
        "--input-tokens",
        "8",
        "--output-tokens",
        "128",
        "--workers",
        "1",
        "--quiet",
        "--format",
        "json",
        "--out",
        str(out),
    ]
    res = json.loads(
        subprocess.run(pin(core, cmd), capture_output=True, text=True, timeout=900).stdout
    )
    ttft = res["distributions"]["ttft_ms"]
    return {
        "p50": ttft["p50"],
        "p99": ttft["p99"],
        "tok_s": res["summary"]["output_token_throughput_tok_s"],
        "ok": res["summary"]["requests_completed"],
    }


def run_guidellm(c: int, n: int, core: int, tmp: Path, tok: str, bindir: str) -> dict:
    cfg = {
        "spec": {
            "backend": {
                "kind": "openai_http",
                "target": URL,
                "model": "ground-truth",
                "request_format": "/v1/chat/completions",
            },
            "profile": {"kind": "concurrent", "streams": c},
            "tokenizer": {"kind": "huggingface_auto", "model": tok},
            "data": [{"kind": "synthetic_text", "prompt_tokens": 8, "output_tokens": 128}],
            "constraints": [{"kind": "max_requests", "count": n}],
            "outputs": [{"kind": "json", "path": str(tmp / "g.json")}],
        }
    }
    (tmp / "g-cfg.json").write_text(json.dumps(cfg))
    subprocess.run(
        pin(
            core, [f"{bindir}/guidellm", "run", "-c", str(tmp / "g-cfg.json"), "--disable-console"]
        ),
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    b = json.loads((tmp / "g.json").read_text())["benchmarks"][0]
    ttft = b["metrics"]["time_to_first_token_ms"]["successful"]
    tok_s = b["metrics"]["output_tokens_per_second"]["successful"]["mean"]
    return {
        "p50": ttft["median"],
        "p99": ttft["percentiles"]["p99"],
        "tok_s": tok_s,
        "ok": ttft["count"],
    }


def run_aiperf(c: int, n: int, core: int, tmp: Path, tok: str, bindir: str) -> dict:
    art = tmp / "ai"
    subprocess.run(
        pin(
            core,
            [
                f"{bindir}/aiperf",
                "profile",
                "--model",
                "ground-truth",
                "--url",
                URL,
                "--endpoint-type",
                "chat",
                "--streaming",
                "--concurrency",
                str(c),
                "--request-count",
                str(n),
                "--synthetic-input-tokens-mean",
                "8",
                "--output-tokens-mean",
                "128",
                "--tokenizer",
                tok,
                "--artifact-dir",
                str(art),
                "--ui-type",
                "none",
            ],
        ),
        # Not HF_HUB_OFFLINE here: with it, AIPerf 0.13 refuses local tokenizer paths.
        capture_output=True,
        text=True,
        timeout=900,
    )
    d = json.loads((art / "profile_export_aiperf.json").read_text())
    ttft = d["time_to_first_token"]
    return {
        "p50": ttft["p50"],
        "p99": ttft["p99"],
        "tok_s": d["output_token_throughput"]["avg"],
        "ok": ttft["count"],
    }


def run_evalscope(c: int, n: int, core: int, tmp: Path, tok: str, bindir: str) -> dict:
    out = tmp / "ev"
    subprocess.run(
        pin(
            core,
            [
                f"{bindir}/evalscope",
                "perf",
                "--url",
                f"{URL}/v1/chat/completions",
                "--model",
                "ground-truth",
                "--api",
                "openai",
                "--parallel",
                str(c),
                "--number",
                str(n),
                "--dataset",
                "random",
                "--tokenizer-path",
                tok,
                "--min-prompt-length",
                "8",
                "--max-prompt-length",
                "8",
                "--min-tokens",
                "128",
                "--max-tokens",
                "128",
                "--stream",
                "--outputs-dir",
                str(out),
                "--no-test-connection",
            ],
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    pct = json.loads(
        Path(glob.glob(f"{out}/**/benchmark_percentile.json", recursive=True)[0]).read_text()
    )
    summary = json.loads(
        Path(glob.glob(f"{out}/**/benchmark_summary.json", recursive=True)[0]).read_text()
    )
    by = {row["Percentiles"]: row for row in pct}
    return {
        "p50": by["50%"]["TTFT (ms)"],
        "p99": by["99%"]["TTFT (ms)"],
        "tok_s": summary["Output Throughput (tok/s)"],
        "ok": summary["Success Requests"],
    }


def run_reference(c: int, n: int, core: int, tmp: Path, _tok: str, _bin: str) -> dict:
    """The issue's yardstick: the bare raw-asyncio client of ``bench/reference_client.py``."""
    script = str(Path(__file__).with_name("reference_client.py"))
    cmd = [sys.executable, script, URL, str(c), str(n // c)]
    res = subprocess.run(pin(core, cmd), capture_output=True, text=True, timeout=900)
    return json.loads(res.stdout)


RUNNERS = {
    "infermeter": run_infermeter,
    "reference": run_reference,
    "guidellm": run_guidellm,
    "aiperf": run_aiperf,
    "evalscope": run_evalscope,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True, help="HF folder with tokenizer.json")
    ap.add_argument("--peer", action="append", default=[], help="NAME=BIN_DIR")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[100, 500, 1000])
    args = ap.parse_args()
    peers = dict(p.split("=", 1) for p in args.peer)
    cores = sorted(os.sched_getaffinity(0))
    server = subprocess.Popen(
        pin(
            cores[0],
            [
                sys.executable,
                "-m",
                "infermeter",
                "serve-ground-truth",
                "--port",
                str(PORT),
                "--ttft-ms",
                "50",
                "--itl-ms",
                "10",
            ],
        ),
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    try:
        header = (
            "| client | "
            + " | ".join(f"c={c} TTFT p50 / p99 ms" for c in args.concurrency)
            + f" | c={args.concurrency[-1]} output tok/s (ideal {args.concurrency[-1] * 100:,}) |"
        )
        print(header)
        print("|---" * (len(args.concurrency) + 2) + "|")
        for name in ["infermeter", "reference", *peers]:
            cells, last = [], None
            for c in args.concurrency:
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        r = RUNNERS[name](
                            c, 2 * c, cores[-1], Path(tmp), args.tokenizer, peers.get(name, "")
                        )
                        cells.append(f"{r['p50']:.1f} / {r['p99']:.1f}")
                        last = r
                    except Exception as exc:  # a peer that fails is shown, not fatal
                        cells.append(f"failed ({type(exc).__name__})")
                        last = None
            tok = f"{last['tok_s']:,.0f}" if last else "-"
            print(f"| {name} | " + " | ".join(cells) + f" | {tok} |", flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
