"""The HTTP limits of api/server.py on real sockets: the app served by uvicorn as `styx serve` serves it
(uvicorn_config), spoken to in raw HTTP/1.1 so that heads can be oversized, unfinished or never sent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.server import uvicorn_config
from tests.api.conftest import Api, api_settings
from tests.conftest import wait_until

pytestmark = pytest.mark.local_only("uvicorn's protocol is the same over both actor systems")

PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
PING_AND_CLOSE = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
CLOSE_DEADLINE_SECONDS = 5.0  # far above every timeout the tests set: a connection left open fails the test

Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve(api: Api, tmp_path: Path) -> AsyncIterator[Serve]:
    """Serve the test's app on a free loopback port with the given settings; returns the port."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**settings: Any) -> int:
        config = uvicorn_config(api.service.app, api_settings(tmp_path, port=0, **settings), log_config=None)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        servers.append((server, serving))
        await wait_until(lambda: server.started or serving.done(), timeout=10, message="uvicorn to start")
        assert server.started, serving.result()
        port: int = server.servers[0].sockets[0].getsockname()[1]
        return port

    yield start
    for server, serving in servers:
        server.should_exit = True
        await serving


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (within CLOSE_DEADLINE_SECONDS)."""
    return await asyncio.wait_for(reader.read(), CLOSE_DEADLINE_SECONDS)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response (status, body) of a kept-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLOSE_DEADLINE_SECONDS)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return int(head.split(b" ")[1]), await reader.readexactly(length)


def status_and_body(response: bytes) -> tuple[int, Any]:
    """The status, and the body as JSON when it is (the API's errors) or else as bytes."""
    head, _, body = response.partition(b"\r\n\r\n")
    is_json = b"content-type: application/json" in head.lower()
    return int(head.split(b" ")[1]), json.loads(body) if is_json else body


async def exchange(port: int, request: bytes) -> tuple[int, Any]:
    """Send `request` whole, then read until the server closes."""
    reader, writer = await connect(port)
    writer.write(request)
    await writer.drain()
    try:
        return status_and_body(await read_until_closed(reader))
    finally:
        writer.close()


async def test_a_normal_request_is_served(serve: Serve) -> None:
    port = await serve()
    assert (await exchange(port, PING_AND_CLOSE))[0] == 200


async def test_a_64_mb_header_is_cut_off_early(serve: Serve) -> None:
    """Without a limit uvicorn's httptools protocol takes all 64 MB into memory and waits for more."""
    port = await serve()  # the default limit: 64 KiB of request line and headers
    reader, writer = await connect(port)
    chunk = b"a" * (1 << 20)
    sent = 0
    began = time.monotonic()
    answer = asyncio.create_task(reader.read())  # whatever comes before the close, read as it comes
    try:
        writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        while sent < 64 * len(chunk):
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass
    try:
        response = await asyncio.wait_for(answer, CLOSE_DEADLINE_SECONDS)
    except ConnectionResetError:  # the reset of our extra writes may come before the 431 is read
        response = b""
    finally:
        writer.close()
    assert sent < 32 * len(chunk), f"{sent} bytes accepted"
    assert time.monotonic() - began < CLOSE_DEADLINE_SECONDS
    assert response == b"" or status_and_body(response) == (
        431,
        {"code": 431, "message": "Request header too large: limit = 65536 bytes"},
    )


@pytest.mark.parametrize("finished", [True, False], ids=["whole head", "unfinished head"])
async def test_a_head_over_the_limit_gets_a_431(serve: Serve, finished: bool) -> None:
    port = await serve(http_max_header_bytes=4096)
    head = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 5000
    status, body = await exchange(port, head + (b"\r\n\r\n" if finished else b""))
    assert (status, body) == (431, {"code": 431, "message": "Request header too large: limit = 4096 bytes"})
    small = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    assert (await exchange(port, small))[0] == 200


async def test_a_long_request_target_gets_a_414(serve: Serve) -> None:
    port = await serve(http_max_url_bytes=1024)
    too_long = b"GET /ping?padding=" + b"c" * 1100 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert await exchange(port, too_long) == (414, {"code": 414, "message": "Request URL too long: limit = 1024 bytes"})
    within = b"GET /ping?padding=" + b"c" * 900 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    assert (await exchange(port, within))[0] == 200


@pytest.mark.parametrize("sent", [b"", b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["nothing", "half a head"])
async def test_a_connection_without_a_whole_head_is_closed_after_the_header_timeout(serve: Serve, sent: bytes) -> None:
    port = await serve(http_header_timeout=timedelta(seconds=0.5))
    reader, writer = await connect(port)
    began = time.monotonic()
    writer.write(sent)
    assert await read_until_closed(reader) == b""
    assert 0.4 < time.monotonic() - began < CLOSE_DEADLINE_SECONDS
    writer.close()


async def test_a_head_dribbled_byte_by_byte_is_closed_after_the_header_timeout(serve: Serve) -> None:
    """Bytes keep coming, so an idle timeout alone would never fire (slowloris)."""
    port = await serve(http_header_timeout=timedelta(seconds=0.5))
    reader, writer = await connect(port)
    head = PING[:-2]  # never finished
    pace_seconds = 0.05  # the attacker's: the whole head would take 1.9 s
    sent = 0
    while sent < len(head) and not reader.at_eof():
        writer.write(head[sent : sent + 1])
        sent += 1
        await asyncio.sleep(pace_seconds)
    assert await read_until_closed(reader) == b""
    assert sent < len(head), "the whole head was sent before the connection was closed"
    writer.close()


async def test_a_body_dribbled_after_a_whole_head_is_closed_after_the_body_timeout(serve: Serve, api: Api) -> None:
    """The head came in time, the body never completes: the request ends as a disconnect, nothing is written."""
    port = await serve(http_body_timeout=timedelta(seconds=0.5))
    body = json.dumps({"id": "dribbled", "concurrency": 1}).encode()
    head = (
        b"POST /api/v3/resources HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    reader, writer = await connect(port)
    began = time.monotonic()
    writer.write(head)
    sent = 0
    while sent < len(body) - 1 and not reader.at_eof():  # the last byte never comes
        writer.write(body[sent : sent + 1])
        sent += 1
        await asyncio.sleep(0.05)  # the whole body would take 1.5 s
    assert await read_until_closed(reader) == b""
    assert 0.4 < time.monotonic() - began < CLOSE_DEADLINE_SECONDS
    assert sent < len(body) - 1, "the body was sent before the connection was closed"
    writer.close()
    assert await api.store.resources() == []
    reader, writer = await connect(port)
    writer.write(head + body)
    assert (await read_response(reader))[0] == 200  # a body sent at once is read well within the timeout
    writer.close()


async def test_an_idle_kept_alive_connection_is_closed_and_a_busy_one_is_not(serve: Serve) -> None:
    port = await serve(http_keep_alive_timeout=timedelta(seconds=0.5), http_header_timeout=timedelta(seconds=0.5))
    reader, writer = await connect(port)
    for _ in range(3):  # requests on one connection, each well within the timeouts
        writer.write(PING)
        assert (await read_response(reader))[0] == 200
    began = time.monotonic()
    assert await read_until_closed(reader) == b""
    assert 0.4 < time.monotonic() - began < CLOSE_DEADLINE_SECONDS
    writer.close()


async def test_connections_beyond_the_cap_get_a_503_until_one_closes(serve: Serve) -> None:
    port = await serve(http_max_connections=3, http_keep_alive_timeout=timedelta(seconds=60))
    open_connections = [await connect(port) for _ in range(3)]
    for reader, writer in open_connections:  # answered: the server holds all three
        writer.write(PING)
        assert (await read_response(reader))[0] == 200

    refused_reader, refused_writer = await connect(port)
    refused = await read_until_closed(refused_reader)
    refused_writer.close()
    assert status_and_body(refused) == (503, {"code": 503, "message": "Too many connections: limit = 3"})
    for reader, writer in open_connections:  # the held ones still work
        writer.write(PING)
        assert (await read_response(reader))[0] == 200

    open_connections.pop()[1].close()

    async def served_again() -> bool:
        return (await exchange(port, PING_AND_CLOSE))[0] == 200

    await wait_until(served_again, timeout=CLOSE_DEADLINE_SECONDS, message="a connection to be accepted again")
    for _, writer in open_connections:
        writer.close()
