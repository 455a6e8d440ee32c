"""What the CLI derives from API payloads: event lines, grouped active states, backfill progress."""

from __future__ import annotations

from typing import Any

from styx_actors.cli.views import EventInfo, PartitionCounts, group_states


def _state(component: str, workflow: str, parameter: str, state: str = "QUEUED") -> dict[str, Any]:
    instance = {"workflow_id": {"component_id": component, "id": workflow}, "parameter": parameter}
    return {"workflow_instance": instance, "state": state, "state_data": {}}


def test_events_show_styx_info_strings() -> None:
    trigger = {
        "@type": "triggerExecution",
        "workflow_instance": "c/w/p",
        "trigger": {"@type": "natural"},
        "parameters": {"env": {"B": "2", "A": "1"}},
    }
    assert EventInfo.of({"event": trigger, "timestamp": 1000}) == EventInfo(
        1000, "triggerExecution", 'Trigger id: natural-trigger, Parameters: {"env":{"A":"1","B":"2"}}'
    )
    assert (
        EventInfo.of({"event": {"@type": "terminate", "workflow_instance": "c/w/p"}, "timestamp": 2}).info
        == "Exit code: -"
    )
    assert (
        EventInfo.of({"event": {"@type": "retryAfter", "delay_millis": 180999}, "timestamp": 3}).info
        == "Delay (seconds): 180"
    )
    assert EventInfo.of({"event": {"@type": "success"}, "timestamp": 4}).to_json() == {
        "timestamp": 4,
        "name": "success",
        "info": "",
    }


def test_events_of_unknown_types_keep_their_name() -> None:
    assert EventInfo.of({"event": {"@type": "somethingNew", "x": 1}, "timestamp": 5}) == EventInfo(
        5, "somethingNew", ""
    )


def test_active_states_are_grouped_by_workflow_key_and_sorted_by_parameter() -> None:
    groups = group_states([_state("b", "w", "2"), _state("a", "z", "1"), _state("b", "w", "1"), _state("a", "y", "9")])
    assert list(groups) == ["a#y", "a#z", "b#w"]
    assert [entry["workflow_instance"]["parameter"] for entry in groups["b#w"]] == ["1", "2"]
    assert group_states([]) == {}


def test_partition_counts_and_when_a_backfill_is_finished() -> None:
    names = ["DONE", "ERROR", "UNKNOWN", "WAITING", "QUEUED", "RUNNING", "FAILED", "TERMINATED", "DONE"]
    counts = PartitionCounts.of([{"state": name} for name in names])
    assert (counts.done, counts.failed, counts.waiting, counts.running, counts.total) == (2, 2, 1, 4, 9)
    assert not counts.finished
    assert PartitionCounts.of([{"state": "DONE"}, {"state": "ERROR"}]).finished
    assert not PartitionCounts.of([{"state": "DONE"}, {"state": "WAITING"}]).finished
