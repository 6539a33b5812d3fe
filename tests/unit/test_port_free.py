"""A fixed port for a local engine: refused while something listens on it, free again as soon
as its last connection merely lingers in TIME_WAIT (a server restarted on the same port)."""

from __future__ import annotations

import socket

from infermeter.engines.process import port_is_free


def test_a_port_with_only_lingering_connections_is_free() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    assert not port_is_free("127.0.0.1", port)
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server's side closes first: its end (on `port`) waits in TIME_WAIT
    client.close()
    listener.close()
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEADDR
    try:
        plain.bind(("127.0.0.1", port))
        lingering = False
    except OSError:
        lingering = True
    finally:
        plain.close()
    assert lingering  # a bind without SO_REUSEADDR still fails here...
    assert port_is_free("127.0.0.1", port)  # ...and a server's bind would not
