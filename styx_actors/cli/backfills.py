"""`styx backfill create|edit|halt|show|list` (docs/cli.md#backfills), and `show --watch` to follow one live."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from styx_actors.cli.arguments import add_env_option, env_vars, partition_instant
from styx_actors.cli.client import api_path
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.views import PartitionCounts

# How often `backfill show --watch` reads the backfill's partitions.
WATCH_POLL_SECONDS = 1.0
NO_TRUNC_HELP = "don't truncate the description and trigger env (pretty output)"


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("backfill", parents=[common], help="create, inspect and stop backfills")
    backfill = group.add_subparsers(title="backfill commands", dest="subcommand", metavar="COMMAND", required=True)

    create = backfill.add_parser("create", parents=[common], help="backfill a workflow over a range of partitions")
    create.add_argument("component", metavar="COMPONENT")
    create.add_argument("workflow", metavar="WORKFLOW")
    create.add_argument(
        "start",
        metavar="START",
        type=partition_instant("start"),
        help="first partition (inclusive), yyyy-MM-dd or yyyy-MM-ddTHH, UTC",
    )
    create.add_argument(
        "end",
        metavar="END",
        type=partition_instant("end"),
        help="end partition (exclusive), yyyy-MM-dd or yyyy-MM-ddTHH, UTC",
    )
    create.add_argument("concurrency", metavar="CONCURRENCY", type=int, help="how many partitions may run at once")
    create.add_argument("--reverse", action="store_true", help="trigger the latest partition first")
    create.add_argument("-d", "--description", help="what the backfill is for")
    add_env_option(create, "backfill's instances")
    create.add_argument("--allow-future", action="store_true", help="allow partitions in the future")
    create.set_defaults(handler=create_backfill)

    edit = backfill.add_parser("edit", aliases=["e"], parents=[common], help="change a backfill's concurrency")
    edit.add_argument("backfill_id", metavar="ID")
    edit.add_argument("--concurrency", type=int, help="the new concurrency")
    edit.set_defaults(handler=edit_backfill)

    halt = backfill.add_parser("halt", aliases=["h"], parents=[common], help="stop a backfill")
    halt.add_argument("backfill_id", metavar="ID")
    halt.add_argument("--graceful", action="store_true", help="let the already triggered instances finish")
    halt.set_defaults(handler=halt_backfill)

    show = backfill.add_parser("show", aliases=["get"], parents=[common], help="show a backfill and its partitions")
    show.add_argument("backfill_id", metavar="ID")
    show.add_argument("--no-trunc", action="store_true", help=NO_TRUNC_HELP)
    show.add_argument(
        "--watch", action="store_true", help="follow the backfill until every partition finished or it is halted"
    )
    show.set_defaults(handler=show_backfill)

    ls = backfill.add_parser("list", aliases=["ls"], parents=[common], help="list backfills")
    ls.add_argument("-w", "--workflow", help="only backfills of this workflow")
    ls.add_argument("-c", "--component", help="only backfills of this component")
    ls.add_argument("-a", "--show-all", action="store_true", help="also finished and halted backfills")
    ls.add_argument("--no-trunc", action="store_true", help=NO_TRUNC_HELP)
    ls.set_defaults(handler=list_backfills)


def create_backfill(args: argparse.Namespace, ctx: Context) -> None:
    body = {
        "component": args.component,
        "workflow": args.workflow,
        "start": args.start,
        "end": args.end,
        "concurrency": args.concurrency,
        "reverse": args.reverse,
        "description": args.description,
        "trigger_parameters": {"env": env_vars(args.env)},
    }
    backfill = ctx.client.post("/backfills", body, params={"allowFuture": args.allow_future})
    ctx.output.backfill(backfill, no_trunc=True)


def edit_backfill(args: argparse.Namespace, ctx: Context) -> None:
    if args.concurrency is None:
        print("Nothing to edit: give --concurrency N.", file=sys.stderr)
        return
    body = {"id": args.backfill_id, "concurrency": args.concurrency}
    ctx.output.backfill(ctx.client.put(api_path("backfills", args.backfill_id), body), no_trunc=True)


def halt_backfill(args: argparse.Namespace, ctx: Context) -> None:
    ctx.client.delete(api_path("backfills", args.backfill_id), params={"graceful": args.graceful})
    ctx.output.message(f"Backfill halted! Use `styx backfill show {args.backfill_id}` to check the backfill status.")


def _backfill_with_statuses(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    payload: dict[str, Any] = ctx.client.get(api_path("backfills", args.backfill_id), params={"status": True})
    return payload


def show_backfill(args: argparse.Namespace, ctx: Context) -> None:
    payload = _watch(args, ctx) if args.watch else _backfill_with_statuses(args, ctx)
    ctx.output.backfill_payload(payload, args.no_trunc)


def _watch(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    """Poll until every partition has finished (DONE, ERROR) or the backfill is halted; the last payload.
    The display opens with the first counts, so that its first frame knows the total."""
    payload = _backfill_with_statuses(args, ctx)
    counts = PartitionCounts.of(payload["statuses"]["active_states"])
    with ctx.output.backfill_progress(args.backfill_id, counts) as progress:
        while not (payload["backfill"]["halted"] or counts.finished):
            time.sleep(WATCH_POLL_SECONDS)
            payload = _backfill_with_statuses(args, ctx)
            counts = PartitionCounts.of(payload["statuses"]["active_states"])
            progress.update(counts)
    return payload


def list_backfills(args: argparse.Namespace, ctx: Context) -> None:
    params = {"component": args.component, "workflow": args.workflow, "showAll": args.show_all, "status": False}
    ctx.output.backfills(ctx.client.get("/backfills", params=params)["backfills"], args.no_trunc)
