"""What a command runs with: its parsed arguments, the chosen output, and the API client (made on first
use, so `styx version` and `styx serve` never need a host)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TypeAlias

from styx_actors.cli.client import StyxClient, resolve_host
from styx_actors.cli.output import Output

# What each command module registers its commands with.
CommandParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@dataclass
class Context:
    args: argparse.Namespace
    output: Output
    _client: StyxClient | None = field(default=None, init=False)

    @property
    def client(self) -> StyxClient:
        if self._client is None:
            self._client = StyxClient(resolve_host(getattr(self.args, "host", None)))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
