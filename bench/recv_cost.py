"""What one socket read costs on this machine, by read style.

A forked sender (pinned to core 0) writes N messages of 330 bytes over loopback TCP with a
short gap, so that each read returns about one message; the receiver (core 1) reads them in a
blocking loop and reports CPU time per read for: ``recv(262144)`` (asyncio's default read
size), ``recv(65536)``, ``recv_into`` a reused buffer, and ``recvmsg_into`` with the kernel's
receive stamp (``SO_TIMESTAMPNS``, what infermeter's client does on Linux).

    python bench/recv_cost.py
"""

from __future__ import annotations

import os
import socket
import time

N = 100_000
MSG = b"x" * 330
SO_TIMESTAMPNS = 35


def one(mode: str) -> str:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    port = ls.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {0})
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(N):
            s.send(MSG)
            until = time.perf_counter() + 20e-6
            while time.perf_counter() < until:
                pass
        s.close()
        os._exit(0)
    os.sched_setaffinity(0, {1})
    conn, _ = ls.accept()
    if mode == "recvmsg_into+stamp":
        conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    buf = bytearray(65536)
    view = memoryview(buf)
    got = calls = 0
    cpu0 = time.process_time()
    while True:
        if mode == "recv(262144)":
            n = len(conn.recv(262144))
        elif mode == "recv(65536)":
            n = len(conn.recv(65536))
        elif mode == "recv_into":
            n = conn.recv_into(buf)
            bytes(view[:n])
        else:
            n = conn.recvmsg_into([buf], 64)[0]
            bytes(view[:n])
        if not n:
            break
        got += n
        calls += 1
    cpu = time.process_time() - cpu0
    os.waitpid(pid, 0)
    conn.close()
    ls.close()
    return f"| {mode} | {calls:,} | {got / calls:.0f} | {cpu / calls * 1e6:.2f} |"


def main() -> None:
    print("| read | reads | bytes per read | CPU µs per read |")
    print("|---|---|---|---|")
    for mode in ("recv(262144)", "recv(65536)", "recv_into", "recvmsg_into+stamp"):
        print(one(mode), flush=True)


if __name__ == "__main__":
    main()
