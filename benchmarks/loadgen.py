"""A lean HTTP/1.1 load generator: keep-alive connections over asyncio streams, requests pre-encoded.

httpx costs about 1 ms of CPU per request on the client side, which on a 2-core machine takes a core away
from the server it measures. This client writes pre-built request bytes and reads the status line, the
Content-Length and the body, nothing else: tens of microseconds per request. It understands exactly what
the service sends (Content-Length or chunked bodies, keep-alive), not HTTP at large.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    failures: int = 0
    elapsed: float = 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def line(self, name: str) -> str:
        count = len(self.seconds)
        return (
            f"  {name:<42} {count:>6,} requests in {self.elapsed:5.1f} s = {count / self.elapsed:6,.0f}/s"
            f" | p50 {self.percentile(0.5) * 1000:6.1f} ms  p95 {self.percentile(0.95) * 1000:6.1f} ms"
            f"  p99 {self.percentile(0.99) * 1000:6.1f} ms  max {max(self.seconds) * 1000:7.1f} ms"
            f" | failures {self.failures}"
        )


def request(method: str, path: str, body: object | None = None) -> bytes:
    """One request, encoded once and sent as often as needed."""
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return (head + "\r\n").encode() + payload


# The service closes a keep-alive connection idle for 5 s (STYX_HTTP_KEEP_ALIVE_TIMEOUT); one idle this long
# is opened again before its next request, so that a slow open loop does not count closed sockets as failures.
IDLE_REOPEN_SECONDS = 4.0


class Connection:
    """One keep-alive connection; `send` returns the response's status and body."""

    def __init__(self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._address = (host, port)
        self._reader = reader
        self._writer = writer
        self._last_used = time.monotonic()

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        return cls(host, port, *await asyncio.open_connection(host, port))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if time.monotonic() - self._last_used > IDLE_REOPEN_SECONDS:
            self._writer.close()
            self._reader, self._writer = await asyncio.open_connection(*self._address)
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
            elif line.lower() == b"transfer-encoding: chunked":
                body = await self._chunked_body()
                break
        else:
            body = await self._reader.readexactly(length) if length else b""
        self._last_used = time.monotonic()
        return status, body

    async def _chunked_body(self) -> bytes:
        """A streamed answer (GET /status/activeStates unfiltered): chunks until the empty one."""
        chunks = []
        while size := int((await self._reader.readuntil(b"\r\n"))[:-2], 16):
            chunks.append((await self._reader.readexactly(size + 2))[:-2])
        await self._reader.readuntil(b"\r\n")  # the end of the (empty) trailer
        return b"".join(chunks)

    def close(self) -> None:
        self._writer.close()


async def _timed(connection: Connection, raw: bytes, since: float, latencies: Latencies) -> None:
    try:
        status, _ = await connection.send(raw)
        if status >= 400:
            latencies.failures += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        latencies.failures += 1
    latencies.seconds.append(time.perf_counter() - since)


async def closed_loop(base_url: str, requests: Iterable[bytes], in_flight: int) -> Latencies:
    """Every request, `in_flight` connections each sending its next one when the last was answered."""
    latencies = Latencies()
    queue = iter(requests)
    connections = [await Connection.open(base_url) for _ in range(in_flight)]

    async def worker(connection: Connection) -> None:
        for raw in queue:
            await _timed(connection, raw, time.perf_counter(), latencies)

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    latencies.elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return latencies


async def open_loop(
    base_url: str,
    raw: bytes | Iterable[bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
    latencies: Latencies | None = None,
) -> Latencies:
    """`rate` requests a second for `seconds`, each timed from when it was due (a stalled server is not
    hidden by a generator that waits for it). A request due while every connection is busy waits for one.
    `raw` is one request sent again and again, or the requests in turn; `latencies`, if given, fills as
    answers arrive (a sampler can read it meanwhile)."""
    latencies = Latencies() if latencies is None else latencies
    requests = itertools.repeat(raw) if isinstance(raw, bytes) else iter(raw)
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()  # the warm connections first
    for _ in range(connections):
        idle.put_nowait(await Connection.open(base_url))
    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float, message: bytes) -> None:
        connection = await idle.get()
        await _timed(connection, message, due, latencies)
        idle.put_nowait(connection)

    for number, message in zip(range(int(rate * seconds)), requests, strict=False):
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    latencies.elapsed = time.perf_counter() - started
    while not idle.empty():
        idle.get_nowait().close()
    return latencies


def until(deadline: float, raw: bytes) -> Iterator[bytes]:
    """The same request again and again until `deadline` (perf_counter)."""
    while time.perf_counter() < deadline:
        yield raw
