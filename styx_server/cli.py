"""The `styx` script: the API client's commands (styx_actors/cli) plus `styx serve`, which runs the service."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from styx_actors import cli
from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import ArgumentError, UnknownError

# Flag name -> Settings field; a flag that is not given leaves the field to STYX_* variables and defaults.
SERVE_FLAGS = {
    "listen_host": "host",
    "port": "port",
    "store": "store",
    "runner": "runner",
    "ray_address": "ray_address",
    "auth": "auth",
    "api_only": "api_only",
    "debug": "debug",  # the global --debug: for `serve`, Ray's own log lines too
}


def register_serve(commands: CommandParsers, without_host: argparse.ArgumentParser) -> None:
    # `serve --host` is the address to listen on, so serve takes the global options without -H/--host.
    serve = commands.add_parser(
        "serve",
        parents=[without_host],
        help="run the Styx API service",
        description="Run the Styx v3 API over the actor system on Ray. Every flag can also be set with the "
        "STYX_* environment variable named after it (STYX_HOST, STYX_PORT, ...); flags win. --debug also shows "
        "Ray's own log lines (STYX_DEBUG).",
    )
    serve.add_argument("--host", dest="listen_host", metavar="ADDRESS", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--store", metavar="URL", help="sqlite:///PATH or redis://HOST:PORT/DB (default: SQLite under STYX_DATA_DIR)"
    )
    serve.add_argument("--runner", choices=["docker", "noop"], help="what runs instances (default docker)")
    serve.add_argument("--ray-address", metavar="ADDRESS", help="Ray cluster to join (default: start a local one)")
    serve.add_argument(
        "--api-only",
        action="store_true",
        default=None,
        help="serve the API over the actors another `styx serve` started on the same Ray cluster",
    )
    serve.add_argument(
        "--auth",
        choices=["google", "none", "auto"],
        help="Google ID tokens, none, or auto: none on a loopback address, google elsewhere (default auto)",
    )
    serve.set_defaults(handler=serve_api)


def service_settings(args: argparse.Namespace) -> Any:
    """Settings from STYX_* variables, overridden by the flags given."""
    from pydantic import ValidationError

    from styx_actors.settings import Settings

    given: dict[str, Any] = {flag: getattr(args, flag, None) for flag in SERVE_FLAGS}  # absent unless given
    overrides = {field: given[flag] for flag, field in SERVE_FLAGS.items() if given[flag] is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        raise ArgumentError(f"invalid service settings (flags or STYX_* variables): {problems}") from None


def serve_api(args: argparse.Namespace, ctx: Context) -> None:
    settings = service_settings(args)
    from styx_server.service import (  # the service's dependencies load only here
        ServiceError,
        run_service,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_service(settings)
    except ServiceError as exc:
        raise UnknownError(f"styx serve: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(hostless_commands=[register_serve])


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, hostless_commands=[register_serve])


if __name__ == "__main__":
    sys.exit(main())
