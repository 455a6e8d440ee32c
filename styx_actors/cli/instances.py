"""Commands on workflow instances: `ls`, `events` (with `--follow`), `trigger`, `halt`, `retry`
(docs/cli.md#workflow-instances)."""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from styx_actors.cli.arguments import add_env_option, env_vars
from styx_actors.cli.client import api_path
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import ApiError, ArgumentError
from styx_actors.cli.views import EventInfo, group_states, parameter_forms
from styx_actors.schedule import ParameterError, Schedule, parse_aligned_instant, to_parameter
from styx_actors.timeutil import UTC

# How often `events --follow` asks for new events while the instance is active.
FOLLOW_POLL_SECONDS = 1.0


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    ls = commands.add_parser("ls", aliases=["list"], parents=[common], help="list active workflow instances")
    ls.add_argument("-c", "--component", help="only instances of this component")
    ls.set_defaults(handler=list_active)

    events = commands.add_parser(
        "events", aliases=["e"], parents=[common], help="list the events of a workflow instance"
    )
    _add_instance_arguments(events)
    events.add_argument(
        "--follow", action="store_true", help="keep printing new events until the instance is no longer active"
    )
    events.set_defaults(handler=show_events)

    trigger = commands.add_parser("trigger", aliases=["t"], parents=[common], help="trigger a workflow instance")
    _add_instance_arguments(trigger)
    add_env_option(trigger, "triggered instance")
    trigger.add_argument("--allow-future", action="store_true", help="allow triggering an instance of the future")
    trigger.set_defaults(handler=trigger_instance)

    halt = commands.add_parser("halt", aliases=["h"], parents=[common], help="halt an active workflow instance")
    _add_instance_arguments(halt)
    halt.set_defaults(handler=halt_instance)

    retry = commands.add_parser("retry", aliases=["r"], parents=[common], help="retry an active workflow instance now")
    _add_instance_arguments(retry)
    retry.set_defaults(handler=retry_instance)


def _add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("component", metavar="COMPONENT")
    parser.add_argument("workflow", metavar="WORKFLOW")
    parser.add_argument("parameter", metavar="PARAMETER", help="the partition, e.g. 2019-05-13 or 2019-05-13T10")


def _instance_body(args: argparse.Namespace) -> dict[str, Any]:
    return {"workflow_id": {"component_id": args.component, "id": args.workflow}, "parameter": args.parameter}


def list_active(args: argparse.Namespace, ctx: Context) -> None:
    payload = ctx.client.get("/status/activeStates", params={"component": args.component})
    ctx.output.states(group_states(payload["active_states"]))


def _events(args: argparse.Namespace, ctx: Context) -> list[EventInfo]:
    payload = ctx.client.get(api_path("status", "events", args.component, args.workflow, args.parameter))
    return [EventInfo.of(entry) for entry in payload["events"]]


def _is_active(args: argparse.Namespace, ctx: Context) -> bool:
    payload = ctx.client.get("/status/activeStates", params={"component": args.component, "workflow": args.workflow})
    return any(state["workflow_instance"]["parameter"] == args.parameter for state in payload["active_states"])


def show_events(args: argparse.Namespace, ctx: Context) -> None:
    if not args.follow:
        ctx.output.events(_events(args, ctx))
        return
    ctx.output.events_header()
    shown = 0
    while True:
        # Activity is read before the events, so the events of the final transition are always shown.
        active = _is_active(args, ctx)
        events = _events(args, ctx)
        for event in events[shown:]:
            ctx.output.event(event)
        shown = len(events)
        if not active:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


def trigger_instance(args: argparse.Namespace, ctx: Context) -> None:
    body = {**_instance_body(args), "trigger_parameters": {"env": env_vars(args.env)}}
    floored = _floored_parameter(args, ctx)
    ctx.client.post("/scheduler/trigger", body, params={"allowFuture": args.allow_future})
    instance = [args.component, args.workflow, floored.parameter]
    changed = floored.parameter != args.parameter
    note = f" ({args.parameter} floored to the workflow's schedule, {floored.schedule})" if changed else ""
    ctx.output.message(
        f"Triggered! Workflow instance {' '.join(instance)}{note}.\n"
        f"Follow it with `{shlex.join(['styx', 'events', *instance, '--follow'])}`; "
        f"`styx ls -c {args.component}` lists the active instances."
    )


@dataclass(frozen=True)
class _Floored:
    parameter: str  # the instance's parameter, as the service names it
    schedule: str  # the workflow's schedule, in its JSON form (`days`)


def _floored_parameter(args: argparse.Namespace, ctx: Context) -> _Floored:
    """The instance the service triggers: the given time floored to the workflow's schedule, as the service
    floors it (`2024-01-01T05` on a daily workflow is `2024-01-01`). A parameter that is no time is refused
    here with the forms the schedule takes (the service answers in java.time's words). For a workflow that
    does not exist the given parameter is kept: the service's refusal says what is wrong."""
    try:
        workflow = ctx.client.get(api_path("workflows", args.component, args.workflow))
    except ApiError as exc:
        if exc.code != 404:
            raise
        return _Floored(args.parameter, schedule="unknown")
    schedule = Schedule.parse(workflow["configuration"]["schedule"])
    try:
        parameter = to_parameter(schedule, parse_aligned_instant(args.parameter, schedule))
    except ParameterError:
        key = f"{args.component}#{args.workflow}"
        raise ArgumentError(parameter_forms(args.parameter, key, schedule, datetime.now(UTC))) from None
    return _Floored(parameter, schedule.json_form())


def halt_instance(args: argparse.Namespace, ctx: Context) -> None:
    ctx.client.post("/scheduler/halt", _instance_body(args))
    ctx.output.message(f"Halted! Use `styx events {args.component} {args.workflow} {args.parameter}` to verify.")


def retry_instance(args: argparse.Namespace, ctx: Context) -> None:
    ctx.client.post("/scheduler/retry", _instance_body(args))
    ctx.output.message(f"Retrying! Use `styx ls -c {args.component}` to check active workflow instances.")
