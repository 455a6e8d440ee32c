"""Probes and Prometheus metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from styx_actors.events import TriggerExecution, event_to_json_text
from styx_actors.model import RunState, State, StateData, Trigger, WorkflowInstance
from styx_actors.store.base import Transition
from tests.api.conftest import API, COMPONENT, WORKFLOW, Api, StartApi


async def test_probes(api: Api) -> None:
    ping = await api.client.get("/ping")
    assert (ping.status_code, ping.text, ping.headers["content-type"].split(";")[0]) == (200, "pong", "text/plain")
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}


async def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_request_latency_by_route_template(api: Api) -> None:
    await api.client.get(f"{API}/workflows/{COMPONENT}/{WORKFLOW}")
    await api.client.get(f"{API}/workflows/other/thing")
    await api.client.get(f"{API}/nowhere/at/all")
    samples = await _samples(api)
    by_template = (
        "styx_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/v3/workflows/{component_id}/{workflow_id}"), ("status", "404")),
    )
    assert samples[by_template] == 2
    unmatched = (
        "styx_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")),
    )
    assert samples[unmatched] == 1


async def test_active_instances_and_resources(api: Api) -> None:
    await api.create_blocked_workflow()
    await api.trigger("2016-03-14T10")
    await api.wait_queued("2016-03-14T10")
    await api.client.post(f"{API}/resources", json={"id": "db", "concurrency": 3})
    # A running instance holding `db`, as the store records it.
    instance = WorkflowInstance.of(COMPONENT, "running", "2016-03-14T09")
    running = RunState(
        workflow_instance=instance, state=State.RUNNING, timestamp=0, counter=0, data=StateData(resource_ids=["db"])
    )
    event = event_to_json_text(TriggerExecution(trigger=Trigger.natural()), instance)
    await api.store.commit([Transition(state=running, event_json=event, insert=True)])

    samples = await _samples(api)
    assert samples[("styx_active_instances", (("state", "QUEUED"),))] == 1
    assert samples[("styx_active_instances", (("state", "RUNNING"),))] == 1
    assert samples[("styx_active_instances", (("state", "DONE"),))] == 0
    assert samples[("styx_resource_limit", (("resource", "db"),))] == 3
    assert samples[("styx_resource_usage", (("resource", "db"),))] == 1
    assert samples[("styx_resource_usage", (("resource", "blocker"),))] == 0  # the QUEUED one holds nothing

    await api.client.delete(f"{API}/resources/db")
    samples = await _samples(api)
    assert ("styx_resource_limit", (("resource", "db"),)) not in samples


async def test_each_app_has_its_own_registry(api: Api, start_api: StartApi) -> None:
    other = await start_api()
    await api.client.get("/ping")
    samples = await _samples(other)
    ping = ("styx_http_request_duration_seconds_count", (("method", "GET"), ("route", "/ping"), ("status", "200")))
    assert ping not in samples


async def test_metrics_count_transitions_and_triggers(api) -> None:
    await api.create_blocked_workflow()
    assert 'styx_triggers_total{type="adhoc"}' not in (await api.client.get("/metrics")).text
    assert (await api.trigger("2016-03-14T10")).status_code == 200
    text = (await api.client.get("/metrics")).text
    assert 'styx_transitions_total{event="triggerExecution"} 1.0' in text
    assert 'styx_triggers_total{type="adhoc"} 1.0' in text
