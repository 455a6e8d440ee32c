"""Redis stops answering without closing its connections (SIGSTOP: a hung server, a partition): calls fail
after the socket timeout instead of hanging, the API answers 503 and /readyz says why, and everything
answers again once the server resumes."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from styx_actors.clock import ManualClock
from styx_actors.store.redis import RedisStore
from styx_server.service import Service, start_service
from tests.api.conftest import API, api_settings
from tests.conftest import RedisServer

pytestmark = pytest.mark.redis

TIMEOUT_SECONDS = 1  # the URL's own option, which wins over the store's 10 s default (docs/store.md)


@pytest.fixture
async def service(volatile_redis: RedisServer, tmp_path: Path, clock: ManualClock) -> AsyncIterator[Service]:
    url = f"{volatile_redis.url}?socket_timeout={TIMEOUT_SECONDS}"
    store = RedisStore(url, prefix=f"hung-{uuid.uuid4().hex}")
    await store.open()
    service = await start_service(api_settings(tmp_path), store, clock)
    yield service
    await service.stop()
    await store.close()


async def test_a_hung_redis_is_a_prompt_503_and_the_service_resumes_with_it(
    service: Service, volatile_redis: RedisServer
) -> None:
    assert volatile_redis.process is not None
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://localhost")
    async with client:
        os.kill(volatile_redis.process.pid, signal.SIGSTOP)
        try:
            sent = time.monotonic()
            readiness = await client.get("/readyz")
            read = await client.get(f"{API}/workflows")
            write = await client.post(f"{API}/resources", json={"id": "r1", "concurrency": 1})
            elapsed = time.monotonic() - sent
        finally:
            os.kill(volatile_redis.process.pid, signal.SIGCONT)
        assert readiness.status_code == 503 and readiness.json()["message"].startswith("Store unavailable: ")
        assert "Timeout" in readiness.json()["message"]
        assert read.status_code == 503 and write.status_code == 503
        assert elapsed < 3 * TIMEOUT_SECONDS + 3, elapsed  # three calls, each bounded by the timeout
        assert (await client.get("/readyz")).status_code == 200
        created = await client.post(f"{API}/resources", json={"id": "r1", "concurrency": 1})
        assert created.status_code == 200, created.text
