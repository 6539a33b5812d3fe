"""``infermeter proxy``: a transparent reverse proxy that measures live traffic.

Every chat/completions request that passes through becomes a ``RequestRecord`` built from the
bytes on the wire, with the same timing and token accounting as a benchmark, and feeds
Prometheus metrics served at the proxy's own ``/metrics``.
"""

from __future__ import annotations

from infermeter.proxy.server import ProxyConfig, ProxyServer, ThreadedProxy

__all__ = ["ProxyConfig", "ProxyServer", "ThreadedProxy"]
