"""A tiny loopback engine speaking vLLM's wire format, with switchable failure modes.

Raw asyncio streams so a test controls every byte: it can close before answering, break a
stream midway, hang, answer 503, or stop answering health checks. It counts the requests it
got, finished, and saw cancelled by the peer (the router closing the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import orjson

_SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
_JSON = b"application/json"
OK, CLOSE_BEFORE, CLOSE_MID, HANG, UNAVAILABLE = "ok", "close_before", "close_mid", "hang", "503"
# Headers on every whole answer: one a client may need (relayed), one hop-by-hop (not relayed).
RELAYED = b"x-engine-request-id: cmpl-fake\r\n"
HOP_BY_HOP = b"keep-alive: timeout=5\r\n"


class FakeEngine:
    def __init__(self, *, model: str = "m", chunks: int = 3, chunk_delay: float = 0.0,
                 name: str = "", pad: int = 0) -> None:
        self.model = model
        self.adapters: list[str] = []  # LoRA adapters it lists in /v1/models (parent: `model`)
        self.echo_model = False  # answer with the requested model as `model`, in every event (as vLLM)
        self.pad = "x" * pad
        self.chunks = chunks
        self.chunk_delay = chunk_delay
        self.name = name
        self.mode = OK
        self.healthy = True
        self.hang_health = False
        self.health_delay = 0.0  # seconds /health takes to answer (a busy engine)
        self.waiting = 0
        self.requests = 0
        self.completed = 0
        self.cancelled = 0
        self.connections = 0
        self.bodies: list[dict] = []
        self.paths: list[str] = []  # each proxied request's path
        self.headers: list[dict[str, str]] = []  # each proxied request's headers (names lower-case)
        self.metrics_text: str | None = None  # /metrics answer; None: waiting and running figures
        self.metrics_scrapes = 0
        self.chunk_written = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and drop every open connection (an engine that died)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            writer.transport.abort()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if method == "GET":
            return await self._get(path, writer)
        self.headers.append(headers)
        self.paths.append(path)
        return await self._post(json.loads(body), reader, writer)  # as vLLM reads JSON (lone surrogates too)

    async def _get(self, path: str, writer: asyncio.StreamWriter) -> bool:
        if path == "/health":
            if self.hang_health:
                await asyncio.sleep(3600)
            if self.health_delay:
                await asyncio.sleep(self.health_delay)
            _answer(writer, 200 if self.healthy else 503, b"{}")
        elif path == "/v1/models":
            card = {"id": self.model, "object": "model", "root": f"/models/{self.model}",
                    "max_model_len": 8192, "parent": None}
            # vLLM 0.33 lists each loaded adapter with its path as root and its base as parent
            # (OpenAIServingModels.show_available_models)
            loras = [{"id": name, "object": "model", "root": f"/models/lora/{name}", "parent": self.model,
                      "max_model_len": None} for name in self.adapters]
            _answer(writer, 200, orjson.dumps({"object": "list", "data": [card, *loras]}))
        elif path == "/version":
            _answer(writer, 200, b'{"version": "0.33.0"}')
        elif path == "/metrics":
            self.metrics_scrapes += 1
            model = f'{{model_name="{self.model}"}}'
            text = self.metrics_text or (f"vllm:num_requests_waiting{model} {self.waiting}\n"
                                         f"vllm:num_requests_running{model} 1\n")
            _answer(writer, 200, text.encode(), b"text/plain")
        else:
            _answer(writer, 404, b"{}")
        await writer.drain()
        return True

    async def _post(self, body: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        self.requests += 1
        self.bodies.append(body)
        if self.mode == CLOSE_BEFORE:
            return False
        if self.mode == HANG:
            await asyncio.sleep(3600)
        if self.mode == UNAVAILABLE:
            _answer(writer, 503, b'{"error": {"message": "busy", "type": "x", "code": 503}}')
            return True
        named = body.get("model") or self.model
        if body.get("stream"):
            return await self._stream(reader, writer, named if self.echo_model else None)
        answer = {"id": "x", "engine": self.name, "model": named if self.echo_model else self.model,
                  "choices": [{"message": {"role": "assistant", "content": "hi"}}]}
        _answer(writer, 200, orjson.dumps(answer), extra=RELAYED + HOP_BY_HOP)
        self.completed += 1
        return True

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      model: str | None = None) -> bool:
        writer.write(_SSE_HEAD)
        eof = asyncio.ensure_future(reader.read(1))  # the router closing the connection = cancel
        try:
            for i in range(self.chunks):
                if self.mode == CLOSE_MID and i == 1:
                    return False
                delta = {"engine": self.name, "choices": [{"delta": {"content": f"t{i}{self.pad}"}}]}
                if model is not None:
                    delta["model"] = model
                event = b"data: " + orjson.dumps(delta)
                _chunk(writer, event + b"\n\n")
                await writer.drain()
                self.chunk_written.set()
                if self.chunk_delay:
                    await asyncio.wait([eof], timeout=self.chunk_delay)
                if eof.done():
                    self.cancelled += 1
                    return False
        finally:
            if not eof.done():
                eof.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await eof
        _chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.completed += 1
        return True


def _answer(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: bytes = _JSON,
            extra: bytes = b"") -> None:
    head = b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status, ctype, len(body), extra)
    writer.write(head + body)


def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
