"""The broker actor's recovery on a real event loop: held acquire calls, asked hosts, the report timeout and its
log lines (the logic itself: tests/unit/test_resources.py; on Ray with a SIGKILL:
tests/cluster/test_broker_restart.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from styx_actors.actors.broker_host import BrokerHost
from styx_actors.actors.resources import Granted, Waiting
from tests.conftest import wait_until


class Host:
    """A host of instances as the broker sees it: asked to report, it reports its holders once let to."""

    def __init__(self, broker: BrokerHost, name: str, holders: dict[str, list[str]]) -> None:
        self.broker = broker
        self.name = name
        self.holders = holders
        self.may_report = asyncio.Event()
        self.may_report.set()

    async def report_holders(self) -> None:
        await self.may_report.wait()
        self.broker.restore_holders(self.name, self.holders)


def broker_host(report_timeout: timedelta = timedelta(seconds=30)) -> BrokerHost:
    broker = BrokerHost(on_granted=lambda holder, ids: None, report_timeout=report_timeout)
    broker.set_limit("a", 2)
    return broker


async def test_an_acquire_call_is_held_until_every_host_has_reported() -> None:
    broker = broker_host()
    first, second = Host(broker, "shard-0", {}), Host(broker, "shard-1", {"c#w#1": ["a"], "c#w#2": ["a"]})
    second.may_report.clear()
    broker.recover({"shard-0": first, "shard-1": second})
    held = asyncio.create_task(broker.acquire("c#w#3", "c#w", "3", ["a"]))
    await wait_until(lambda: broker.awaited_hosts() == ("shard-1",), timeout=5, message="shard-0's report")
    assert not held.done()
    second.may_report.set()
    assert await asyncio.wait_for(held, 5) == Waiting(("a",))  # shard-1's holders took both permits
    assert broker.usage() == {"a": (2, 2)}


async def test_only_a_report_counts_not_an_answer(caplog: pytest.LogCaptureFixture) -> None:
    """A port answers for a dedicated instance's actor that does not exist, whether it ended or a starting
    service has not created it yet (it then reports on its own): the broker waits for it until the deadline."""
    broker = broker_host(report_timeout=timedelta(milliseconds=200))

    class Absent:
        async def report_holders(self) -> None:
            return None

    with caplog.at_level(logging.WARNING, logger="styx_actors.actors.broker_host"):
        broker.recover({"instance-0": Absent()})
        held = asyncio.create_task(broker.acquire("c#w#1", "c#w", "1", ["a"]))
        await wait_until(lambda: "no report of the permits held on instance-0" in caplog.text, timeout=5)
    assert await asyncio.wait_for(held, 5) == Granted(("a",))


async def test_a_silent_host_is_named_and_its_late_report_still_counts(caplog: pytest.LogCaptureFixture) -> None:
    broker = broker_host(report_timeout=timedelta(milliseconds=200))
    silent = Host(broker, "shard-1", {"c#w#1": ["a"], "c#w#2": ["a"]})
    silent.may_report.clear()
    with caplog.at_level(logging.INFO, logger="styx_actors.actors.broker_host"):
        broker.recover({"shard-0": Host(broker, "shard-0", {}), "shard-1": silent})
        held = [asyncio.create_task(broker.acquire(f"c#w#{p}", "c#w", p, ["a"])) for p in ("3", "4")]
        assert await asyncio.wait_for(asyncio.gather(*held), 5) == [Granted(("a",)), Granted(("a",))]
        assert "no report of the permits held on shard-1 within 0.2 s" in caplog.text
        silent.may_report.set()
        await wait_until(lambda: broker.usage() == {"a": (4, 2)}, timeout=5, message="the late report")
    assert "resource a has 4 holders, over its limit of 2, after shard-1 reported" in caplog.text
    assert await broker.acquire("c#w#5", "c#w", "5", ["a"]) == Waiting(("a",))


async def test_a_host_that_fails_to_report_is_logged_and_waited_for_until_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = broker_host(report_timeout=timedelta(milliseconds=200))

    class Failing:
        async def report_holders(self) -> None:
            raise ConnectionError("shard restarting")

    with caplog.at_level(logging.WARNING, logger="styx_actors.actors.broker_host"):
        broker.recover({"shard-0": Failing()})
        assert await asyncio.wait_for(broker.acquire("c#w#1", "c#w", "1", ["a"]), 5) == Granted(("a",))
    assert "asking shard-0 to report the permits its instances hold failed: ConnectionError" in caplog.text
    assert "no report of the permits held on shard-0" in caplog.text
