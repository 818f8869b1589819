"""Run in the engine venv (LMCache 0.5.6): LMCache's own native RESP client
(`lmcache.lmcache_redis` through `RESPClient`, what a `resp://` remote URL uses) against a
loopback RESP server that holds one key, and the LMCache constants the cache server is sized
from. Prints one JSON object."""

import asyncio
import inspect
import json
import re
import socket
import threading

from lmcache.v1.config import _CONFIG_DEFINITIONS
from lmcache.v1.storage_backend.connector import redis_adapter, redis_connector
from lmcache.v1.storage_backend.native_clients.resp_client import RESPClient

STORE = {b"present": b"A" * 16}
FILL = b"\xaa" * 16


def _parse(buf: bytes):
    """One RESP array of bulk strings off the front of `buf`, or (None, buf) when incomplete."""
    end = buf.find(b"\r\n")
    if not buf.startswith(b"*") or end < 0:
        return None, buf
    pos, args = end + 2, []
    for _ in range(int(buf[1:end])):
        head = buf.find(b"\r\n", pos)
        if head < 0:
            return None, buf
        size, start = int(buf[pos + 1:head]), head + 2
        if len(buf) < start + size + 2:
            return None, buf
        args.append(buf[start:start + size])
        pos = start + size + 2
    return args, buf[pos:]


def _reply(args) -> bytes:
    cmd = args[0].upper()
    if cmd == b"GET":
        value = STORE.get(args[1])
        return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)
    if cmd == b"EXISTS":
        return b":%d\r\n" % sum(a in STORE for a in args[1:])
    if cmd == b"SET":
        STORE[args[1]] = args[2]
    return b"+OK\r\n"


def _serve(conn: socket.socket) -> None:
    buf = b""
    while data := conn.recv(1 << 16):
        buf += data
        while True:
            args, buf = _parse(buf)
            if args is None:
                break
            conn.sendall(_reply(args))


def _listen() -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=_serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


async def _gets(port: int) -> dict:
    client = RESPClient("127.0.0.1", port, 2, asyncio.get_running_loop())
    found = {"exists_missing": await client.exists("missing")}
    for key in ("missing", "present"):
        buf = bytearray(FILL)
        try:
            await asyncio.wait_for(client.get(key, memoryview(buf)), 10)
            found[key] = {"raised": None, "buffer_untouched": bytes(buf) == FILL,
                          "buffer_is_value": bytes(buf) == STORE[b"present"]}
        except Exception as exc:  # what the client does is the finding
            found[key] = {"raised": type(exc).__name__}
    client.close()
    return found


def _constants() -> dict:
    pool = re.findall(r"self\.max_connections = (\d+)", inspect.getsource(redis_connector.RedisConnector))
    threads = re.findall(r'"resp_num_threads", (\d+)', inspect.getsource(redis_adapter.RESPConnectorAdapter))
    return {"redis_pool": [int(p) for p in pool], "resp_threads": [int(t) for t in threads],
            "chunk_size_default": _CONFIG_DEFINITIONS["chunk_size"]["default"]}


if __name__ == "__main__":
    print(json.dumps({"gets": asyncio.run(_gets(_listen())), **_constants()}))
