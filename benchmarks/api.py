"""API: latency and throughput of the REST API under load, from a load generator in another process.

    python benchmarks/api.py [--active 10000] [--rate 500] [--seconds 10] [--redis-url redis://HOST:PORT/DB]

Starts the production service (`python -m styx_server.service`: the actors on a local Ray, uvicorn on a
free loopback port, the Redis store, the noop runner, no authentication) as a child process, stopped
afterwards by its PID. This process is the load generator (`loadgen.py`: raw keep-alive HTTP/1.1, tens of
µs of CPU a request), and the service process's CPU time per request is printed beside each phase:
  1. POST /api/v3/scheduler/trigger: `active` instances of one hourly workflow that needs a resource of
     concurrency 0, so that they all stay active (QUEUED), 64 requests in flight: throughput and latency;
  2. GET /api/v3/workflows/{component}/{workflow}, open loop at `rate` requests/s for `seconds`
     (latency measured from each request's scheduled send time, so a stalled server is not hidden);
  3. GET /api/v3/status/activeStates with those `active` instances active, 4 in flight for `seconds` (the
     answer is streamed; the CPU is also printed per instance listed);
  4. GET /api/v3/status/activeStates?component=X for a component of `--component-size` (100) more active
     instances among them, open loop at `--filtered-rate` (100) requests/s for `seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta

import psutil
from harness import API, COMPONENT, TEST_IMAGE, add_redis_argument, api_service, redis_url
from loadgen import Connection, Latencies, closed_loop, open_loop, request, until

from styx_actors.schedule import Schedule, to_parameter
from styx_actors.timeutil import UTC

WORKFLOW = "api-hourly"
SMALL_COMPONENT = "api-small"  # the component of phase 4's filtered reads
RESOURCE = "parked"


async def run(
    base: str, service_pid: int, active: int, rate: float, seconds: float, component_size: int, filtered_rate: float
) -> None:
    setup = await Connection.open(base)
    assert (await setup.send(request("POST", f"{API}/resources", {"id": RESOURCE, "concurrency": 0})))[0] == 200
    config = {
        "id": WORKFLOW,
        "schedule": "hours",
        "docker_image": TEST_IMAGE,
        "docker_args": ["true"],
        "resources": [RESOURCE],
    }
    assert (await setup.send(request("POST", f"{API}/workflows/{COMPONENT}", config)))[0] == 200
    assert (await setup.send(request("POST", f"{API}/workflows/{SMALL_COMPONENT}", config)))[0] == 200
    setup.close()

    schedule = Schedule.parse("hours")
    hour = schedule.previous(datetime.now(UTC))
    workflow_id = {"component_id": COMPONENT, "id": WORKFLOW}
    small_id = {"component_id": SMALL_COMPONENT, "id": WORKFLOW}
    triggers = [
        request(
            "POST",
            f"{API}/scheduler/trigger",
            {"workflow_id": workflow_id, "parameter": to_parameter(schedule, hour - timedelta(hours=n))},
        )
        for n in range(active)
    ] + [
        request(
            "POST",
            f"{API}/scheduler/trigger",
            {"workflow_id": small_id, "parameter": to_parameter(schedule, hour - timedelta(hours=n))},
        )
        for n in range(component_size)
    ]
    server = psutil.Process(service_pid)

    async def measure(name: str, load: Awaitable[Latencies], instances_per_answer: int = 0) -> None:
        cpu = sum(server.cpu_times()[:2])
        latencies = await load
        per_request = (sum(server.cpu_times()[:2]) - cpu) / max(1, len(latencies.seconds))
        per_instance = f" = {per_request / instances_per_answer * 1e6:.1f} µs/instance" if instances_per_answer else ""
        print(f"{latencies.line(name)} | API process CPU {per_request * 1000:.2f} ms/request{per_instance}")

    print("REST API of the service on Ray (noop runner, Redis store), load from another process")
    total = active + component_size
    await measure(f"POST /scheduler/trigger ({total:,} new)", closed_loop(base, triggers, in_flight=64))
    check = await Connection.open(base)
    status, body = await check.send(request("GET", f"{API}/status/activeStates"))
    listed = len(json.loads(body)["active_states"])
    if listed != total:
        print(f"  (only {listed:,} of {total:,} instances are active)")
    check.close()

    get_workflow = request("GET", f"{API}/workflows/{COMPONENT}/{WORKFLOW}")
    await measure(f"GET /workflows/{{c}}/{{w}} at {rate:,.0f}/s", open_loop(base, get_workflow, rate, seconds))
    deadline = time.perf_counter() + seconds
    active_states = request("GET", f"{API}/status/activeStates")
    every = closed_loop(base, until(deadline, active_states), 4)
    await measure(f"GET /status/activeStates ({listed:,} active)", every, instances_per_answer=listed)
    small = request("GET", f"{API}/status/activeStates?component={SMALL_COMPONENT}")
    name = f"GET activeStates?component ({component_size} of {listed:,}) at {filtered_rate:,.0f}/s"
    await measure(name, open_loop(base, small, filtered_rate, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", type=int, default=10_000, help="active instances (default 10000)")
    parser.add_argument("--rate", type=float, default=500, help="GET /workflows requests per second (default 500)")
    parser.add_argument("--seconds", type=float, default=10, help="duration of each GET phase (default 10)")
    parser.add_argument(
        "--component-size", type=int, default=100, help="active instances of the filtered component (default 100)"
    )
    parser.add_argument(
        "--filtered-rate", type=float, default=100, help="filtered activeStates requests per second (default 100)"
    )
    add_redis_argument(parser)
    args = parser.parse_args()
    with redis_url(args.redis_url) as (url, prefix), api_service(url, prefix) as (base, pid):
        asyncio.run(run(base, pid, args.active, args.rate, args.seconds, args.component_size, args.filtered_rate))


if __name__ == "__main__":
    main()
