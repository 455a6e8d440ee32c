"""Command-line values with their own syntax: `-e KEY=VALUE` environment entries and the START/END
partitions of `backfill create` (docs/cli.md#backfills)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime

from styx_actors.cli.errors import UnknownError
from styx_actors.timeutil import UTC, format_instant

_DATEHOUR = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def env_vars(entries: list[str] | None) -> dict[str, str]:
    """`-e K=V` entries as a map. The value is everything after the first `=` (so values may contain
    `=`); an entry without `=` or with an empty key is refused (exit status 1, as in Styx)."""
    env: dict[str, str] = {}
    for entry in entries or []:
        key, separator, value = entry.partition("=")
        if not separator or not key:
            raise UnknownError(f"Invalid environment variable {entry!r}: expected KEY=VALUE")
        env[key] = value
    return env


def add_env_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-e", "--env", action="append", metavar="KEY=VALUE", help=f"environment variable of the {what} (repeatable)"
    )


def partition_instant(name: str) -> Callable[[str], str]:
    """An argparse type for a partition given as `yyyy-MM-ddTHH` or `yyyy-MM-dd` (UTC); the value becomes
    the ISO instant the API takes."""

    def parse(text: str) -> str:
        try:
            return format_instant(_parse_datehour(text))
        except ValueError as datehour_error:
            try:
                return format_instant(_parse_date(text))
            except ValueError as date_error:
                raise argparse.ArgumentTypeError(
                    f"could not parse date/datehour for parameter '{name}'; "
                    f"if datehour: [{datehour_error}], if date: [{date_error}]"
                ) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _parse_datehour(text: str) -> datetime:
    match = _DATEHOUR.fullmatch(text)
    if match is None:
        raise ValueError(f"Text '{text}' does not match yyyy-MM-ddTHH")
    year, month, day, hour = (int(part) for part in match.groups())
    return datetime(year, month, day, hour, tzinfo=UTC)


def _parse_date(text: str) -> datetime:
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"Text '{text}' does not match yyyy-MM-dd")
    year, month, day = (int(part) for part in match.groups())
    return datetime(year, month, day, tzinfo=UTC)
