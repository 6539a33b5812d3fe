"""Does transformers' compiled static-cache decode step run at a batch size, and how fast?

    python bench/hf_compile_probe.py MODEL_DIR --batch 8 [--mode reduce-overhead|default]
        [--no-fullgraph] [--tokens 32]

Prints one JSON line: the batch, the compile settings, ok or the full traceback, and the
median decode-step time of a second, warm generate(). Written to find why the in-process
backend's compiled runs failed at batch 8 on the H200 (docs/results/h200.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import traceback


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--mode", default=None)
    ap.add_argument("--no-fullgraph", action="store_true")
    ap.add_argument("--thread", action="store_true", help="generate() in another thread")
    args = ap.parse_args()
    if args.thread:
        import threading

        worker = threading.Thread(target=run, args=(args,))
        worker.start()
        worker.join()
    else:
        run(args)


def run(args: argparse.Namespace) -> None:
    out: dict[str, object] = {
        "thread": args.thread,
        "batch": args.batch,
        "mode": args.mode,
        "fullgraph": not args.no_fullgraph,
    }
    try:
        import torch
        import transformers

        cfg = transformers.AutoConfig.from_pretrained(args.model_dir)
        with torch.device("cuda"):
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        model.eval()
        kwargs: dict[str, object] = {"cache_implementation": "static"}
        if args.mode is not None or args.no_fullgraph:
            cc: dict[str, object] = {"fullgraph": not args.no_fullgraph}
            if args.mode is not None:
                cc["mode"] = args.mode
            kwargs["compile_config"] = transformers.CompileConfig(**cc)
        ids = torch.randint(10, 1000, (args.batch, args.prompt), device="cuda")
        mask = torch.ones_like(ids)
        stamps: list[float] = []

        class Streamer:
            def put(self, value: object) -> None:
                if hasattr(value, "tolist"):
                    value.tolist()  # host copy: waits for the device
                stamps.append(time.perf_counter())

            def end(self) -> None:
                pass

        for rep in range(2):
            stamps.clear()
            t0 = time.perf_counter()
            with torch.inference_mode():
                model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=args.tokens,
                    min_new_tokens=args.tokens,
                    do_sample=False,
                    streamer=Streamer(),
                    **kwargs,
                )
            out[f"generate_{rep}_s"] = round(time.perf_counter() - t0, 3)
        steps = sorted(b - a for a, b in itertools.pairwise(stamps[2:]))
        out["ok"] = True
        out["step_ms_p50"] = round(1000 * steps[len(steps) // 2], 3) if steps else None
    except Exception:  # the point of the probe: report whatever breaks
        out["ok"] = False
        out["traceback"] = traceback.format_exc()[-4000:]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
