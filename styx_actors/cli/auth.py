"""`styx auth test`: may a principal run workflows as a service account? (docs/cli.md#authorization)

Asks the service's authorizer (POST /status/testServiceAccountUsageAuthorization) and prints its answer:
`The principal P is [not ]authorized to use the service account SA. <message>`; exit status 1 when not.
Both Styx's options (`-a SA -u PRINCIPAL`) and positional arguments (`SA PRINCIPAL`) are accepted.
"""

from __future__ import annotations

import argparse

from styx_actors.cli.context import CommandParsers, Context
from styx_actors.cli.errors import ArgumentError, UnknownError


def register(commands: CommandParsers, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("auth", parents=[common], help="authorization of service-account usage")
    auth = group.add_subparsers(title="auth commands", dest="subcommand", metavar="COMMAND", required=True)

    test = auth.add_parser(
        "test", parents=[common], help="test whether a principal may run workflows as a service account"
    )
    test.add_argument("service_account", metavar="SERVICE_ACCOUNT", nargs="?", help="the service account's email")
    test.add_argument("principal", metavar="PRINCIPAL", nargs="?", help="the user or service account using it")
    # Styx's CLI takes the two as options: scripts written for it keep working.
    test.add_argument("-a", "--service-account", dest="service_account_option", metavar="SERVICE_ACCOUNT")
    test.add_argument("-u", "--principal", dest="principal_option", metavar="PRINCIPAL")
    test.set_defaults(handler=check_service_account_usage)


def _given_once(positional: str | None, option: str | None, name: str, flag: str) -> str:
    if positional is None and option is not None:
        return option
    if positional is not None and option is None:
        return positional
    raise ArgumentError(f"give the {name} once: as an argument or with {flag}")


def check_service_account_usage(args: argparse.Namespace, ctx: Context) -> None:
    service_account = _given_once(args.service_account, args.service_account_option, "service account", "-a")
    principal = _given_once(args.principal, args.principal_option, "principal", "-u")
    answer = ctx.client.post(
        "/status/testServiceAccountUsageAuthorization", {"service_account": service_account, "principal": principal}
    )
    verdict = "is authorized" if answer["authorized"] else "is not authorized"
    text = f"The principal {principal} {verdict} to use the service account {service_account}."
    ctx.output.message(f"{text} {answer['message']}" if answer.get("message") else text)
    if not answer["authorized"]:
        raise UnknownError()  # Styx's exit status 1; the answer itself went to stdout
