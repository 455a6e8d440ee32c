"""API: latency and throughput of the REST API under load, from a load generator in another process.

    python benchmarks/api.py [--active 10000] [--rate 500] [--seconds 10] [--redis-url redis://HOST:PORT/DB]

Starts the production service (`python -m styx_actors.service`: the actors on a local Ray, uvicorn on a
free loopback port, the Redis store, the noop runner, no authentication) as a child process, stopped
afterwards by its PID. This process is the load generator (httpx with asyncio):
  1. POST /api/v3/scheduler/trigger: `active` instances of one hourly workflow that needs a resource of
     concurrency 0, so that they all stay active (QUEUED), 64 requests in flight: throughput and latency;
  2. GET /api/v3/workflows/{component}/{workflow}, open loop at `rate` requests/s for `seconds`
     (latency measured from each request's scheduled send time, so a stalled server is not hidden);
  3. GET /api/v3/status/activeStates with those `active` instances active, 4 in flight for `seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from harness import COMPONENT, TEST_IMAGE, add_redis_argument, redis_url
from store_recovery import free_port
from styx_actors.schedule import Schedule, to_parameter
from styx_actors.timeutil import UTC

WORKFLOW = "api-hourly"
RESOURCE = "parked"
STARTUP_SECONDS = 120
REPOSITORY = Path(__file__).resolve().parent.parent

Call = Callable[[], Awaitable[httpx.Response]]


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
            f"  {name:<34} {count:>6,} requests in {self.elapsed:5.1f} s = {count / self.elapsed:6,.0f}/s"
            f" | p50 {self.percentile(0.5) * 1000:7.1f} ms  p95 {self.percentile(0.95) * 1000:7.1f} ms"
            f"  p99 {self.percentile(0.99) * 1000:7.1f} ms  max {max(self.seconds) * 1000:7.1f} ms"
            f" | failures {self.failures}"
        )


@contextmanager
def service(url: str, prefix: str) -> Iterator[str]:
    """The production service as a child process; its base URL. Stopped with SIGINT (then SIGKILL) by PID."""
    port = free_port()
    env = {
        **os.environ,
        "STYX_STORE": f"{url}?prefix={prefix}",
        "STYX_RUNNER": "noop",
        "STYX_HOST": "127.0.0.1",
        "STYX_PORT": str(port),
        "STYX_AUTH": "none",
        "STYX_RAY_NAMESPACE": f"styx-{prefix}",
        "STYX_DATA_DIR": str(Path(tempfile.gettempdir()) / f"styx-{prefix}"),
    }
    log = tempfile.TemporaryFile()
    # From the repository root: run from benchmarks/, this file would shadow the `api` package.
    process = subprocess.Popen(
        [sys.executable, "-m", "styx_actors.service"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(f"the service exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the service did not answer within {STARTUP_SECONDS} s")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def timed(call: Call, since: float, latencies: Latencies) -> None:
    try:
        response = await call()
        if response.is_error:
            latencies.failures += 1
    except httpx.HTTPError:
        latencies.failures += 1
    latencies.seconds.append(time.perf_counter() - since)


async def closed_loop(calls: Iterable[Call], in_flight: int) -> Latencies:
    """Every call, `in_flight` at a time."""
    latencies = Latencies()
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await timed(call, time.perf_counter(), latencies)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    latencies.elapsed = time.perf_counter() - started
    return latencies


async def open_loop(call: Call, rate: float, seconds: float) -> Latencies:
    """`rate` calls a second for `seconds`, each timed from when it was due."""
    latencies = Latencies()
    started = time.perf_counter()

    async def one(number: int) -> None:
        due = started + number / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await timed(call, due, latencies)

    await asyncio.gather(*(one(number) for number in range(int(rate * seconds))))
    latencies.elapsed = time.perf_counter() - started
    return latencies


async def run(base: str, active: int, rate: float, seconds: float) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=f"{base}/api/v3", limits=limits, timeout=60) as client:
        (await client.post("/resources", json={"id": RESOURCE, "concurrency": 0})).raise_for_status()
        config = {"id": WORKFLOW, "schedule": "hours", "docker_image": TEST_IMAGE, "docker_args": ["true"], "resources": [RESOURCE]}
        (await client.post(f"/workflows/{COMPONENT}", json=config)).raise_for_status()

        schedule = Schedule.parse("hours")
        hour = schedule.previous(datetime.now(UTC))
        parameters = [to_parameter(schedule, hour - timedelta(hours=n)) for n in range(active)]

        def trigger(parameter: str) -> Call:
            body = {"workflow_id": {"component_id": COMPONENT, "id": WORKFLOW}, "parameter": parameter}
            return lambda: client.post("/scheduler/trigger", json=body)

        print("REST API of the service on Ray (noop runner, Redis store), load from another process")
        triggers = await closed_loop([trigger(p) for p in parameters], in_flight=64)
        print(triggers.line(f"POST /scheduler/trigger ({active:,} new)"))
        listed = (await client.get("/status/activeStates", params={"component": COMPONENT})).json()["active_states"]
        if len(listed) != active:
            print(f"  (only {len(listed):,} of {active:,} instances are active)")

        workflow = await open_loop(lambda: client.get(f"/workflows/{COMPONENT}/{WORKFLOW}"), rate, seconds)
        print(workflow.line(f"GET /workflows/{{c}}/{{w}} at {rate:,.0f}/s"))

        deadline = time.perf_counter() + seconds
        states = await closed_loop(until(deadline, lambda: client.get("/status/activeStates")), in_flight=4)
        print(states.line(f"GET /status/activeStates ({active:,} active)"))


def until(deadline: float, call: Call) -> Iterator[Call]:
    """The same call again and again until `deadline` (perf_counter)."""
    while time.perf_counter() < deadline:
        yield call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", type=int, default=10_000, help="active instances (default 10000)")
    parser.add_argument("--rate", type=float, default=500, help="GET /workflows requests per second (default 500)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of each GET phase (default 10)")
    add_redis_argument(parser)
    args = parser.parse_args()
    with redis_url(args.redis_url) as (url, prefix), service(url, prefix) as base:
        asyncio.run(run(base, args.active, args.rate, args.seconds))


if __name__ == "__main__":
    main()
