"""One chaos run: start Redis (unless given) and `styx serve`, set the workload up, drive it while faults are
injected, let the system converge, read back what it shows, and check the history."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.chaos.checker import (
    Invariant,
    Summary,
    check,
    render,
    summarize,
    violation_count,
)
from benchmarks.chaos.engine import EngineWatcher
from benchmarks.chaos.faults import Faults
from benchmarks.chaos.history import FaultKind, FinalState, History
from benchmarks.chaos.plan import plan_faults, plan_workload
from benchmarks.chaos.processes import RedisProcess, ServiceProcess
from benchmarks.chaos.workload import (
    API,
    COMPONENT,
    LIMITED,
    WORKFLOWS,
    Workload,
    instance_key,
    rules,
    service_settings,
)
from cluster.local_cluster import free_port

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 20.0  # longer than a Redis pause: a command waits it out, or its outcome is unknown
FAULTS_START_SECONDS = 10.0  # the workload runs a while before the first fault
FAULTS_END_MARGIN_SECONDS = 5.0
CONVERGENCE_POLL_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 120.0  # reading the final state back: the service is up, but may be busy
REDIS_FAULTS = frozenset({FaultKind.REDIS_RESTART, FaultKind.REDIS_PAUSE})


@dataclass(frozen=True)
class ChaosOptions:
    seed: int
    minutes: float
    work_dir: Path
    store: str | None = None  # an existing Redis: no Redis faults then (its process is not the run's)
    runner: str = "docker"
    convergence_timeout: float = 300.0
    readiness_bound: float = 180.0
    fault_gap: tuple[float, float] = (8.0, 20.0)
    command_gap: tuple[float, float] = (0.5, 2.5)

    @property
    def backfill_partitions(self) -> int:
        return 6 + 2 * math.ceil(self.minutes)


@dataclass(frozen=True)
class ChaosResult:
    summary: Summary
    invariants: list[Invariant]
    report: str

    @property
    def violations(self) -> int:
        return violation_count(self.invariants)


def run(options: ChaosOptions) -> ChaosResult:
    return asyncio.run(run_chaos(options))


async def run_chaos(options: ChaosOptions) -> ChaosResult:
    options.work_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{options.seed}-{uuid.uuid4().hex[:6]}"
    history = History()
    own_redis: RedisProcess | None = None
    if options.store is None:
        own_redis = RedisProcess(options.work_dir / "redis")
        own_redis.start()
        redis_url = own_redis.url
    else:
        redis_url = options.store
    prefix = f"chaos-{tag}"
    store = _with_prefix(redis_url, prefix)
    port, namespace = free_port(), f"chaos-{tag}"
    env = {
        **os.environ,
        **service_settings(),
        "STYX_STORE": store,
        "STYX_RUNNER": options.runner,
        "STYX_DATA_DIR": str(options.work_dir / "data"),
        "STYX_PORT": str(port),
        "STYX_RAY_NAMESPACE": namespace,
        "STYX_DOCKER_INSTALLATION_ID": f"styx-chaos-{tag}",
    }
    engine = EngineWatcher(env["STYX_DOCKER_INSTALLATION_ID"], {LIMITED.key: LIMITED.id})
    engine.start()  # before the service: every container event of the installation is seen
    service = ServiceProcess(env, options.work_dir / "serve.log", port, namespace)
    faults = Faults(service, own_redis, engine, history, options.readiness_bound)
    final: FinalState | None = None
    try:
        await faults.start_service("service start")
        if history.readiness[-1].seconds is None:
            raise RuntimeError(f"styx serve did not get ready; see {options.work_dir / 'serve.log'}")
        limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection each: refused = not sent
        async with httpx.AsyncClient(base_url=service.url, timeout=HTTP_TIMEOUT_SECONDS, limits=limits) as client:
            workload = Workload(client, history, options.backfill_partitions)
            await workload.set_up()
            duration = options.minutes * 60
            kinds = [kind for kind in FaultKind if own_redis is not None or kind not in REDIS_FAULTS]
            fault_plan = plan_faults(
                options.seed, FAULTS_START_SECONDS, duration - FAULTS_END_MARGIN_SECONDS, kinds, options.fault_gap
            )
            command_plan = plan_workload(options.seed, duration, options.command_gap)
            log.info("plan: %d commands, %d faults over %.0f s", len(command_plan), len(fault_plan), duration)
            began = time.monotonic()
            watchdog = asyncio.create_task(faults.keep_service_running())
            await asyncio.gather(workload.run(command_plan, began), faults.run(fault_plan, began))
            watchdog.cancel()
            await faults.restart_if_exited()
            await workload.quiesce()
            converged, seconds = await converge(client, workload.backfill_ids, options.convergence_timeout)
            final = await read_final_state(client, workload.backfill_ids, converged, seconds)
    finally:
        await asyncio.to_thread(service.stop)
        await asyncio.to_thread(engine.stop)
        engine.remove_containers()
        if own_redis is not None:
            own_redis.stop()
        elif store != redis_url:  # an existing Redis: the run's keys go, as every benchmark's do
            _remove_keys(redis_url, prefix)
    history.container_events, history.samples = engine.events, engine.samples
    history.dump(options.work_dir / "history.json", final)
    invariants = check(history, final, rules(options.readiness_bound))
    summary = summarize(history, final)
    title = (
        f"chaos run: seed {options.seed}, {options.minutes:g} min, store {'own Redis' if own_redis else options.store},"
        f" runner {options.runner}; records in {options.work_dir}"
    )
    return ChaosResult(summary, invariants, render(title, summary, invariants))


def _with_prefix(url: str, prefix: str) -> str:
    """The run's keys under a prefix of their own (kept when the URL names one)."""
    if "prefix=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def _remove_keys(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.unlink(key)


async def converge(client: httpx.AsyncClient, backfill_ids: list[str], timeout: float) -> tuple[bool, float]:
    """Wait until nothing of the component is active and every backfill has triggered everything; (whether
    that happened, seconds waited)."""
    began = time.monotonic()
    while (waited := time.monotonic() - began) < timeout:
        try:
            active = (await _get(client, "/status/activeStates", {"component": COMPONENT}))["active_states"]
            backfills = [(await _get(client, f"/backfills/{i}", {"status": "false"}))["backfill"] for i in backfill_ids]
        except httpx.HTTPError as error:
            log.info("converging: %s", error)
        else:
            if not active and all(backfill["all_triggered"] for backfill in backfills):
                return True, waited
        await asyncio.sleep(CONVERGENCE_POLL_SECONDS)
    return False, timeout


async def read_final_state(
    client: httpx.AsyncClient, backfill_ids: list[str], converged: bool, convergence_seconds: float
) -> FinalState:
    workflows: dict[str, dict[str, Any]] = {}
    event_logs: dict[str, list[dict[str, Any]]] = {}
    for spec in WORKFLOWS:
        full = await _read(client, f"/workflows/{COMPONENT}/{spec.id}/full")
        if full is not None:
            state = {**full["state"], "enabled": full["state"]["enabled"] in (True, "true")}
            workflows[spec.key] = {"configuration": full["workflow"]["configuration"], "state": state}
        histories = await _read(client, f"/workflows/{COMPONENT}/{spec.id}/instances", {"start": "0", "limit": "10000"})
        for history in histories or []:
            parameter = history["workflow_instance"]["parameter"]
            events = (await _read(client, f"/status/events/{COMPONENT}/{spec.id}/{parameter}"))["events"]
            event_logs[f"{spec.key}/{parameter}"] = [{**e["event"], "timestamp": e["timestamp"]} for e in events]
    resources = {r["id"]: r["concurrency"] for r in (await _read(client, "/resources"))["resources"]}
    backfills = {}
    for backfill_id in backfill_ids:
        found = await _read(client, f"/backfills/{backfill_id}", {"status": "false"})
        if found is not None:
            backfills[backfill_id] = found["backfill"]
    active = [
        {
            "instance": instance_key(s),
            "state": s["state"],
            "last_message": s["state_data"]["messages"][-1]["line"] if s["state_data"].get("messages") else None,
        }
        for s in (await _read(client, "/status/activeStates", {"component": COMPONENT}))["active_states"]
    ]
    return FinalState(workflows, resources, backfills, event_logs, active, converged, convergence_seconds)


async def _get(client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None) -> Any:
    response = await client.get(f"{API}{path}", params=params)
    response.raise_for_status()
    return response.json()


async def _read(client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None) -> Any:
    """A read of the final state: None for a 404; other failures are asked again until READ_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while True:
        try:
            response = await client.get(f"{API}{path}", params=params)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
