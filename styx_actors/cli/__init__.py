"""The `styx` command line client of the v3 API (docs/cli.md). The `styx` script itself is
styx_server/cli.py, which adds `styx serve` (the service) to these commands.

    styx [-H HOST] [--json | -p] [--debug] COMMAND ...

Global options are accepted before or after the command. Exit statuses are those of errors.ExitStatus;
errors go to stderr, results to stdout. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from styx_actors.cli import auth, backfills, instances, logs, resources, workflows
from styx_actors.cli.client import DEFAULT_HOST, HOST_ENV
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import CliError, ExitStatus
from styx_actors.cli.output import make_output
from styx_actors.cli.version import VERSION_TEXT

INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C


def _global_options(with_host: bool) -> argparse.ArgumentParser:
    """A parent parser of the global options. Their defaults are SUPPRESS so that a value given before
    the command is not overwritten by the command's own (absent) copy of the option."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options")
    if with_host:
        group.add_argument(
            "-H",
            "--host",
            default=argparse.SUPPRESS,
            help=f"Styx API host (default: ${HOST_ENV}, else {DEFAULT_HOST}); without a scheme, http:// on a "
            "loopback address and https:// elsewhere",
        )
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    group.add_argument(
        "-p", "--plain", action="store_true", default=argparse.SUPPRESS, help="plain, space-separated output"
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="log requests, print stack traces"
    )
    group.add_argument("--version", action="version", version=VERSION_TEXT)
    return options


# Registers commands that take the global options without -H/--host (`styx serve --host` is where to listen).
HostlessCommands = Callable[[CommandParsers, argparse.ArgumentParser], None]


def build_parser(hostless_commands: Sequence[HostlessCommands] = ()) -> argparse.ArgumentParser:
    common = _global_options(with_host=True)
    parser = argparse.ArgumentParser(
        prog="styx",
        parents=[common],
        description="Styx CLI: workflows, instances, backfills and resources of a Styx API.",
        epilog="Run `styx COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    instances.register(commands, common)
    logs.register(commands, common)
    backfills.register(commands, common)
    resources.register(commands, common)
    workflows.register(commands, common)
    auth.register(commands, common)
    version = commands.add_parser("version", parents=[common], help="print the CLI's version")
    version.set_defaults(handler=lambda args, ctx: ctx.output.message(VERSION_TEXT))
    for register in hostless_commands:
        register(commands, _global_options(with_host=False))
    return parser


def main(argv: list[str] | None = None, hostless_commands: Sequence[HostlessCommands] = ()) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser(hostless_commands)
    if not arguments:
        parser.print_help()
        return ExitStatus.SUCCESS
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_request:  # --help, --version (0) and argument errors (2)
        return exit_request.code if isinstance(exit_request.code, int) else ExitStatus.ARGUMENT_ERROR
    debug: bool = getattr(args, "debug", False)
    if debug:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    context = Context(args, make_output(json_mode=getattr(args, "json", False), plain=getattr(args, "plain", False)))
    try:
        args.handler(args, context)
    except CliError as error:
        if debug:
            traceback.print_exc()
        if error.message:
            print(error.message, file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as error:  # noqa: BLE001 - a bug, or an answer this client does not understand
        if debug:
            traceback.print_exc()
        else:
            print(f"Unexpected error: {type(error).__name__}: {error} (--debug shows where)", file=sys.stderr)
        return ExitStatus.UNKNOWN_ERROR
    finally:
        context.close()
    return ExitStatus.SUCCESS
