"""`styx resource create|edit|show|list`: named concurrency limits (docs/cli.md#resources).

Every command prints the resources it got back as a `RESOURCE CONCURRENCY` table (JSON: a list).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from styx_actors.cli.client import api_path
from styx_actors.cli.context import CommandParsers, Context


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("resource", parents=[common], help="create, change and list resources")
    resource = group.add_subparsers(title="resource commands", dest="subcommand", metavar="COMMAND", required=True)

    create = resource.add_parser("create", parents=[common], help="create (or overwrite) a resource")
    create.add_argument("resource_id", metavar="ID")
    create.add_argument("concurrency", metavar="CONCURRENCY", type=int, help="how many instances may hold it at once")
    create.set_defaults(handler=create_resource)

    edit = resource.add_parser("edit", aliases=["e"], parents=[common], help="change a resource's concurrency")
    edit.add_argument("resource_id", metavar="ID")
    edit.add_argument("--concurrency", type=int, help="the new concurrency")
    edit.set_defaults(handler=edit_resource)

    show = resource.add_parser("show", aliases=["get"], parents=[common], help="show a resource")
    show.add_argument("resource_id", metavar="ID")
    show.set_defaults(handler=show_resource)

    ls = resource.add_parser("list", aliases=["ls"], parents=[common], help="list resources")
    ls.set_defaults(handler=list_resources)


def create_resource(args: argparse.Namespace, ctx: Context) -> None:
    resource = ctx.client.post("/resources", {"id": args.resource_id, "concurrency": args.concurrency})
    ctx.output.resources([resource])


def edit_resource(args: argparse.Namespace, ctx: Context) -> None:
    if args.concurrency is None:
        print("Nothing to edit: give --concurrency N.", file=sys.stderr)
        return
    body = {"id": args.resource_id, "concurrency": args.concurrency}
    ctx.output.resources([ctx.client.put(api_path("resources", args.resource_id), body)])


def show_resource(args: argparse.Namespace, ctx: Context) -> None:
    ctx.output.resources(_as_list(ctx.client.get(api_path("resources", args.resource_id))))


def list_resources(args: argparse.Namespace, ctx: Context) -> None:
    ctx.output.resources(ctx.client.get("/resources")["resources"])


def _as_list(payload: Any) -> list[dict[str, Any]]:
    """GET /resources/{id} answers `{"resources": [...]}` (the contract) or the bare resource (Styx)."""
    if isinstance(payload, dict) and "resources" in payload:
        return list(payload["resources"])
    return [payload]
