"""Write the small trace samples in docs/traces/, one per format infermeter replays, each in
its format's documented shape (the public traces themselves are not copied: these are made
here from a seed). Rerun it to regenerate them: ``python bench/make_trace_samples.py``."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "docs" / "traces"


def mooncake(rng: np.random.Generator, n: int = 30) -> list[dict[str, object]]:
    """Mooncake (FAST'25) JSONL: ``timestamp`` in ms, lengths, and ``hash_ids`` of 512-token
    blocks. Conversations grow: a turn repeats its conversation's blocks and adds new ones;
    every conversation starts with one of two system-prompt blocks."""
    rows = []
    t = 0.0
    next_id = 2
    chains: list[list[int]] = []
    for _ in range(n):
        t += float(rng.exponential(400.0))
        if chains and rng.random() < 0.5:
            chain = chains[int(rng.integers(len(chains)))]
        else:
            chain = [int(rng.integers(2))]
            chains.append(chain)
        chain.append(next_id)
        next_id += 1
        whole = len(chain)
        input_length = 512 * whole - int(rng.integers(0, 200))  # the last block partial
        rows.append(
            {
                "timestamp": int(t),
                "input_length": input_length,
                "output_length": int(rng.integers(4, 24)),
                "hash_ids": list(chain),
            }
        )
        if whole >= 4:
            chains.remove(chain)
    return rows


def write() -> None:
    rng = np.random.default_rng(20261205)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "mooncake.jsonl").open("w") as f:
        for row in mooncake(rng):
            f.write(json.dumps(row) + "\n")
    # BurstGPT: seconds from the trace's start, two models, failed requests (0 response
    # tokens) kept as the public file keeps them.
    with (OUT / "burstgpt.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]
        )
        t = 0
        for i in range(30):
            t += int(rng.integers(0, 3))
            req = int(rng.integers(20, 400))
            resp = 0 if i == 17 else int(rng.integers(4, 40))
            model = "ChatGPT" if rng.random() < 0.7 else "GPT-4"
            kind = "Conversation log" if rng.random() < 0.6 else "API log"
            w.writerow([t, model, req, resp, req + resp, kind])
    # Azure LLM inference trace: wall-clock timestamps with seven fractional digits.
    with (OUT / "azure.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
        t0 = dt.datetime(2023, 11, 16, 18, 15, 46)
        offset = 0.0
        for _ in range(30):
            offset += float(rng.exponential(0.5))
            when = t0 + dt.timedelta(seconds=int(offset))
            frac = f"{offset % 1:.7f}"[2:]
            w.writerow(
                [
                    f"{when:%Y-%m-%d %H:%M:%S}.{frac}",
                    int(rng.integers(30, 800)),
                    int(rng.integers(4, 40)),
                ]
            )
    # infermeter's plain rows: offsets in seconds; a prefix group shares its first
    # prefix_tokens tokens (a system prompt, a document asked about several times).
    with (OUT / "plain.jsonl").open("w") as f:
        t = 0.0
        for i in range(30):
            t += float(rng.exponential(0.3))
            row: dict[str, object] = {
                "offset_s": round(t, 3),
                "input_tokens": int(rng.integers(200, 600)),
                "output_tokens": int(rng.integers(4, 32)),
            }
            if i % 3 != 2:
                row["prefix_group"] = "support-bot" if i % 3 == 0 else "rag-doc-7"
                row["prefix_tokens"] = 150 if i % 3 == 0 else 180
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    write()
