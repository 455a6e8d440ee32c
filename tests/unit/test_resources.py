"""The resource broker: counters keyed by holder, all-or-nothing acquisition, fair queues
(docs/semantics.md#resources-and-concurrency)."""

from __future__ import annotations

from datetime import datetime, timedelta

from styx_actors.actors.placement import Sharded
from styx_actors.actors.resources import (
    GLOBAL_RESOURCE_ID,
    AcquireResult,
    Deferred,
    Granted,
    Missing,
    ResourceBroker,
    Waiting,
    Withdrawn,
    limit_reached_message,
    missing_resources_message,
)
from styx_actors.clock import ManualClock, now_millis
from styx_actors.timeutil import UTC


def broker_with(**limits: int) -> tuple[ResourceBroker, list[tuple[str, tuple[str, ...]]]]:
    grants: list[tuple[str, tuple[str, ...]]] = []
    broker = ResourceBroker(on_granted=lambda holder, ids: grants.append((holder, ids)))
    for resource_id, limit in limits.items():
        broker.set_limit(resource_id, limit)
    return broker, grants


def test_acquire_is_all_or_nothing_and_idempotent() -> None:
    broker, _ = broker_with(a=1, b=2)
    assert broker.acquire("c#w#1", "c#w", "1", ["b", "a"]) == Granted(("a", "b"))
    assert broker.acquire("c#w#1", "c#w", "1", ["a", "b"]) == Granted(("a", "b"))  # same holder again
    assert broker.usage() == {"a": (1, 1), "b": (1, 2)}
    # a is full: the second holder gets nothing, not even b
    assert broker.acquire("c#w#2", "c#w", "2", ["a", "b"]) == Waiting(("a",))
    assert broker.usage() == {"a": (1, 1), "b": (1, 2)}


def test_release_wakes_the_next_waiter_once() -> None:
    broker, grants = broker_with(a=1)
    broker.acquire("c#w#1", "c#w", "1", ["a"])
    broker.acquire("c#w#2", "c#w", "2", ["a"])
    broker.release("c#w#1")
    broker.release("c#w#1")  # idempotent
    assert grants == [("c#w#2", ("a",))]
    assert broker.holders("a") == {"c#w#2"}
    assert broker.waiting_count() == 0


def test_older_parameters_first_within_a_workflow() -> None:
    broker, grants = broker_with(a=1)
    broker.acquire("c#w#0", "c#w", "0", ["a"])
    for parameter in ("2016-03-03", "2016-03-01", "2016-03-02"):
        broker.acquire(f"c#w#{parameter}", "c#w", parameter, ["a"])
    for holder in ("c#w#0", "c#w#2016-03-01", "c#w#2016-03-02"):
        broker.release(holder)
    assert [holder for holder, _ in grants] == ["c#w#2016-03-01", "c#w#2016-03-02", "c#w#2016-03-03"]


def test_a_newer_parameter_does_not_overtake_an_older_waiter() -> None:
    broker, _ = broker_with(a=2)
    broker.acquire("c#w#x", "c#w", "x", ["a"])
    broker.acquire("c#w#y", "c#w", "y", ["a"])
    broker.acquire("c#w#2", "c#w", "2", ["a"])  # waits
    broker.release("c#w#x")  # 2 gets the permit
    assert broker.acquire("c#w#3", "c#w", "3", ["a"]) == Waiting(("a",))
    assert broker.holders("a") == {"c#w#y", "c#w#2"}


def test_round_robin_across_workflows() -> None:
    broker, grants = broker_with(a=1)
    broker.acquire("x#0", "x", "0", ["a"])
    for parameter in ("1", "2", "3"):
        broker.acquire(f"p#{parameter}", "p", parameter, ["a"])
    for parameter in ("1", "2"):
        broker.acquire(f"q#{parameter}", "q", parameter, ["a"])
    holder = "x#0"
    order = []
    for _ in range(5):
        broker.release(holder)
        holder = grants[-1][0]
        order.append(holder)
    assert order == ["p#1", "q#1", "p#2", "q#2", "p#3"]


def test_lowered_limit_blocks_new_acquisitions_only() -> None:
    broker, grants = broker_with(a=3)
    for n in range(3):
        broker.acquire(f"c#w#{n}", "c#w", str(n), ["a"])
    broker.set_limit("a", 1)
    assert broker.usage()["a"] == (3, 1)  # running instances keep their permits
    assert isinstance(broker.acquire("c#w#9", "c#w", "9", ["a"]), Waiting)
    broker.release("c#w#0")
    broker.release("c#w#1")
    assert grants == []  # still 1 holder >= limit 1
    broker.release("c#w#2")
    assert grants == [("c#w#9", ("a",))]


def test_raised_limit_wakes_waiters() -> None:
    broker, grants = broker_with(a=0)
    assert broker.acquire("c#w#1", "c#w", "1", ["a"]) == Waiting(("a",))
    broker.set_limit("a", 1)
    assert grants == [("c#w#1", ("a",))]


def test_missing_resources_are_named() -> None:
    broker, _ = broker_with(a=1)
    assert broker.acquire("c#w#1", "c#w", "1", ["r3", "a", "r2"]) == Missing(("r2", "r3"))
    assert missing_resources_message(["r3", "r2"]) == "Referenced resources not found: [r2, r3]"
    assert limit_reached_message(["b", "a"]) == "Resource limit reached for: [a, b]"


def test_global_concurrency_applies_to_every_instance() -> None:
    broker, grants = broker_with()
    broker.set_global_concurrency(1)
    assert broker.acquire("c#w#1", "c#w", "1", []) == Granted((GLOBAL_RESOURCE_ID,))
    assert broker.acquire("d#v#1", "d#v", "1", []) == Waiting((GLOBAL_RESOURCE_ID,))
    broker.set_global_concurrency(None)
    assert broker.acquire("e#u#1", "e#u", "1", []) == Granted(())


def test_deleted_resource_releases_are_no_ops_and_restore_rebuilds_counters() -> None:
    broker, _ = broker_with(a=2)
    broker.acquire("c#w#1", "c#w", "1", ["a"])
    broker.remove("a")
    broker.release("c#w#1")  # no error
    broker.set_limit("a", 1)
    assert broker.restore_holders("shard-0", {"c#w#5": ["a", "gone"]}) == {}
    assert broker.usage() == {"a": (1, 1)}


def test_a_restarted_host_gets_back_the_permits_its_dead_incarnation_was_releasing() -> None:
    broker, grants = broker_with(a=2)
    keys = ["c#w#1", "c#w#2", "c#w#3", "c#w#4"]
    on_shard_0 = [key for key in keys if Sharded(0, 2).owns(key)]
    on_shard_1 = [key for key in keys if Sharded(1, 2).owns(key)]
    assert on_shard_0 and on_shard_1
    broker.acquire(on_shard_0[0], "c#w", "1", ["a"])
    broker.acquire(on_shard_1[0], "c#w", "2", ["a"])
    broker.acquire("c#w#9", "c#w", "9", ["a"])  # waits
    # Shard 0 died after its instance finished, before the release reached the broker; it reports nothing.
    broker.restore_holders("shard-0", {}, owner=Sharded(0, 2))
    assert broker.holders("a") == {on_shard_1[0], "c#w#9"}  # the waiter got the permit given back
    assert grants == [("c#w#9", ("a",))]
    # A report that is not from a restarted host (a broker asking) takes nothing away.
    broker.restore_holders("shard-1", {})
    assert broker.holders("a") == {on_shard_1[0], "c#w#9"}


def test_a_restarted_host_keeps_the_permits_of_instances_it_still_has() -> None:
    """The chaos run of seed 23 (docs/reliability.md): the broker granted a waiter of a shard that was restarting,
    and the shard's report, made before that grant, did not list it. Its permit must stay counted: the grant
    is on its way to the shard, which lets the instance run."""
    broker, grants = broker_with(a=1)
    keys = [key for key in (f"c#w#{n}" for n in range(20)) if Sharded(0, 2).owns(key)][:3]
    other, waiting, finished = keys
    broker.acquire(finished, "c#w", "0", ["a"])
    broker.acquire(waiting, "c#w", "1", ["a"])
    broker.release(finished)  # the waiter is granted while the shard restarts
    assert grants == [(waiting, ("a",))]
    broker.restore_holders("shard-0", {}, owner=Sharded(0, 2), active=[waiting, other])
    assert broker.holders("a") == {waiting}
    broker.acquire(other, "c#w", "2", ["a"])
    assert broker.holders("a") == {waiting}  # the limit holds: the other one waits
    assert broker.acquire(waiting, "c#w", "1", ["a"]) == Granted(("a",))  # asked again: granted at once


def test_cancel_forgets_a_waiter() -> None:
    broker, grants = broker_with(a=1)
    broker.acquire("c#w#1", "c#w", "1", ["a"])
    broker.acquire("c#w#2", "c#w", "2", ["a"])
    broker.cancel("c#w#2")
    broker.release("c#w#1")
    assert grants == [] and broker.waiting_count() == 0


# -- recovery after a restart: the counters are rebuilt from the hosts' reports before anything is granted ------

REPORT_TIMEOUT = timedelta(seconds=30)


class Recovering:
    """A broker restarted with resource `a` of limit 2, waiting for the reports of shard-0 and shard-1, on a
    manual clock; it records the answers to deferred acquires and the later grants."""

    def __init__(self, **limits: int) -> None:
        self.clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
        self.answers: list[tuple[str, AcquireResult]] = []
        self.grants: list[tuple[str, tuple[str, ...]]] = []
        self.broker = ResourceBroker(
            on_granted=lambda holder, ids: self.grants.append((holder, ids)),
            on_answered=lambda holder, result: self.answers.append((holder, result)),
        )
        for resource_id, limit in (limits or {"a": 2}).items():
            self.broker.set_limit(resource_id, limit)
        deadline = now_millis(self.clock) + int(REPORT_TIMEOUT.total_seconds() * 1000)
        self.broker.begin_recovery(["shard-0", "shard-1"], deadline)

    def expire(self) -> tuple[str, ...]:
        return self.broker.expire(now_millis(self.clock))


def test_an_acquire_while_recovering_is_neither_granted_nor_refused() -> None:
    recovering = Recovering()
    broker = recovering.broker
    assert broker.acquire("c#w#1", "c#w", "1", ["a"]) == Deferred()  # room, but the counter may be incomplete
    assert broker.acquire("c#w#2", "c#w", "2", ["nope"]) == Deferred()  # unknown resources are not refused yet
    assert broker.usage() == {"a": (0, 2)}
    assert broker.waiting_count() == 2
    broker.restore_holders("shard-0", {})
    assert broker.awaited_hosts() == ("shard-1",)
    assert recovering.answers == []  # one host has not reported
    broker.restore_holders("shard-1", {})
    assert broker.awaited_hosts() == ()
    assert recovering.answers == [("c#w#1", Granted(("a",))), ("c#w#2", Missing(("nope",)))]
    assert recovering.grants == []  # an answered acquire is not granted a second time


def test_after_every_report_the_limit_holds() -> None:
    """The fault of issue #17: limit 2, a holder on each shard, three waiters asking again before one shard
    reported. Granting against the empty counters let two of them run beside the holders."""
    recovering = Recovering()
    broker = recovering.broker
    for parameter in ("3", "4"):
        assert broker.acquire(f"c#w#{parameter}", "c#w", parameter, ["a"]) == Deferred()
    assert broker.restore_holders("shard-0", {"c#w#1": ["a"]}) == {}
    assert broker.acquire("c#w#5", "c#w", "5", ["a"]) == Deferred()
    assert broker.restore_holders("shard-1", {"c#w#2": ["a"]}) == {}
    assert broker.usage() == {"a": (2, 2)}
    assert recovering.answers == [(f"c#w#{p}", Waiting(("a",))) for p in ("3", "4", "5")]
    broker.release("c#w#1")
    broker.release("c#w#2")
    assert recovering.grants == [("c#w#3", ("a",)), ("c#w#4", ("a",))]
    assert broker.holders("a") == {"c#w#3", "c#w#4"}


def test_deferred_acquires_are_granted_in_the_queues_order() -> None:
    """Oldest parameter first within a workflow and round-robin across workflows, whatever the order of arrival."""
    recovering = Recovering(a=3)
    broker = recovering.broker
    for holder, workflow, parameter in (("p#3", "p", "3"), ("p#1", "p", "1"), ("q#1", "q", "1"), ("p#2", "p", "2")):
        broker.acquire(holder, workflow, parameter, ["a"])
    broker.restore_holders("shard-0", {})
    broker.restore_holders("shard-1", {"x#0": ["a"]})
    assert dict(recovering.answers) == {
        "p#3": Waiting(("a",)),
        "p#1": Granted(("a",)),
        "q#1": Granted(("a",)),
        "p#2": Waiting(("a",)),
    }
    assert [holder for holder, _ in recovering.answers] == ["p#3", "p#1", "q#1", "p#2"]  # one answer each
    broker.release("x#0")
    assert recovering.grants == [("p#2", ("a",))]


def test_a_release_while_recovering_frees_a_restored_permit_and_withdraws_a_deferred_acquire() -> None:
    recovering = Recovering(a=1)
    broker = recovering.broker
    broker.restore_holders("shard-0", {"c#w#1": ["a"]})
    broker.acquire("c#w#2", "c#w", "2", ["a"])
    broker.acquire("c#w#3", "c#w", "3", ["a"])
    broker.release("c#w#1")  # ended meanwhile
    broker.release("c#w#2")  # halted while its acquire was held
    assert recovering.answers == [("c#w#2", Withdrawn())]
    assert recovering.grants == []  # nothing is granted while recovering, even with room
    broker.restore_holders("shard-1", {})
    assert recovering.answers[1:] == [("c#w#3", Granted(("a",)))]
    assert broker.holders("a") == {"c#w#3"}


def test_a_host_that_never_answers_is_given_up_at_the_deadline() -> None:
    recovering = Recovering()
    broker = recovering.broker
    broker.acquire("c#w#3", "c#w", "3", ["a"])
    broker.restore_holders("shard-0", {"c#w#1": ["a"]})
    recovering.clock.advance(REPORT_TIMEOUT - timedelta(milliseconds=1))
    assert recovering.expire() == ()  # not yet
    assert recovering.answers == []
    recovering.clock.advance(timedelta(milliseconds=1))
    assert recovering.expire() == ("shard-1",)
    assert broker.awaited_hosts() == ()
    assert recovering.answers == [("c#w#3", Granted(("a",)))]  # with the holders known: shard-0's
    assert recovering.expire() == ()  # recovered: nothing more to give up


def test_a_late_report_counts_its_holders_and_says_which_limit_it_broke() -> None:
    recovering = Recovering()
    broker = recovering.broker
    for parameter in ("3", "4"):
        broker.acquire(f"c#w#{parameter}", "c#w", parameter, ["a"])
    broker.restore_holders("shard-0", {})
    recovering.clock.advance(REPORT_TIMEOUT)
    assert recovering.expire() == ("shard-1",)
    assert broker.holders("a") == {"c#w#3", "c#w#4"}
    # shard-1 answers at last: its two instances have run all along, so they count, past the limit
    assert broker.restore_holders("shard-1", {"c#w#1": ["a"], "c#w#2": ["a"]}) == {"a": (4, 2)}
    assert broker.restore_holders("shard-1", {"c#w#1": ["a"]}) == {}  # the same report again changes nothing
    assert broker.acquire("c#w#5", "c#w", "5", ["a"]) == Waiting(("a",))
    for holder in ("c#w#1", "c#w#2"):
        broker.release(holder)
        assert recovering.grants == []  # still at or over its limit
    broker.release("c#w#3")
    assert recovering.grants == [("c#w#5", ("a",))]


def test_a_lowered_limit_exceeded_by_the_restored_holders_is_reported() -> None:
    recovering = Recovering(a=1)
    assert recovering.broker.restore_holders("shard-0", {"c#w#1": ["a"], "c#w#2": ["a"]}) == {"a": (2, 1)}


def test_a_repeated_acquire_while_recovering_keeps_its_turn_and_asks_for_its_latest_resources() -> None:
    recovering = Recovering(a=1, b=1)
    broker = recovering.broker
    broker.acquire("c#w#1", "c#w", "1", ["a"])
    broker.acquire("c#w#2", "c#w", "2", ["a"])
    broker.acquire("c#w#1", "c#w", "1", ["b"])  # its workflow changed; a retried call would repeat it as is
    assert broker.waiting_count() == 2
    broker.restore_holders("shard-0", {})
    broker.restore_holders("shard-1", {})
    assert recovering.answers == [("c#w#1", Granted(("b",))), ("c#w#2", Granted(("a",)))]
