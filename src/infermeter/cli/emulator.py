"""``infermeter serve-ground-truth``: the emulator with exact timing, for measuring clients."""

from __future__ import annotations

import typer

from infermeter.cli.common import fail
from infermeter.clients import clock as stamping_loop
from infermeter.testing.emulator import FAULTS, EmulatorConfig, GroundTruthServer


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
    reuse_port: bool = typer.Option(
        False,
        "--reuse-port",
        help="Share the port with other emulator processes (SO_REUSEPORT): the kernel spreads connections over them.",
    ),
) -> None:
    """Serve OpenAI-style streams with known timing, each chunk stamped with its send time."""
    if fault is not None and fault not in FAULTS:
        raise fail(f"--fault must be one of {', '.join(FAULTS)}, got {fault!r}")
    cfg = EmulatorConfig(
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        tokens_per_chunk=tokens_per_chunk,
        model=model,
        fault=fault,
        fault_after=fault_after,
        fault_every=fault_every,
    )
    server = GroundTruthServer(cfg, host, port, reuse_port=reuse_port)
    typer.echo(
        f"ground-truth server at http://{host}:{port} (model {model!r}); Ctrl-C stops", err=True
    )
    try:
        stamping_loop.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
