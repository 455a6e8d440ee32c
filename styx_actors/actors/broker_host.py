"""The resource broker as an actor: `ResourceBroker` (pure logic) plus what takes an event loop.

A broker that (re)starts has empty counters while instances on every host may hold permits, so it recovers
first (styx_actors/actors/resources.py, docs/reliability.md): `recover` asks each host of instances to report
the holders it has in consuming states, and until every host has reported, or HOLDERS_REPORT_TIMEOUT has
passed, an `acquire` call is held, neither granted nor refused; then each held call gets the answer the broker
gives as if they had all come at that moment. A host that does not answer in time is named in a warning; should
its report come later, its holders count all the same, and a resource they push past its limit is named in a
warning too (it grants nothing until it is back under its limit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from styx_actors.actors.resources import AcquireResult, Deferred, HolderOwner, ResourceBroker

log = logging.getLogger(__name__)

# How long a recovering broker waits for a host's report. A host restarting at the same time (a node lost)
# reports once it has loaded its snapshots, in seconds; meanwhile no instance gets a permit.
HOLDERS_REPORT_TIMEOUT = timedelta(seconds=30)


class HolderReporter(Protocol):
    """A host of instances (an `InstanceShard`, or the port of one): it reports to the broker when asked."""

    async def report_holders(self) -> None: ...


class BrokerHost:
    """The object a broker actor serves: every method of its `ResourceBroker`, with `acquire` awaitable (held
    while recovering) and reports logged."""

    def __init__(
        self,
        on_granted: Callable[[str, tuple[str, ...]], None],
        report_timeout: timedelta = HOLDERS_REPORT_TIMEOUT,
    ) -> None:
        self.broker = ResourceBroker(on_granted, on_answered=self._answer)
        self._report_timeout = report_timeout
        self._held: dict[str, list[asyncio.Future[AcquireResult]]] = {}
        self._asking: set[asyncio.Task[None]] = set()

    def recover(self, hosts: Mapping[str, HolderReporter]) -> None:
        """Hold acquires until every host (by name) has reported its holders, and ask each one to: hosts that
        outlived the broker do not know it restarted."""
        self.expect_reports(hosts)
        for name, host in hosts.items():
            task = asyncio.get_running_loop().create_task(self._ask(name, host))
            self._asking.add(task)
            task.add_done_callback(self._asking.discard)

    def expect_reports(self, host_names: Iterable[str]) -> None:
        """Hold acquires until every named host has reported its holders (hosts starting with the broker
        report on their own), or until the report timeout."""
        loop = asyncio.get_running_loop()
        deadline_millis = _millis(loop) + int(self._report_timeout.total_seconds() * 1000)
        self.broker.begin_recovery(host_names, deadline_millis)
        awaited = self.broker.awaited_hosts()
        if awaited:
            log.info("resource broker recovering: acquires wait for the holders of %s", ", ".join(awaited))
            # The timer fires at the deadline by the loop's clock, which the deadline is counted in.
            loop.call_later(self._report_timeout.total_seconds(), lambda: self._expire(deadline_millis))

    async def acquire(self, holder: str, workflow_key: str, parameter: str, resource_ids: list[str]) -> AcquireResult:
        result = self.broker.acquire(holder, workflow_key, parameter, resource_ids)
        if not isinstance(result, Deferred):
            return result
        answer: asyncio.Future[AcquireResult] = asyncio.get_running_loop().create_future()
        self._held.setdefault(holder, []).append(answer)
        return await answer

    def restore_holders(
        self,
        host: str,
        holders: Mapping[str, Iterable[str]],
        owner: HolderOwner | None = None,
        active: Collection[str] = (),
    ) -> None:
        recovering = bool(self.broker.awaited_hosts())
        for resource_id, (count, limit) in self.broker.restore_holders(host, holders, owner, active).items():
            log.warning(
                "resource %s has %d holders, over its limit of %d, after %s reported the permits its instances "
                "hold (%s): they run already, and %s grants nothing more until its holders are below the limit",
                resource_id,
                count,
                limit,
                host,
                "a lowered limit" if recovering else "a report that came after the broker stopped waiting for it",
                resource_id,
            )
        if recovering and not self.broker.awaited_hosts():
            log.info("resource broker recovered: every host reported the permits its instances hold")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.broker, name)

    async def _ask(self, name: str, host: HolderReporter) -> None:
        """Only a report counts, not an answer: a port may answer for a host that is not there (yet), such as
        a dedicated instance's actor that a starting service has not created again."""
        try:
            await host.report_holders()
        except Exception as exc:  # noqa: BLE001 - its report may still come: it is waited for until the deadline
            log.warning("resource broker: asking %s to report the permits its instances hold failed: %r", name, exc)

    def _expire(self, now_millis: int) -> None:
        silent = self.broker.expire(now_millis)
        if silent:
            log.warning(
                "resource broker: no report of the permits held on %s within %g s; answering the waiting "
                "acquires without them (a later report still counts, and a resource it pushes past its limit "
                "is logged and grants nothing until back under it)",
                ", ".join(silent),
                self._report_timeout.total_seconds(),
            )

    def _answer(self, holder: str, result: AcquireResult) -> None:
        for answer in self._held.pop(holder, []):
            if not answer.done():  # its caller may have given up
                answer.set_result(result)


def _millis(loop: asyncio.AbstractEventLoop) -> int:
    return int(loop.time() * 1000)
