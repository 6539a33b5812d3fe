"""Soak: hours-like load in minutes, watching memory. 1,000 streams straight at the
ground-truth emulator and 200 through ``infermeter proxy``, side by side, for ``--minutes``;
the resident memory of the benchmark (with its children) and of the proxy is sampled every
``--every`` seconds.

    python bench/soak.py --minutes 10 --out /tmp/soak

Prints the RSS table (MiB) and each run's request counts; exits 1 on any failed request.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "infermeter", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"process {proc.args} did not start listening") from None
            time.sleep(0.2)


def _tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and every process below it."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parents[int(d.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, todo = {pid}, [pid]
    while todo:
        p = todo.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.add(c)
                todo.append(c)
    kib = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
        except OSError:
            pass
    return kib / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--proxy-streams", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("/tmp/infermeter-soak"))
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    seconds = str(int(args.minutes * 60))
    emu_port, proxy_port = _port(), _port()
    lengths = ("--input-tokens", "32", "--output-tokens", "64", "--quiet", "--format", "json")
    emu = _cli("serve-ground-truth", "--port", str(emu_port), "--ttft-ms", "50",
               "--itl-ms", "100", log=out / "emulator.log")  # fmt: skip
    procs = [emu]
    try:
        _wait_port(emu_port, emu)
        upstream = f"http://127.0.0.1:{emu_port}"
        proxy = _cli("proxy", "--upstream", upstream, "--listen", f"127.0.0.1:{proxy_port}",
                     "--records", str(out / "proxy-records"), log=out / "proxy.log")  # fmt: skip
        procs.append(proxy)
        _wait_port(proxy_port, proxy)
        direct = _cli("bench", "--url", upstream, "-c", str(args.streams), "--duration", seconds,
                      *lengths, "--out", str(out / "direct"), log=out / "direct.json")  # fmt: skip
        through = _cli("bench", "--url", f"http://127.0.0.1:{proxy_port}", "-c",
                       str(args.proxy_streams), "--duration", seconds, *lengths,
                       "--out", str(out / "proxied"), log=out / "proxied.json")  # fmt: skip
        procs += [direct, through]
        t0 = time.monotonic()
        print("   t s   bench 1000 MiB   proxy MiB   bench 200 MiB", flush=True)
        rows = []
        while direct.poll() is None or through.poll() is None:
            row = (
                time.monotonic() - t0,
                _tree_rss_mib(direct.pid),
                _tree_rss_mib(proxy.pid),
                _tree_rss_mib(through.pid),
            )
            rows.append(row)
            print(f"{row[0]:6.0f}   {row[1]:14.1f}   {row[2]:9.1f}   {row[3]:13.1f}", flush=True)
            time.sleep(args.every)
        (out / "rss.json").write_text(json.dumps(rows))
        failed = 0
        for name in ("direct", "proxied"):
            s = json.loads((out / f"{name}.json").read_text())["summary"]
            failed += s["requests_failed"]
            print(f"{name}: {s['requests_completed']:,} completed, {s['requests_failed']} failed, "
                  f"{s['request_throughput_rps']:.1f} req/s")  # fmt: skip
        return 1 if failed else 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        os.sync()


if __name__ == "__main__":
    raise SystemExit(main())
