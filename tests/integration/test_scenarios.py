"""Styx's scheduler system scenarios (its SystemTest; docs/semantics.md) on the actor system: real store,
real containers.

Time is a ManualClock; scheduler ticks are driven explicitly, as Styx's SystemTest does. Containers run
for real, so waits are conditions with deadlines.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from styx_actors.actors.local import LocalActorSystem
from styx_actors.clock import ManualClock, SystemClock
from styx_actors.events import event_from_json
from styx_actors.model import (
    BackfillInput,
    Resource,
    State,
    TriggerParameters,
    TriggerRequest,
    WorkflowConfiguration,
    WorkflowId,
    WorkflowInstance,
    WorkflowStatePatch,
)
from styx_actors.store.base import Store
from styx_actors.timeutil import UTC
from tests.conftest import wait_until
from tests.integration.conftest import TEST_IMAGE, scenario_settings

pytestmark = pytest.mark.docker

COMPONENT = "styx-test"


def at(hour: int, minute: int = 0, day: int = 14) -> datetime:
    return datetime(2016, 3, day, hour, minute, tzinfo=UTC)


def config(workflow: str, schedule: str = "hours", script: str = "exit 0", **extra: object) -> WorkflowConfiguration:
    return WorkflowConfiguration(
        id=workflow, schedule=schedule, docker_image=TEST_IMAGE, docker_args=["sh", "-c", script], **extra
    )


async def deploy(system: LocalActorSystem, cfg: WorkflowConfiguration, enabled: bool = True) -> WorkflowId:
    workflow = await system.commands.save_workflow(COMPONENT, cfg)
    if enabled:
        await system.commands.patch_workflow_state(workflow.id, WorkflowStatePatch(enabled=True))
    return workflow.id


def instance(workflow_id: WorkflowId, parameter: str) -> WorkflowInstance:
    return WorkflowInstance(workflow_id=workflow_id, parameter=parameter)


async def event_names(store: Store, wfi: WorkflowInstance) -> list[str]:
    return [event_from_json(e.event_json)[0].name for e in await store.events(wfi)]


async def finished(store: Store, wfi: WorkflowInstance) -> bool:
    names = await event_names(store, wfi)
    return bool(names) and names[-1] in ("success", "stop", "halt") and await store.active_state(wfi) is None


async def wait_finished(store: Store, wfi: WorkflowInstance, timeout: float = 30) -> list[str]:
    await wait_until(lambda: finished(store, wfi), timeout, message=f"{wfi} to finish")
    return await event_names(store, wfi)


async def wait_state(store: Store, wfi: WorkflowInstance, state: State, timeout: float = 30) -> None:
    async def reached() -> bool:
        current = await store.active_state(wfi)
        return current is not None and current.state is state

    await wait_until(reached, timeout, message=f"{wfi} to reach {state.value}")


async def test_custom_cron_triggers_in_order(start_system, store: Store, clock: ManualClock) -> None:
    clock.set(at(12, 40))
    system = await start_system()
    workflow_id = await deploy(system, config("cron", schedule="15,45 12,15 * * *"))
    clock.set(at(15, 30))

    assert await system.scheduler.tick() == 1
    first = instance(workflow_id, "2016-03-14T12:45:00Z")
    assert await wait_finished(store, first) == [
        "triggerExecution",
        "dequeue",
        "submit",
        "submitted",
        "started",
        "terminate",
        "success",
    ]
    assert await system.scheduler.tick() == 1
    assert await store.latest_event_counter(instance(workflow_id, "2016-03-14T15:15:00Z")) >= 0
    assert await system.scheduler.tick() == 0  # the next one (15:45) is not due yet


async def test_natural_triggers_catch_up_one_per_tick(start_system, store: Store, clock: ManualClock) -> None:
    clock.set(at(12, 30))
    system = await start_system()
    workflow_id = await deploy(system, config("hourly"))
    _, state = await store.get_workflow(workflow_id)
    assert (state.next_natural_trigger, state.next_natural_offset_trigger) == (at(12), at(13))
    clock.set(at(15, 30))

    for expected in ("2016-03-14T12", "2016-03-14T13", "2016-03-14T14"):
        assert await system.scheduler.tick() == 1
        assert await store.latest_event_counter(instance(workflow_id, expected)) >= 0
    assert await system.scheduler.tick() == 0
    _, state = await store.get_workflow(workflow_id)
    assert (state.next_natural_trigger, state.next_natural_offset_trigger) == (at(15), at(16))


async def test_disabled_and_deleted_workflows_are_not_triggered(start_system, store: Store, clock: ManualClock) -> None:
    clock.set(at(12, 30))
    system = await start_system()
    disabled = await deploy(system, config("disabled"), enabled=False)
    deleted = await deploy(system, config("deleted"))
    await system.commands.delete_workflow(deleted)
    clock.set(at(13, 30))

    assert await system.scheduler.tick() == 0
    assert await store.latest_event_counter(instance(disabled, "2016-03-14T12")) == -1
    assert await store.latest_event_counter(instance(deleted, "2016-03-14T12")) == -1
    _, state = await store.get_workflow(disabled)
    assert state.next_natural_trigger == at(13)  # a disabled workflow still advances


async def test_backfill_within_resource_limit_and_to_completion_with_env(
    start_system, store: Store, clock: ManualClock
) -> None:
    system = await start_system()
    await system.commands.save_resource(Resource(id="r1", concurrency=2))
    check_env = (
        'test "$FOO" = foo && test "$BAR" = overridden-bar && test "$BAZ" = baz && test "$STYX_TRIGGER_TYPE" = backfill'
    )
    workflow_id = await deploy(
        system, config("bf", script=check_env, resources=["r1"], env={"FOO": "foo", "BAR": "bar"}), enabled=False
    )
    backfill = await system.commands.create_backfill(
        BackfillInput(
            start=at(0, day=1),
            end=at(4, day=1),
            component=COMPONENT,
            workflow="bf",
            concurrency=3,
            trigger_parameters=TriggerParameters(env={"BAR": "overridden-bar", "BAZ": "baz"}),
        )
    )
    partitions = [instance(workflow_id, f"2016-03-01T0{h}") for h in range(4)]
    for wfi in partitions:
        events = await wait_finished(store, wfi, timeout=60)
        assert events[-1] == "success", events  # the env check inside the container passed
    stored = await store.get_backfill(backfill.id)
    assert stored.all_triggered and stored.next_trigger == at(4, day=1)
    assert system.broker.usage()["r1"] == (0, 2)
    await assert_never_more_than(store, partitions, 2)


async def assert_never_more_than(store: Store, instances: list[WorkflowInstance], limit: int) -> None:
    """From the event logs: at no moment did more than `limit` instances hold a resource permit."""
    spans = []
    for wfi in instances:
        held_from = None
        for stored in await store.events(wfi):
            name = event_from_json(stored.event_json)[0].name
            if name == "dequeue":
                held_from = stored.counter, stored.timestamp
            elif name in ("terminate", "runError", "halt", "timeout") and held_from is not None:
                spans.append((held_from[1], stored.timestamp))
                held_from = None
    points = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda p: (p[0], p[1]))
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    assert peak <= limit


async def test_resource_limit_never_exceeded_under_a_burst(start_system, store: Store) -> None:
    system = await start_system(use_clock=SystemClock())
    await system.commands.save_resource(Resource(id="narrow", concurrency=2))
    workflow_id = await deploy(system, config("burst", schedule="days", script="sleep 0.3", resources=["narrow"]))
    days = [f"2016-03-{d:02d}" for d in range(1, 9)]
    for day in days:
        await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter=day))
    for day in days:
        assert (await wait_finished(store, instance(workflow_id, day), timeout=90))[-1] == "success"
    await assert_never_more_than(store, [instance(workflow_id, d) for d in days], 2)
    assert not system.broker.holders("narrow")


async def test_retries_use_the_latest_workflow_configuration(start_system, store: Store, clock: ManualClock) -> None:
    system = await start_system()
    workflow_id = await deploy(system, config("latest", script="exit 20"), enabled=False)
    wfi = instance(workflow_id, "2016-03-14T10")
    await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2016-03-14T10"))

    async def waiting_for_retry() -> bool:
        state = await store.active_state(wfi)
        return state is not None and state.state is State.QUEUED and state.data.retry_delay_millis == 600_000

    await wait_until(waiting_for_retry, 30, message="exit 20 to requeue with the missing-dependency delay")
    state = await store.active_state(wfi)
    assert state.data.last_exit == 20 and state.data.retry_cost == pytest.approx(0.1)
    await system.commands.save_workflow(COMPONENT, config("latest", script='test "$NEW" = yes', env={"NEW": "yes"}))
    clock.advance(timedelta(minutes=10))
    events = await wait_finished(store, wfi)
    assert events[-1] == "success" and events.count("submit") == 2


@pytest.mark.parametrize(("script", "last_event", "retries"), [("exit 50", "stop", 0), ("exit 1", "success", 1)])
async def test_exit_codes_decide_retries(
    start_system, store: Store, clock: ManualClock, tmp_path, script: str, last_event: str, retries: int
) -> None:
    settings = scenario_settings(tmp_path, retry_base_delay=timedelta(seconds=5))
    system = await start_system(settings)
    # exit 1 fails the first try only: the marker file exists from the second try on
    if script == "exit 1":
        script = 'test "$STYX_EXECUTION_TRIES" != 0'
    workflow_id = await deploy(system, config("codes", script=script))
    wfi = instance(workflow_id, "2016-03-14T09")
    await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2016-03-14T09"))
    if retries:
        await wait_until(lambda: _queued_with_delay(store, wfi), 30, message="a backoff retry")
        clock.advance(timedelta(seconds=5))
    events = await wait_finished(store, wfi)
    assert events[-1] == last_event
    assert events.count("submitted") == retries + 1


async def _queued_with_delay(store: Store, wfi: WorkflowInstance) -> bool:
    state = await store.active_state(wfi)
    return state is not None and state.state is State.QUEUED and bool(state.data.retry_delay_millis)


async def test_halt_kills_a_running_container(start_system, store: Store) -> None:
    system = await start_system()
    workflow_id = await deploy(system, config("long", script="sleep 60"))
    wfi = instance(workflow_id, "2016-03-14T08")
    await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2016-03-14T08"))
    await wait_state(store, wfi, State.RUNNING)
    execution_id = (await store.active_state(wfi)).data.execution_id
    await system.commands.halt(wfi)
    assert (await event_names(store, wfi))[-1] == "halt"
    runner = system.runner

    async def container_gone() -> bool:
        status = await runner.status(execution_id)
        return type(status).__name__ in ("NoContainer", "Exited")

    await wait_until(container_gone, 30, message="the halted container to stop")


async def test_restored_states_keep_their_timestamps_and_resume(start_system, store: Store, clock: ManualClock) -> None:
    system = await start_system()
    await system.commands.save_resource(Resource(id="closed", concurrency=0))
    workflow_id = await deploy(system, config("restore", script="exit 0", resources=["closed"]), enabled=False)
    wfi = instance(workflow_id, "2016-03-14T07")
    await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2016-03-14T07"))
    await system.commands.retry(wfi, delay_millis=3_600_000)  # parked for an hour
    await system.commands.save_resource(Resource(id="closed", concurrency=1))
    parked = await store.active_state(wfi)
    assert parked.state is State.QUEUED
    await system.stop()

    clock.advance(timedelta(minutes=30))
    restarted = await start_system()
    restored = restarted.shards[0].state_of(wfi) or restarted.shards[1].state_of(wfi)
    assert restored == parked  # same counter, same timestamp: nothing was re-applied on recovery
    clock.advance(timedelta(minutes=31))
    assert (await wait_finished(store, wfi))[-1] == "success"


async def test_logs_of_an_execution_while_its_container_exists(start_system, store: Store, tmp_path) -> None:
    from styx_actors.errors import NotFound

    system = await start_system(scenario_settings(tmp_path, container_grace_period=timedelta(hours=1)))
    workflow_id = await deploy(system, config("logs", script="echo hello from {}", schedule="days"))
    wfi = instance(workflow_id, "2016-03-01")
    with pytest.raises(NotFound):
        await system.commands.logs(wfi)  # nothing ran yet
    await system.commands.trigger(TriggerRequest(workflow_id=workflow_id, parameter="2016-03-01"))
    assert (await wait_finished(store, wfi))[-1] == "success"
    found = await system.commands.logs(wfi)
    assert found.execution_id.startswith("styx-run-") and "hello from" in found.logs
