"""`styx workflow list|show|create|delete|enable|disable` (docs/cli.md#workflows)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial

from styx_actors.cli.client import api_path
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import ApiError, ArgumentError, UnknownError
from styx_actors.cli.output import warn
from styx_actors.cli.views import schedule_forms
from styx_actors.cli.workflow_files import read_workflow_documents, structure_error
from styx_actors.model import Workflow, WorkflowConfiguration
from styx_actors.schedule import InvalidSchedule, Schedule
from styx_actors.validation import deployment_errors

STDIN = "-"


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("workflow", parents=[common], help="create, inspect, enable and delete workflows")
    workflow = group.add_subparsers(title="workflow commands", dest="subcommand", metavar="COMMAND", required=True)

    ls = workflow.add_parser("list", aliases=["ls"], parents=[common], help="list workflows")
    ls.set_defaults(handler=list_workflows)

    show = workflow.add_parser("show", aliases=["get"], parents=[common], help="show a workflow and its state")
    show.add_argument("component", metavar="COMPONENT")
    show.add_argument("workflow", metavar="WORKFLOW")
    show.set_defaults(handler=show_workflow)

    create = workflow.add_parser(
        "create", parents=[common], help="create or update the workflows of a YAML/JSON file (one per document)"
    )
    create.add_argument("component", metavar="COMPONENT")
    create.add_argument("-f", "--file", default=STDIN, help="workflow file; - or none reads standard input")
    create.set_defaults(handler=create_workflows)

    delete = workflow.add_parser("delete", parents=[common], help="delete workflows")
    delete.add_argument("component", metavar="COMPONENT")
    delete.add_argument("workflows", metavar="WORKFLOW", nargs="+")
    delete.add_argument("--force", action="store_true", help="don't ask for confirmation")
    delete.set_defaults(handler=delete_workflows)

    for name, enabled in (("enable", True), ("disable", False)):
        toggle = workflow.add_parser(name, parents=[common], help=f"{name} the natural triggering of workflows")
        toggle.add_argument("component", metavar="COMPONENT")
        toggle.add_argument("workflows", metavar="WORKFLOW", nargs="+")
        toggle.set_defaults(handler=enable_workflows if enabled else disable_workflows)


def list_workflows(args: argparse.Namespace, ctx: Context) -> None:
    ctx.output.workflows(ctx.client.get("/workflows"))


def show_workflow(args: argparse.Namespace, ctx: Context) -> None:
    ctx.output.workflow(ctx.client.get(api_path("workflows", args.component, args.workflow, "full")))


def create_workflows(args: argparse.Namespace, ctx: Context) -> None:
    documents = read_workflow_documents(_read_file(args.file))
    configurations = [document.configuration for document in documents]
    _validate(args.component, configurations)
    for document in documents:
        for warning in document.unknown_key_warnings():
            warn(warning)
    _warn_about_missing_resources(ctx, configurations)
    for configuration in configurations:
        body = configuration.model_dump(mode="json", exclude_unset=True)
        created = ctx.client.post(api_path("workflows", args.component), body)
        ctx.output.message(f"Workflow {created['workflow_id']} in component {created['component_id']} created.")


def _read_file(name: str) -> str:
    try:
        if name == STDIN:
            if sys.stdin.isatty():
                print("Reading workflow configurations from standard input (end with Ctrl-D)...", file=sys.stderr)
            return sys.stdin.read()
        with open(name, encoding="utf-8") as file:
            return file.read()
    except UnicodeDecodeError as exc:
        raise structure_error(f"{name} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ArgumentError(f"cannot read workflow file {name}: {exc.strerror or exc}") from None


def _validate(component: str, configurations: list[WorkflowConfiguration]) -> None:
    """The server's checks (without its maximum running timeout), run before anything is sent."""
    report: list[str] = []
    for configuration in configurations:
        errors = deployment_errors(Workflow.create(component, configuration))
        if errors:
            report.append(f"Invalid workflow configuration: {configuration.id}")
            report.extend(f"  error: {error}" for error in errors)
            if not _is_schedule(configuration.schedule):
                report.append(f"  {schedule_forms()}")
    if report:
        raise ArgumentError("\n".join(report))


def _is_schedule(text: str) -> bool:
    try:
        Schedule.parse(text)
    except InvalidSchedule:
        return False
    return True


def _warn_about_missing_resources(ctx: Context, configurations: list[WorkflowConfiguration]) -> None:
    """The service accepts a workflow whose resources do not exist (as Styx does), but its instances fail
    until they do: say so before creating it."""
    if not any(configuration.resources for configuration in configurations):
        return
    existing = {resource["id"] for resource in ctx.client.get("/resources")["resources"]}
    for configuration in configurations:
        missing = [resource for resource in configuration.resources if resource not in existing]
        if missing:
            warn(
                f"workflow {configuration.id} uses resources that do not exist: {', '.join(missing)}. Its instances "
                'fail ("Referenced resources not found") and are retried until they exist: '
                f"`styx resource create {missing[0]} CONCURRENCY`."
            )


def delete_workflows(args: argparse.Namespace, ctx: Context) -> None:
    if not args.force and sys.stdin.isatty():
        plural = "s" if len(args.workflows) > 1 else ""
        workflows = ", ".join(args.workflows)
        sys.stderr.write(
            f"Sure you want to delete the workflow{plural} {workflows} in component {args.component}? [y/N] "
        )
        sys.stderr.flush()
        if sys.stdin.readline().strip() != "y":
            raise UnknownError("Nothing deleted.")
    for workflow in args.workflows:
        delete = partial(ctx.client.delete, api_path("workflows", args.component, workflow))
        if _unless_missing(ctx, args.component, workflow, delete):
            ctx.output.message(f"Workflow {workflow} in component {args.component} deleted.")


def enable_workflows(args: argparse.Namespace, ctx: Context) -> None:
    _set_enabled(args, ctx, enabled=True)


def disable_workflows(args: argparse.Namespace, ctx: Context) -> None:
    _set_enabled(args, ctx, enabled=False)


def _set_enabled(args: argparse.Namespace, ctx: Context, enabled: bool) -> None:
    for workflow in args.workflows:
        patch = partial(
            ctx.client.patch, api_path("workflows", args.component, workflow, "state"), {"enabled": enabled}
        )
        if _unless_missing(ctx, args.component, workflow, patch):
            ctx.output.message(
                f"Workflow {workflow} in component {args.component} {'enabled' if enabled else 'disabled'}."
            )


def _unless_missing(ctx: Context, component: str, workflow: str, change: Callable[[], object]) -> bool:
    """Send the change to one workflow; one that does not exist is reported, not an error (Styx)."""
    try:
        change()
    except ApiError as exc:
        if exc.code != 404:
            raise
        ctx.output.message(f"Workflow {workflow} in component {component} not found.")
        return False
    return True
