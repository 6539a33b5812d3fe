"""How llama-server's decode step depends on *which* slots are busy, not only how many.

Without a unified KV cache (the default once ``-np`` is given), llama.cpp splits a batch into
ubatches of consecutive sequence ids (``split_equal(..., sequential=true)`` in
llama-kv-cache.cpp): busy slots 0-3 decode in one forward pass, busy slots 0, 4, 8, 12 in
four. This script pins streams to chosen slots (the request's ``id_slot``) and measures the
inter-token gap of each layout, on one server, in interleaved rounds:

    python bench/slot_runs.py --shape demo --slots 16 --threads 1 --core 1 \\
        --layouts 0 0,1,2,3 0,4,8,12 0,1,8,9 --rounds 5

or against a server already up (``--url http://127.0.0.1:8080``; bench/gpu_study.sh's
``slots`` stage does this on the GPU). Prints, per layout, the median gap and its ratio to the
first layout. With ``--kv-unified`` the server keeps one KV stream, and the layouts should
not differ.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 600.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("server did not come up")


def _stream(port: int, slot: int, prompt: str, n: int, out: list[int]) -> None:
    """One request pinned to ``slot``; the arrival time (ns) of each streamed token."""
    body = json.dumps({
        "prompt": prompt, "n_predict": n, "ignore_eos": True, "stream": True,
        "id_slot": slot, "cache_prompt": False, "temperature": 0,
    })  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/completion", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    for line in resp:
        if line.startswith(b"data: "):
            out.append(time.perf_counter_ns())
    conn.close()


def _round(port: int, slots: list[int], prompt: str, n: int) -> list[float]:
    """Gaps (ms) between tokens of every stream, past the first few, all started at once."""
    stamps: list[list[int]] = [[] for _ in slots]
    threads = [
        threading.Thread(target=_stream, args=(port, s, prompt, n, stamps[i]))
        for i, s in enumerate(slots)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gaps: list[float] = []
    for st in stamps:
        gaps += [(b - a) / 1e6 for a, b in itertools.pairwise(st[4:-1])]
    return gaps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="demo")
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--core", default="", help="taskset core list for the server")
    ap.add_argument("--layouts", nargs="+", default=["0", "0,1,2,3", "0,4,8,12", "0,1,8,9"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--port", type=int, default=8431)
    ap.add_argument("--kv-unified", action="store_true")
    ap.add_argument("--url", default="", help="measure this server instead of starting one")
    args = ap.parse_args()
    if args.url:
        port = int(args.url.rsplit(":", 1)[1].strip("/"))
        _measure(port, args)
        return
    cmd = [
        sys.executable, "-m", "infermeter", "engine", "serve", "--shape", args.shape,
        "--slots", str(args.slots), "--threads", str(args.threads), "--port", str(args.port),
    ]  # fmt: skip
    if args.kv_unified:
        cmd += ["--server-arg=--kv-unified"]
    if args.core:
        cmd = ["taskset", "-c", args.core, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(args.port, proc)
        _measure(args.port, args)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _measure(port: int, args: argparse.Namespace) -> None:
    layouts = [[int(s) for s in lay.split(",")] for lay in args.layouts]
    prompt = "the quick brown fox jumps over the lazy dog " * 4
    _round(port, layouts[0], prompt, 8)  # warm-up
    gaps: dict[str, list[float]] = {lay: [] for lay in args.layouts}
    for _ in range(args.rounds):  # interleaved: a drift of the host hits every layout alike
        for name, slots in zip(args.layouts, layouts, strict=True):
            gaps[name] += _round(port, slots, prompt, args.tokens)
    base = statistics.median(gaps[args.layouts[0]])
    print(f"host load {os.getloadavg()[0]:.2f}; kv unified: {args.kv_unified}")
    print("| busy slots | runs of consecutive ids | gap p50 (ms) | × the first layout |")
    print("|---|---|---|---|")
    for name, slots in zip(args.layouts, layouts, strict=True):
        runs = 1 + sum(1 for a, b in itertools.pairwise(slots) if b != a + 1)
        med = statistics.median(gaps[name])
        print(f"| {name} | {runs} | {med:.2f} | {med / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
