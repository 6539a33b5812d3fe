"""``infermeter serve-ground-truth``: the emulator with exact timing, for measuring clients."""

from __future__ import annotations

import typer

from infermeter.cli.common import fail
from infermeter.clients import clock as stamping_loop
from infermeter.testing.emulator import (
    FAULTS,
    REASONING_STYLES,
    EmulatorConfig,
    GroundTruthServer,
)


def serve_ground_truth(
    port: int = typer.Option(9000, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    ttft_ms: float = typer.Option(50.0, "--ttft-ms", help="Time from request read to first token."),
    itl_ms: float = typer.Option(10.0, "--itl-ms", help="Time between tokens."),
    tokens_per_chunk: int = typer.Option(
        1, "--tokens-per-chunk", help="Tokens in each streamed chunk."
    ),
    model: str = typer.Option("ground-truth", "--model", help="Model name to serve and list."),
    fault: str | None = typer.Option(
        None, "--fault", help=f"Misbehave on purpose: {', '.join(FAULTS)}."
    ),
    fault_after: int = typer.Option(3, "--fault-after", help="Tokens sent before a stream fault."),
    fault_every: int = typer.Option(1, "--fault-every", help="Fault every Nth stream."),
    reasoning_tokens: int = typer.Option(
        0, "--reasoning-tokens", help="The first N output tokens of each answer are thinking."
    ),
    reasoning_style: str = typer.Option(
        "reasoning_content",
        "--reasoning-style",
        help="How thinking is sent: reasoning_content or reasoning deltas, or think_tags (<think>…</think> in the content).",
    ),
    reuse_port: bool = typer.Option(
        False,
        "--reuse-port",
        help="Share the port with other emulator processes (SO_REUSEPORT): the kernel spreads connections over them.",
    ),
) -> None:
    """Serve OpenAI-style streams with known timing, each chunk stamped with its send time."""
    if fault is not None and fault not in FAULTS:
        raise fail(f"--fault must be one of {', '.join(FAULTS)}, got {fault!r}")
    if reasoning_style not in REASONING_STYLES:
        raise fail(
            f"--reasoning-style must be one of {', '.join(REASONING_STYLES)}, "
            f"got {reasoning_style!r}"
        )
    if reasoning_tokens < 0:
        raise fail(f"--reasoning-tokens must be ≥ 0, got {reasoning_tokens}")
    cfg = EmulatorConfig(
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        tokens_per_chunk=tokens_per_chunk,
        model=model,
        fault=fault,
        fault_after=fault_after,
        fault_every=fault_every,
        reasoning_tokens=reasoning_tokens,
        reasoning_style=reasoning_style,
    )
    server = GroundTruthServer(cfg, host, port, reuse_port=reuse_port)
    typer.echo(
        f"ground-truth server at http://{host}:{port} (model {model!r}); Ctrl-C stops", err=True
    )
    try:
        stamping_loop.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
