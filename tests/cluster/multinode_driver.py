"""Driver for the multi-node tests: joins a running Ray cluster and runs one scenario through the actors.

Run as a subprocess (the test process already hosts a local Ray). Prints one line `READY` when instances
are running (the test may then kill a node) and a final JSON line with what it observed.

Scenarios:
- `scenarios`: triggered instances and a backfill, with shards spread over the nodes;
- `capacity`: concurrent containers with STYX_RUNNER_CAPACITY-limited runners, sampling what each runner
  runs until every instance has finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import ray

from cluster.ray_system import RaySystem, start_ray_system
from styx_actors.model import BackfillInput, State, TriggerRequest
from styx_actors.timeutil import UTC
from tests.conftest import wait_until
from tests.integration.conftest import scenario_settings
from tests.integration.test_scenarios import (
    config,
    deploy,
    finished,
    instance,
    wait_finished,
    wait_state,
)

SAMPLE_INTERVAL = 0.1


async def scenarios(system: RaySystem, args: argparse.Namespace) -> dict[str, object]:
    workflow_id = await deploy(system, config("multi", schedule="days", script=args.script))
    days = [f"2020-02-{d:02d}" for d in range(1, args.instances + 1)]
    for day in days:
        await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=day))
    backfill_workflow = await deploy(system, config("multi-backfill"), enabled=False)
    await system.commands.create_backfill(
        BackfillInput(
            start=datetime(2020, 1, 1, tzinfo=UTC),
            end=datetime(2020, 1, 1, 4, tzinfo=UTC),
            component=backfill_workflow.component_id,
            workflow=backfill_workflow.id,
            concurrency=2,
        )
    )
    await wait_state(system.store, instance(workflow_id, days[0]), State.RUNNING, timeout=120)
    print("READY", flush=True)
    outcomes: dict[str, list[str]] = {}
    for day in days:
        outcomes[day] = await wait_finished(system.store, instance(workflow_id, day), timeout=240)
    for hour in range(4):
        wfi = instance(backfill_workflow, f"2020-01-01T{hour:02d}")
        outcomes[wfi.parameter] = await wait_finished(system.store, wfi, timeout=240)
    return outcome_summary(outcomes)


async def capacity(system: RaySystem, args: argparse.Namespace) -> dict[str, object]:
    """Every instance's container at once; records, per runner, the executions it ran and its peak load."""
    runners = [role for role in system.roles if role.startswith("runner-")]
    workflow_id = await deploy(system, config("capacity", schedule="days", script=args.script))
    wfis = [instance(workflow_id, f"2020-03-{d:02d}") for d in range(1, args.instances + 1)]
    for wfi in wfis:
        await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=wfi.parameter))
    ran: dict[str, set[str]] = {role: set() for role in runners}
    peak: Counter[str] = Counter()
    peak_total = 0
    deadline = time.monotonic() + 240
    while not all(await asyncio.gather(*(finished(system.store, wfi) for wfi in wfis))):
        assert time.monotonic() < deadline, "the instances did not finish within 240 s"
        running = await asyncio.gather(*(system.port(role).running() for role in runners))
        for role, executions in zip(runners, running, strict=True):
            ran[role].update(executions)
            peak[role] = max(peak[role], len(executions))
        peak_total = max(peak_total, sum(len(executions) for executions in running))
        await asyncio.sleep(SAMPLE_INTERVAL)  # a sampling period, not a synchronisation
    outcomes = {wfi.parameter: await wait_finished(system.store, wfi) for wfi in wfis}
    on_several = [e for e, n in Counter(e for executions in ran.values() for e in executions).items() if n > 1]
    return {
        **outcome_summary(outcomes),
        "executions_per_runner": sorted(len(executions) for executions in ran.values()),
        "peak_per_runner": max(peak.values(), default=0),
        "peak_total": peak_total,
        "on_several_runners": on_several,
    }


def outcome_summary(outcomes: dict[str, list[str]]) -> dict[str, object]:
    return {
        "last_events": {p: e[-1] for p, e in outcomes.items()},
        "submits": {p: e.count("submit") for p, e in outcomes.items()},
    }


SCENARIOS = {"scenarios": scenarios, "capacity": capacity}


async def main(args: argparse.Namespace) -> dict[str, object]:
    settings = scenario_settings(
        Path(args.data_dir),
        store=args.store,
        ray_address=args.address,
        ray_namespace=args.namespace,
        docker_installation_id=args.installation,
        shard_count=4,
        retry_base_delay=timedelta(seconds=1),
        shard_resources={"styx_shard": 1},
        runner_capacity=args.runner_capacity,
    )
    ray.init(address=args.address, namespace=args.namespace, log_to_driver=False)
    await wait_until(lambda: sum(node["Alive"] for node in ray.nodes()) >= args.nodes, 60, message="the nodes")
    system = await start_ray_system(settings)
    try:
        shard_nodes = {
            role: await system.port(role).handle().node_id.remote()
            for role in system.roles
            if role.startswith("shard-")
        }
        result = await SCENARIOS[args.scenario](system, args)
        return {"shard_nodes": sorted(Counter(shard_nodes.values()).values()), **result}
    finally:
        await system.kill()
        await system.store.close()
        ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("address", "store", "namespace", "data-dir", "script", "installation"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="scenarios")
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--runner-capacity", type=int, default=0)
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result), flush=True)
    sys.exit(0)
