"""Plain-TCP reads with the kernel's receive time: the lean client's stamps that a busy
client cannot delay.

An arrival stamp taken in Python is late by however long the event loop took to get to the
socket. When one client process drives hundreds of streams, a burst of chunks waits in the
socket buffers while the loop works through it, and the wait would be reported as the
server's latency. Linux stamps every packet as it arrives (``SO_TIMESTAMPNS``) and hands the
stamp of the newest packet a read returns to ``recvmsg``; ``SocketIO`` reads that way, with no
asyncio transport in between: a client's sockets sit in one epoll set (``Poller``), the loop
watches the set, and one callback reads every ready socket. The connection gets the kernel's
time converted to the run's clock. So a chunk's stamp stays right while the client is busy,
as long as the next chunk of the same stream has not arrived too (then both get the newer
packet's time, which is never early; bench/RESULTS.md shows when that begins).

Where the kernel does not stamp (not Linux, TLS, an unknown architecture) the client keeps
asyncio's transports and the stamp of the poll (``clients/clock.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import platform
import select
import socket
import struct
import sys
import time
from typing import Any, Protocol

#: ``SO_TIMESTAMPNS`` (``SO_TIMESTAMPNS_OLD``: a 64-bit ``struct timespec`` on 64-bit Linux).
#: The option number is the same on the architectures listed; elsewhere it is not used.
SO_TIMESTAMPNS = 35
_ARCHES = frozenset({"x86_64", "amd64", "aarch64", "arm64", "riscv64"})
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def kernel_stamps_supported() -> bool:
    return (
        sys.platform.startswith("linux")
        and platform.machine().lower() in _ARCHES
        and hasattr(socket.socket, "recvmsg_into")
        and hasattr(select, "epoll")
        and _ANCILLARY > 0
    )


def enable_kernel_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp this socket's reads; False where it will not."""
    if not kernel_stamps_supported():
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


Address = tuple[int, int, int, tuple[Any, ...]]  # family, type, proto, sockaddr


def numeric_address(host: str, port: int) -> list[Address] | None:
    """The address of an IP literal without asking the resolver (None for a name)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 0, (str(ip), port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, 0, (str(ip), port))]


async def resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[Address]:
    numeric = numeric_address(host, port)
    if numeric is not None:
        return numeric
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, kind, proto, addr) for family, kind, proto, _name, addr in infos]


async def connect_plain(loop: asyncio.AbstractEventLoop, addrs: list[Address]) -> socket.socket:
    """A connected non-blocking TCP socket to the first of ``addrs`` that answers."""
    last: OSError = OSError("no address to connect to")
    for family, kind, proto, addr in addrs:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, addr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise last


class StampedProtocol(Protocol):
    """What ``SocketIO`` drives (``rawhttp._Connection``)."""

    last_rx_ns: int

    def connection_made(self, transport: SocketIO) -> None: ...

    def data_at(self, t_ns: int, data: bytes) -> None: ...

    def data_polled(self, t_ns: int, data: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class Poller:
    """One epoll set for the sockets of one client; the event loop watches only the set.

    asyncio dispatches every ready socket as its own callback (a handle, a context switch,
    queue work): about 1.5 µs a chunk, a sizeable share of a chunk's budget at a thousand
    streams. Here one loop callback reads every ready socket in turn; reads the kernel did
    not stamp get the instant this poll returned."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._ios: dict[int, SocketIO] = {}
        loop.add_reader(self._epoll.fileno(), self._ready)

    def add(self, fd: int, io: SocketIO) -> None:
        self._epoll.register(fd, select.EPOLLIN)
        self._ios[fd] = io

    def remove(self, fd: int) -> None:
        if self._ios.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass

    def _ready(self) -> None:
        events = self._epoll.poll(0)
        now = _clock()
        offset = _wall() - now
        ios = self._ios
        for fd, _mask in events:
            io = ios.get(fd)
            if io is not None:
                io.read(now, offset)

    def close(self) -> None:
        if self._epoll.closed:
            return
        self._loop.remove_reader(self._epoll.fileno())
        for io in list(self._ios.values()):
            io.abort()
        self._epoll.close()


_clock = time.perf_counter_ns
_wall = time.time_ns


class SocketIO:
    """The transport of one plain TCP connection: reads with the kernel's stamps, writes
    straight to the socket (the rest, if the socket is full, when it drains)."""

    __slots__ = (
        "_bufs",
        "_closing",
        "_fd",
        "_loop",
        "_out",
        "_poller",
        "_proto",
        "_sock",
        "_view",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: Poller,
        sock: socket.socket,
        proto: StampedProtocol,
        view: memoryview,
    ) -> None:
        self._loop = loop
        self._poller = poller
        self._sock = sock
        self._proto = proto
        self._fd = sock.fileno()
        self._view = view
        self._bufs = [view]
        self._out = b""
        self._closing = False
        proto.connection_made(self)
        poller.add(self._fd, self)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._sock if name == "socket" else default

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lose(exc)
            return
        if sent < len(data):
            self._out = data[sent:]
            self._loop.add_writer(self._fd, self._drain)

    def _drain(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(exc)
            return
        self._out = self._out[sent:]
        if not self._out:
            self._loop.remove_writer(self._fd)

    def read(self, t: int, offset: int) -> None:
        """The socket is readable; ``t`` is when the poll said so, ``offset`` the wall clock
        minus the run's clock at that instant."""
        try:
            n, ancillary, _flags, _addr = self._sock.recvmsg_into(self._bufs, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(exc)
            return
        if not n:
            self._lose(None)
            return
        proto = self._proto
        if ancillary:
            level, kind, raw = ancillary[0]
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                # The kernel's time, on this clock; never before the previous stamp (or the
                # request's send time), so clock conversion error cannot reorder a stream.
                kernel = sec * 1_000_000_000 + nsec - offset
                floor = proto.last_rx_ns
                proto.data_at(kernel if kernel > floor else floor, bytes(self._view[:n]))
                return
        proto.data_polled(t, bytes(self._view[:n]))

    def abort(self) -> None:
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._closing:
            return
        self._closing = True
        self._poller.remove(self._fd)
        if self._out:
            self._loop.remove_writer(self._fd)
            self._out = b""
        self._sock.close()
        self._loop.call_soon(self._proto.connection_lost, exc)
