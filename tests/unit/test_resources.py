"""The resource broker: counters keyed by holder, all-or-nothing acquisition, fair queues (reference §6)."""

from __future__ import annotations

from styx_actors.actors.resources import (
    GLOBAL_RESOURCE_ID,
    Granted,
    Missing,
    ResourceBroker,
    Waiting,
    limit_reached_message,
    missing_resources_message,
)


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
    broker.restore("c#w#5", ["a", "gone"])
    assert broker.usage() == {"a": (1, 1)}


def test_cancel_forgets_a_waiter() -> None:
    broker, grants = broker_with(a=1)
    broker.acquire("c#w#1", "c#w", "1", ["a"])
    broker.acquire("c#w#2", "c#w", "2", ["a"])
    broker.cancel("c#w#2")
    broker.release("c#w#1")
    assert grants == [] and broker.waiting_count() == 0
