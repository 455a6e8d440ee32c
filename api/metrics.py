"""Prometheus metrics of one app (a registry per app, so several apps in one process never collide).

Request latency is observed by the request-context middleware. The scheduler's state — active instances
by state, resource usage and limits — is computed from the store when /metrics is scraped: the store is
the source of truth, and a scrape every few seconds costs one read of the active snapshots.
"""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from api.deps import ServicesDep
from styx_actors.model import State
from styx_actors.store.base import Store

# Seconds; API calls are mostly store round trips, commands wait for the actors.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ActorTotals:
    """Transition and trigger counters as the instance hosts count them (refreshed on each scrape)."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def collect(self):  # the prometheus_client custom-collector protocol
        transitions = CounterMetricFamily("styx_transitions", "State transitions applied, by event.", labels=["event"])
        triggers = CounterMetricFamily("styx_triggers", "Instances triggered, by trigger type.", labels=["type"])
        for key, value in sorted(self.totals.items()):
            kind, _, label = key.partition(":")
            family = transitions if kind == "transition" else triggers if kind == "trigger" else None
            if family is not None:
                family.add_metric([label], value)
        yield transitions
        yield triggers


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_latency = Histogram(
            "styx_http_request_duration_seconds",
            "Latency of HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.active_instances = Gauge(
            "styx_active_instances", "Active workflow instances by state.", ["state"], registry=self.registry
        )
        self.resource_usage = Gauge(
            "styx_resource_usage",
            "Active instances holding each resource (PREPARE to RUNNING).",
            ["resource"],
            registry=self.registry,
        )
        self.resource_limit = Gauge(
            "styx_resource_limit", "Concurrency limit of each resource.", ["resource"], registry=self.registry
        )
        self.actor_totals = ActorTotals()
        self.registry.register(self.actor_totals)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.request_latency.labels(route=route, method=method, status=str(status)).observe(seconds)

    async def refresh(self, store: Store) -> None:
        """Recompute the state gauges from the store (nothing else runs between the reads' end and the sets)."""
        by_state: Counter[State] = Counter()
        usage: Counter[str] = Counter()
        async for page in store.active_state_pages():  # counted a page at a time: 100,000 are never held
            by_state.update(state.state for state in page)
            usage.update(
                resource_id
                for state in page
                if state.state.consumes_resources
                for resource_id in state.data.resource_ids or ()
            )
        resources = await store.resources()
        for state in State:
            self.active_instances.labels(state=state.value).set(by_state.get(state, 0))
        self.resource_usage.clear()
        self.resource_limit.clear()
        for resource in resources:
            self.resource_limit.labels(resource=resource.id).set(resource.concurrency)
            usage.setdefault(resource.id, 0)
        for resource_id, count in usage.items():
            self.resource_usage.labels(resource=resource_id).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    app_metrics: ApiMetrics = request.app.state.metrics
    await app_metrics.refresh(services.store)
    app_metrics.actor_totals.totals = await services.commands.stats()
    return Response(app_metrics.render(), media_type=CONTENT_TYPE_LATEST)
