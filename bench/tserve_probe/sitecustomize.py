"""Loaded by ``transformers serve`` through PYTHONPATH (bench/gpu_study.sh tserve-sdpa): every
call of torch's scaled_dot_product_attention in the server written to SDPA_LOG, one line a
call of the first layer (the call count modulo SDPA_LAYERS), with its shapes, mask and
strides, so that steps of the server's fast and slow waves can be told apart by what the
attention was given; beside them the calling thread's and the process's CPU seconds, the
CUDA caching allocator's counters (device mallocs and frees, retries after a failed
malloc, bytes reserved) and the interpreter's collections, so that a slow step can be laid
to the host, the allocator or the collector. With STACK_LOG set as well, a thread samples
the Python stack of the thread that runs the model every STACK_MS milliseconds (5) and
writes its innermost STACK_DEPTH frames (24), on the same clock, so that where a slow step's time goes can
be set beside a fast one's. With SDPA_CUDNN=0, torch's cuDNN attention is switched off, so
that torch picks another of its fused kernels; otherwise what each call computes is unchanged."""

import gc
import os
import sys
import threading
import time

if os.environ.get("SDPA_CUDNN") is not None or os.environ.get("SDPA_LOG"):
    import torch

    if os.environ.get("SDPA_CUDNN") == "0":
        # the experiment's switch: leave torch's cuDNN attention out of the kernels it picks
        torch.backends.cuda.enable_cudnn_sdp(False)
    # in the server's log, so that a run can be checked to have had the switch or not
    print(
        f"tserve_probe: torch {torch.__version__}, cuDNN attention "
        f"{'on' if torch.backends.cuda.cudnn_sdp_enabled() else 'off'}",
        file=sys.stderr,
        flush=True,
    )

_LOG = os.environ.get("SDPA_LOG")
if _LOG:
    import torch
    import torch.nn.functional as F

    _orig = F.scaled_dot_product_attention
    _out = open(_LOG, "w", buffering=1 << 16)  # noqa: SIM115 - open for the server's life
    _layers = int(os.environ.get("SDPA_LAYERS", "32"))
    _calls = [0]

    def _shape(t: object) -> str:
        if not isinstance(t, torch.Tensor):
            return repr(t)
        return f"{tuple(t.shape)}:{str(t.dtype)[6:]}:{t.stride()}"

    def _kernels(q, k, v, mask, kwargs) -> str:  # type: ignore[no-untyped-def]
        """Which fused kernels torch could take for these inputs (else the math one)."""
        try:
            params = torch.backends.cuda.SDPAParams(
                q,
                k,
                v,
                mask,
                0.0,
                bool(kwargs.get("is_causal", False)),
                bool(kwargs.get("enable_gqa", False)),
            )
            flash = torch.backends.cuda.can_use_flash_attention(params, False)
            eff = torch.backends.cuda.can_use_efficient_attention(params, False)
            cudnn = getattr(torch.backends.cuda, "can_use_cudnn_attention", None)
            cud = (
                int(cudnn(params, False))
                if cudnn and torch.backends.cuda.cudnn_sdp_enabled()
                else 0
            )
            return f"flash={int(flash)} eff={int(eff)} cudnn={cud} "
        except Exception as e:  # a probe: say why, keep serving
            return f"kernels=? ({type(e).__name__}) "

    def _state() -> str:
        """CPU seconds, allocator counters and collections so far (cumulative: diff them)."""
        m = torch.cuda.memory_stats()
        gens = "/".join(str(g["collections"]) for g in gc.get_stats())
        return (
            f"cpu={time.thread_time():.6f} proc={time.process_time():.6f} "
            f"malloc={m.get('num_device_alloc', -1)} free={m.get('num_device_free', -1)} "
            f"retry={m.get('num_alloc_retries', -1)} ooms={m.get('num_ooms', -1)} "
            f"reserved={m.get('reserved_bytes.all.current', -1)} gc={gens} "
        )

    #: the thread that runs the model: the one that calls the attention
    _model_thread = [0]

    def _frames(frame: object, depth: int = int(os.environ.get("STACK_DEPTH", "24"))) -> str:
        """The innermost ``depth`` frames as file:line:function, innermost first."""
        out = []
        while frame is not None and len(out) < depth:
            code = frame.f_code  # type: ignore[attr-defined]
            out.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno}:{code.co_name}")  # type: ignore[attr-defined]
            frame = frame.f_back  # type: ignore[attr-defined]
        return "<".join(out)

    def _sample(path: str, every_s: float) -> None:
        with open(path, "w", buffering=1 << 16) as out:
            while True:
                time.sleep(every_s)
                ident = _model_thread[0]
                frame = sys._current_frames().get(ident) if ident else None
                if frame is not None:
                    out.write(f"{time.perf_counter():.6f} {_frames(frame)}\n")

    _STACKS = os.environ.get("STACK_LOG")
    if _STACKS:
        threading.Thread(
            target=_sample,
            args=(_STACKS, float(os.environ.get("STACK_MS", "5")) / 1000),
            name="stack-sampler",
            daemon=True,
        ).start()

    def _logged(q, k, v, attn_mask=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        n = _calls[0]
        _calls[0] = n + 1
        _model_thread[0] = threading.get_ident()
        if n % _layers == 0:
            _out.write(
                f"{time.perf_counter():.6f} {_state()}{_kernels(q, k, v, attn_mask, kwargs)}q={_shape(q)} k={_shape(k)} mask={_shape(attn_mask)} "
                f"args={args!r} kw={sorted((a, str(b)) for a, b in kwargs.items())}\n"
            )
            _out.flush()
        return _orig(q, k, v, attn_mask, *args, **kwargs)

    F.scaled_dot_product_attention = _logged
