"""Soak: hours of sustained instances per second, and whether memory and latency stay flat.

    python benchmarks/soak.py [--minutes 60] [--rate 100] [--retention PT5M] [--plot docs/soak.png]

Starts the production service (`harness.api_service`: the actors on a local Ray, the Redis store, the noop
runner) with a short history retention, so that the store reaches a steady state within the run, and drives
it through the REST API at `--rate` instances a second, half natural and half ad-hoc:
  - natural: `rate / 2 * 60` workflows `* * * * *`, each with an offset of 0-59 s, so that their triggers are
    spread over every minute instead of all falling on its first second;
  - ad-hoc: `POST /scheduler/trigger` open loop at `rate / 2` a second, each a new instance of one of 100
    hourly workflows (parameters going back an hour at a time);
  - a probe: `GET /workflows/{c}/{w}` open loop at 10 a second, its latency measured from each request's
    scheduled time.
Every `--sample-seconds` (60) it prints and records a row: instances finished per second (the shards'
`success` transitions from /metrics), active instances, the probe's p50/p99, the service's RSS (its driver
and actor processes; Ray's own daemons apart), Redis `used_memory` and keys. At the end it prints the growth
of RSS, Redis memory and p99 over the last half of the run, writes the rows as CSV beside the plot, and the
plot (matplotlib: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psutil
import redis
from harness import API, TEST_IMAGE, add_redis_argument, api_service, ray_daemons, redis_url, rss, service_processes
from loadgen import Latencies, closed_loop, open_loop, request
from prometheus_client.parser import text_string_to_metric_families

from styx_actors.schedule import Schedule, to_parameter
from styx_actors.timeutil import UTC

NATURAL = "soak-natural"
ADHOC = "soak-adhoc"
ADHOC_WORKFLOWS = 100
PROBE_RATE = 10  # GET /workflows per second
# Every state timeout under the retention (the service refuses a retention not longer than its timeouts).
STATE_TIMEOUTS = json.dumps(
    {"new": "PT1M", "submitted": "PT1M", "running": "PT1M", "terminated": "PT1M", "failed": "PT1M", "default": "PT2M"}
)


@dataclass
class Sample:
    minute: float
    finished_per_second: float
    triggers_per_second: float
    trigger_failures: int
    active: int
    probe_p50_ms: float
    probe_p99_ms: float
    service_rss_mib: float
    ray_daemons_rss_mib: float
    redis_used_mib: float
    redis_keys: int
    load_1min: float


def natural_workflows(count: int) -> list[bytes]:
    """Create and enable `count` minutely workflows, their offsets spread over the minute."""
    creates = [
        request(
            "POST",
            f"{API}/workflows/{NATURAL}",
            {
                "id": f"m{number:05}",
                "schedule": "* * * * *",
                "offset": f"PT{number % 60}S",
                "docker_image": TEST_IMAGE,
                "docker_args": ["true"],
            },
        )
        for number in range(count)
    ]
    enables = [
        request("PATCH", f"{API}/workflows/{NATURAL}/m{number:05}/state", {"enabled": True}) for number in range(count)
    ]
    return creates + enables


def adhoc_triggers() -> Iterator[bytes]:
    """An endless stream of new instances of the ad-hoc workflows: each hour back in turn, for every workflow."""
    schedule = Schedule.parse("hours")
    hour = schedule.previous(datetime.now(UTC)) - timedelta(days=2)  # far behind any natural trigger
    back = 0
    while True:
        parameter = to_parameter(schedule, hour - timedelta(hours=back))
        for number in range(ADHOC_WORKFLOWS):
            workflow_id = {"component_id": ADHOC, "id": f"h{number:03}"}
            yield request("POST", f"{API}/scheduler/trigger", {"workflow_id": workflow_id, "parameter": parameter})
        back += 1


def metric_values(text: str) -> tuple[float, int]:
    """(success transitions so far, active instances) from a /metrics answer."""
    succeeded, active = 0.0, 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "styx_transitions_total" and sample.labels.get("event") == "success":
                succeeded = sample.value
            elif sample.name == "styx_active_instances":
                active += int(sample.value)
    return succeeded, active


async def sample_every(
    base: str,
    service: psutil.Process,
    store: redis.Redis,
    seconds: float,
    interval: float,
    triggers: Latencies,
    probe: Latencies,
    rows: list[Sample],
) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        last_success, _ = metric_values((await client.get("/metrics")).text)
        last_triggers = last_probe = last_failures = 0
        last_time = started
        while (now := time.monotonic()) < started + seconds:
            await asyncio.sleep(min(interval, started + seconds - now))
            success, active = metric_values((await client.get("/metrics")).text)
            now = time.monotonic()
            window = probe.seconds[last_probe:] or [0.0]
            ordered = sorted(window)
            memory = store.info("memory")["used_memory"]
            row = Sample(
                minute=round((now - started) / 60, 2),
                finished_per_second=round((success - last_success) / (now - last_time), 1),
                triggers_per_second=round((len(triggers.seconds) - last_triggers) / (now - last_time), 1),
                trigger_failures=triggers.failures - last_failures,
                active=active,
                probe_p50_ms=round(statistics.median(ordered) * 1000, 2),
                probe_p99_ms=round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2),
                service_rss_mib=round(rss(service_processes(service)) / (1 << 20), 1),
                ray_daemons_rss_mib=round(rss(ray_daemons(service)) / (1 << 20), 1),
                redis_used_mib=round(memory / (1 << 20), 1),
                redis_keys=store.dbsize(),
                load_1min=round(os.getloadavg()[0], 2),
            )
            rows.append(row)
            print("  " + "  ".join(f"{name} {value}" for name, value in asdict(row).items()), flush=True)
            last_success, last_time = success, now
            last_triggers, last_probe, last_failures = len(triggers.seconds), len(probe.seconds), triggers.failures


def growth(rows: list[Sample], name: str) -> str:
    """The change of `name` over the run's second half: the mean of its last three samples against the mean
    of the three around its middle (single samples are noisy: a minute's GC or a burst)."""
    values = [getattr(row, name) for row in rows]
    if len(values) < 6:
        return f"{name}: too few samples"
    middle = len(values) // 2
    before = statistics.mean(values[middle - 1 : middle + 2])
    after = statistics.mean(values[-3:])
    change = (after - before) / before * 100 if before else 0.0
    return f"{name} {before:,.1f} -> {after:,.1f} ({change:+.1f} %)"


def save(rows: list[Sample], plot: Path, title: str) -> None:
    table = plot.with_suffix(".csv")
    with table.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[field.name for field in fields(Sample)])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [row.minute for row in rows]
    figure, axes = pyplot.subplots(4, 1, sharex=True, figsize=(9, 9))
    panels = [
        ("service RSS (MiB)", [row.service_rss_mib for row in rows]),
        ("Redis used_memory (MiB)", [row.redis_used_mib for row in rows]),
        ("GET /workflows p99 (ms)", [row.probe_p99_ms for row in rows]),
        ("instances finished / s", [row.finished_per_second for row in rows]),
    ]
    for axis, (label, values) in zip(axes, panels, strict=True):
        axis.plot(minutes, values)
        axis.set_ylabel(label, fontsize=8)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    axes[0].set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(plot, dpi=90)
    print(f"rows: {table}\nplot: {plot}")


async def run(base: str, pid: int, url: str, args: argparse.Namespace) -> list[Sample]:
    half = args.rate / 2
    setup = [
        request(
            "POST",
            f"{API}/workflows/{ADHOC}",
            {"id": f"h{number:03}", "schedule": "hours", "docker_image": TEST_IMAGE, "docker_args": ["true"]},
        )
        for number in range(ADHOC_WORKFLOWS)
    ] + natural_workflows(int(half * 60))
    created = await closed_loop(base, setup, in_flight=16)
    if created.failures:
        raise SystemExit(f"{created.failures} of {len(setup)} setup requests failed")
    seconds = args.minutes * 60
    triggers, probe = Latencies(), Latencies()
    rows: list[Sample] = []
    get_workflow = request("GET", f"{API}/workflows/{ADHOC}/h000")
    with redis.Redis.from_url(url) as store:
        await asyncio.gather(
            open_loop(base, adhoc_triggers(), half, seconds, latencies=triggers),
            open_loop(base, get_workflow, PROBE_RATE, seconds, connections=8, latencies=probe),
            sample_every(base, psutil.Process(pid), store, seconds, args.sample_seconds, triggers, probe, rows),
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60, help="duration (default 60)")
    parser.add_argument("--rate", type=float, default=100, help="instances per second, half natural (default 100)")
    parser.add_argument("--retention", default="PT5M", help="STYX_EVENT_RETENTION and STYX_OUTPUT_RETENTION (PT5M)")
    parser.add_argument("--sample-seconds", type=float, default=60, help="seconds between samples (default 60)")
    parser.add_argument("--plot", type=Path, default=Path("soak.png"), help="the plot's file; its rows beside it")
    add_redis_argument(parser)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    title = (
        f"soak: {args.rate:g} instances/s (half natural, half ad-hoc), noop runner, Redis, retention "
        f"{args.retention}; load {load:.1f} at the start"
    )
    print(title, flush=True)
    settings = {
        "event_retention": args.retention,
        "output_retention": args.retention,
        "stale_state_ttls": STATE_TIMEOUTS,
        "max_running_timeout": "PT1M",
    }
    with redis_url(args.redis_url) as (url, prefix), api_service(url, prefix, **settings) as (base, pid):
        rows = asyncio.run(run(base, pid, url, args))
    print("over the second half of the run:")
    for name in ("service_rss_mib", "redis_used_mib", "probe_p99_ms", "finished_per_second"):
        print(f"  {growth(rows, name)}")
    save(rows, args.plot, title)


if __name__ == "__main__":
    main()
