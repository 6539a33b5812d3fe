"""``infermeter proxy``: measure live traffic to an OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import ipaddress
import math
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from infermeter.cli.common import (
    EXIT_TERMINATED,
    THINK_TAGS_HELP,
    fail,
    interrupted_exit,
    router_named,
)

if TYPE_CHECKING:
    from infermeter.proxy.server import ProxyConfig


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy(
    upstreams: list[str] = typer.Option(
        ...,
        "--upstream",
        metavar="URL",
        help="The server to forward to (http/https). Repeat it for replicas of one model: requests are spread over them by --router.",
    ),
    router: str = typer.Option(
        "round-robin",
        "--router",
        help="round-robin or least-outstanding (fewest requests in flight), as simulate and plan model them.",
    ),
    listen: str = typer.Option(
        "127.0.0.1:8089", "--listen", metavar="HOST:PORT", help="Address and port to listen on."
    ),
    records: Path | None = typer.Option(
        None, "--records", help="Write sampled request records here (infermeter report reads it)."
    ),
    sample: float = typer.Option(1.0, "--sample", help="Fraction of requests to record, 0..1."),
    rotate_mb: float = typer.Option(
        64.0, "--rotate-mb", help="Start a new records directory past this size."
    ),
    column_cache: bool = typer.Option(
        True,
        "--column-cache/--no-column-cache",
        help="Fold each closed records directory into its column cache (a child process at nice 19), so reports of long recordings read columns.",
    ),
    max_models: int = typer.Option(
        32, "--max-models", help="Distinct model label values before 'other'."
    ),
    upstream_timeout: float = typer.Option(
        300.0,
        "--upstream-timeout",
        metavar="S",
        help="Seconds of upstream silence (a prefill counts) before a 504 or a cut stream.",
    ),
    client_idle_timeout: float = typer.Option(
        60.0,
        "--client-idle-timeout",
        metavar="S",
        help="Seconds a client may stay idle, or take to send a request's head or body.",
    ),
    think_tags: bool = typer.Option(
        False,
        "--think-tags",
        help=THINK_TAGS_HELP,
    ),
) -> None:
    """Forward to --upstream, measure every chat/completions request, serve /metrics."""
    for upstream in upstreams:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise fail(f"--upstream must be an http:// or https:// URL, got {upstream!r}")
        if parts.username is not None or parts.password is not None:
            # Credentials in the URL would be written to run.json and the log, and are not
            # sent upstream: clients' own Authorization headers are forwarded as they come.
            raise fail(
                "--upstream must not carry credentials (user:pass@): the proxy forwards each "
                "client's own Authorization header"
            )
    if len(set(upstreams)) != len(upstreams):
        raise fail("--upstream names the same server twice")
    spread = router_named(router)
    host, port = _listen(listen)
    if not 0.0 <= sample <= 1.0:
        raise fail(f"--sample must be between 0 and 1, got {sample}")
    if rotate_mb <= 0 or max_models < 1:
        raise fail("--rotate-mb must be > 0 and --max-models >= 1")
    for flag, seconds in (
        ("--upstream-timeout", upstream_timeout),
        ("--client-idle-timeout", client_idle_timeout),
    ):
        if not (seconds > 0 and math.isfinite(seconds)):
            raise fail(f"{flag} must be > 0 seconds (finite), got {seconds:g}")
    if not _is_loopback(host):
        typer.echo(
            f"warning: listening on {host}, not loopback: anyone who can reach it can use "
            "the upstream with the credentials they send",
            err=True,
        )
    # The proxy's HTTP stack is loaded by this command alone, not by every CLI start.
    from infermeter.proxy.server import ProxyConfig

    config = ProxyConfig(
        upstream=upstreams[0],
        replicas=tuple(upstreams[1:]),
        router=spread,
        host=host,
        port=port,
        max_models=max_models,
        records_dir=records,
        sample=sample,
        rotate_mb=rotate_mb,
        cache_columns=column_cache,
        upstream_timeout_s=upstream_timeout,
        client_idle_timeout_s=client_idle_timeout,
        think_tags=think_tags,
    )
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        if interrupted_exit() == EXIT_TERMINATED:
            raise typer.Exit(EXIT_TERMINATED) from None


async def _serve(config: ProxyConfig) -> None:
    from infermeter.proxy.server import METRICS_PATH, ProxyServer

    try:
        server = await ProxyServer(config).start()
    except OSError as exc:
        raise fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
    urls = server.replicas.urls
    spread = f" ({config.router})" if len(urls) > 1 else ""
    typer.echo(f"infermeter proxy at {server.url} -> {', '.join(urls)}{spread}", err=True)
    typer.echo(f"metrics at {server.url}{METRICS_PATH}; Ctrl-C stops", err=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
