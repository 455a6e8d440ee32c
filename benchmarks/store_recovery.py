"""Group-commit write rate and recovery read time of both store backends.

    python benchmarks/store_recovery.py [--count 100000] [--batch 1000] [--redis-url redis://HOST:PORT/DB]

Writes `count` active snapshots (a RUNNING instance with a full execution description, as recovery finds
them) through `Store.commit()` in batches of `batch` inserts, then reads them all back with
`active_states()` from a freshly opened store, as a restarted scheduler does. SQLite uses a temporary file;
Redis is a redis-server started here on a free loopback port (AOF on, fsync every second) unless
`--redis-url` is given, in which case the keys are written under a unique prefix and removed afterwards.
Figures for this machine are in docs/store.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from cluster.local_cluster import free_port
from styx_actors.events import Started, event_to_json_text
from styx_actors.model import (
    ExecutionDescription,
    Message,
    RunState,
    State,
    StateData,
    Trigger,
    TriggerParameters,
    WorkflowInstance,
)
from styx_actors.store import open_store
from styx_actors.store.base import Store, Transition

WORKFLOWS = 100  # the instances are spread over this many workflows of one component


def running_instance(number: int) -> Transition:
    instance = WorkflowInstance.of("benchmark", f"workflow-{number % WORKFLOWS:03d}", f"2016-03-14T{number:08d}")
    state = RunState(
        workflow_instance=instance,
        state=State.RUNNING,
        timestamp=1_457_969_400_000 + number,
        counter=0,
        data=StateData(
            tries=1,
            trigger=Trigger.backfill(f"backfill-{number % 10}"),
            trigger_id=f"backfill-{number % 10}",
            execution_id=f"styx-run-{uuid.UUID(int=number)}",
            runner_id="default",
            execution_description=ExecutionDescription(
                docker_image="registry.example.com/team/job:1.2.3",
                docker_args=["--date", "2016-03-14", "--verbose"],
                env={"STAGE": "production", "OWNER": "team"},
            ),
            resource_ids=["bigquery", "gcs"],
            trigger_parameters=TriggerParameters(env={"RUN": "1"}),
            messages=[Message.info("Started")],
        ),
    )
    return Transition(state=state, event_json=event_to_json_text(Started(), instance), insert=True)


async def write_snapshots(make_store: Callable[[], Store], count: int, batch: int) -> float:
    """Commit `count` inserts in batches; the write rate in snapshots per second."""
    transitions = [running_instance(number) for number in range(count)]
    store = make_store()
    await store.open()
    try:
        started = time.perf_counter()
        for offset in range(0, count, batch):
            results = await store.commit(transitions[offset : offset + batch])
            assert all(results), "the benchmark store was not empty"
        return count / (time.perf_counter() - started)
    finally:
        await store.close()


async def recover(make_store: Callable[[], Store], count: int) -> dict[str, float]:
    """Time the reads of a restarted scheduler on a fresh connection."""
    store = make_store()
    await store.open()
    try:
        started = time.perf_counter()
        states = await store.active_states()
        recovery_seconds = time.perf_counter() - started
        assert len(states) == count, f"recovered {len(states)} of {count} snapshots"
        # The first full collection over the new snapshots, paid once by whoever holds them.
        started = time.perf_counter()
        gc.collect()
        gc_seconds = time.perf_counter() - started
        started = time.perf_counter()
        one_workflow = await store.active_states("benchmark", "workflow-042")
        workflow_seconds = time.perf_counter() - started
        assert len(one_workflow) == len(range(42, count, WORKFLOWS))
    finally:
        await store.close()
    return {"recovery_seconds": recovery_seconds, "gc_seconds": gc_seconds, "one_workflow_ms": workflow_seconds * 1000}


def measure(make_store: Callable[[], Store], count: int, batch: int) -> dict[str, float]:
    write_per_second = asyncio.run(write_snapshots(make_store, count, batch))
    gc.collect()  # the written transitions are gone, as in a freshly started process
    return {"write_per_second": write_per_second, **asyncio.run(recover(make_store, count))}


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server with AOF on (fsync every second), stopped by its own PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; pass --redis-url")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="styx-bench-redis-") as directory:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
        process = subprocess.Popen([*args, "--appendonly", "yes"], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def remove_keys(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as client:
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            pipe.unlink(key)
        pipe.execute()


def report(name: str, count: int, figures: dict[str, float]) -> None:
    print(
        f"{name:<7} commit {figures['write_per_second']:>7,.0f} snapshots/s"
        f" | active_states() {figures['recovery_seconds']:.2f} s ({count / figures['recovery_seconds']:,.0f}/s)"
        f" + first gc.collect() {figures['gc_seconds']:.2f} s"
        f" | one workflow ({count // WORKFLOWS:,}) {figures['one_workflow_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="active snapshots to write (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="transitions per commit() (default 1000)")
    parser.add_argument("--redis-url", help="an existing Redis (default: start a redis-server here)")
    args = parser.parse_args()
    print(f"{args.count:,} active snapshots, commit() batches of {args.batch}")

    with tempfile.TemporaryDirectory(prefix="styx-bench-sqlite-") as directory:
        path = Path(directory) / "styx.db"
        report("sqlite", args.count, measure(lambda: open_store(f"sqlite:///{path}"), args.count, args.batch))

    prefix = f"bench-{uuid.uuid4().hex}"
    if args.redis_url:
        try:
            figures = measure(lambda: open_store(f"{args.redis_url}?prefix={prefix}"), args.count, args.batch)
        finally:
            remove_keys(args.redis_url, prefix)
    else:
        with redis_server() as url:
            figures = measure(lambda: open_store(f"{url}?prefix={prefix}"), args.count, args.batch)
    report("redis", args.count, figures)


if __name__ == "__main__":
    main()
