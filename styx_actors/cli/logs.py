"""`styx logs`: the end of the output of a workflow instance's execution, from its container while that exists
and from the store afterwards (`GET /status/logs/...`, docs/api.md); `--follow` prints it as it grows.

The output is printed as the job wrote it, whatever the output mode, except `--json`: the API's payload
(with `--follow`, JSON Lines of `{"execution_id", "logs", "source"}` holding only what is new).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from styx_actors.cli.client import api_path
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import ApiError
from styx_actors.cli.views import compact_json

# How often `--follow` reads the output again while the instance is active.
FOLLOW_POLL_SECONDS = 1.0
# Every read returns the end of the output (the API's default tail, 1 MiB). Once the output outgrows it, the
# end of what was read last is looked for in the new read: ANCHOR_CHARS of it, at MAX_ANCHOR_TRIES places
# at most (repetitive output matches in many).
ANCHOR_CHARS = 200
MAX_ANCHOR_TRIES = 64
SKIPPED_NOTICE = "[styx: more output was written than one read holds; some of it is not shown]"
# States in which an execution runs (or is being started).
EXECUTING = frozenset({"SUBMITTING", "SUBMITTED", "RUNNING"})
NOT_FOUND = 404


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser(
        "logs", parents=[common], help="print the output of a workflow instance's execution (the latest by default)"
    )
    logs.add_argument("component", metavar="COMPONENT")
    logs.add_argument("workflow", metavar="WORKFLOW")
    logs.add_argument("parameter", metavar="PARAMETER", help="the partition, e.g. 2019-05-13 or 2019-05-13T10")
    logs.add_argument("--execution", metavar="ID", help="this execution of the instance (see `styx events`)")
    logs.add_argument(
        "--follow",
        action="store_true",
        help="keep printing new output until the instance is no longer active (or the execution ended)",
    )
    logs.set_defaults(handler=show_logs)


def show_logs(args: argparse.Namespace, ctx: Context) -> None:
    if args.follow:
        _follow(args, ctx)
        return
    payload = _read(args, ctx)
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2))
    else:
        _write(payload["logs"])


def _read(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    path = api_path("status", "logs", args.component, args.workflow, args.parameter)
    payload: dict[str, Any] = ctx.client.get(path, params={"execution_id": args.execution})
    return payload


def _running(args: argparse.Namespace, ctx: Context) -> bool:
    """Whether what is followed may still write: the instance is active (and, when an execution was named,
    that execution is the one it runs)."""
    payload = ctx.client.get("/status/activeStates", params={"component": args.component, "workflow": args.workflow})
    for state in payload["active_states"]:
        if state["workflow_instance"]["parameter"] == args.parameter:
            if args.execution is None:
                return True
            return state["state"] in EXECUTING and state["state_data"].get("execution_id") == args.execution
    return False


def _follow(args: argparse.Namespace, ctx: Context) -> None:
    as_json = getattr(args, "json", False)
    execution_id: str | None = None
    seen = ""  # the end of the output as read last time
    read_once = False
    while True:
        # Activity is read before the output, so the output written last is always read after the end.
        running = _running(args, ctx)
        try:
            payload: dict[str, Any] | None = _read(args, ctx)
        except ApiError as error:
            # Nothing to read yet (no execution, or its container is not created yet) while it runs.
            if error.code != NOT_FOUND or not (running or read_once):
                raise
            payload = None
        if payload is not None:
            read_once = True
            if payload["execution_id"] != execution_id:
                if execution_id is not None:
                    print(f"[styx: execution {payload['execution_id']}]", file=sys.stderr, flush=True)
                execution_id, seen = payload["execution_id"], ""
            new = unseen_output(seen, payload["logs"])
            if new is None:
                print(SKIPPED_NOTICE, file=sys.stderr, flush=True)
                new = payload["logs"]
            seen = payload["logs"]
            if new and as_json:
                print(compact_json({**payload, "logs": new}), flush=True)
            elif new:
                _write(new)
        if not running:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


def unseen_output(seen: str, current: str) -> str | None:
    """What `current` (the end of an output, read now) adds to `seen` (its end, read before); None when they
    do not overlap: more was written in between than one read holds.

    Output only grows, so `seen` ends somewhere in `current`, after a prefix of `current` that is a suffix of
    `seen`. The longest such overlap is taken: in repetitive output a shorter one may be the true one.
    """
    if current.startswith(seen):
        return current[len(seen) :]
    # An overlap at least as long as the anchor holds the anchor at its end: look where it is found.
    anchor = seen[-ANCHOR_CHARS:]
    end = len(current)
    for _ in range(MAX_ANCHOR_TRIES):
        found = current.rfind(anchor, 0, end)
        if found < 0:
            break
        overlap = found + len(anchor)
        if seen.endswith(current[:overlap]):
            return current[overlap:]
        end = overlap - 1
    # A shorter overlap: each length is tried.
    for overlap in range(min(len(anchor) - 1, len(current)), 0, -1):
        if seen.endswith(current[:overlap]):
            return current[overlap:]
    return None


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
