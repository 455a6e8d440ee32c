"""Which node's runner starts an execution (styx_actors/actors/runner_choice.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from styx_actors.actors.runner_choice import RunnerLoad, choose_runner, holder


def test_the_own_nodes_runner_while_it_has_room() -> None:
    loads = [RunnerLoad("runner-a", capacity=2, running=1), RunnerLoad("runner-b", capacity=2, running=0)]
    assert choose_runner(loads, own_role="runner-a") == "runner-a"


def test_a_full_own_node_hands_over_to_the_least_loaded_runner_with_room() -> None:
    loads = [
        RunnerLoad("runner-a", capacity=1, running=1),
        RunnerLoad("runner-b", capacity=4, running=3),
        RunnerLoad("runner-c", capacity=4, running=1),
    ]
    assert choose_runner(loads, own_role="runner-a") == "runner-c"


def test_least_loaded_is_by_share_of_capacity_so_nodes_of_different_sizes_fill_evenly() -> None:
    loads = [RunnerLoad("runner-small", capacity=2, running=1), RunnerLoad("runner-big", capacity=8, running=2)]
    assert choose_runner(loads, own_role=None) == "runner-big"  # 25 % in use beats 50 %, though it runs more


def test_ties_go_to_fewer_running_then_to_the_role() -> None:
    unlimited = [RunnerLoad("runner-b", capacity=0, running=5), RunnerLoad("runner-a", capacity=0, running=5)]
    assert choose_runner(unlimited, own_role=None) == "runner-a"
    assert choose_runner([*unlimited, RunnerLoad("runner-c", capacity=0, running=1)], own_role=None) == "runner-c"


def test_capacity_zero_means_no_limit() -> None:
    assert choose_runner([RunnerLoad("runner-a", capacity=0, running=1000)], own_role="runner-a") == "runner-a"


def test_no_runner_when_every_one_is_full() -> None:
    loads = [RunnerLoad("runner-a", capacity=1, running=1), RunnerLoad("runner-b", capacity=2, running=2)]
    assert choose_runner(loads, own_role="runner-a") is None
    assert choose_runner([], own_role="runner-a") is None


def test_the_runner_holding_the_execution_wins_even_when_full() -> None:
    loads = [RunnerLoad("runner-a", capacity=1, running=0), RunnerLoad("runner-b", capacity=1, running=1, holds=True)]
    assert choose_runner(loads, own_role="runner-a") == "runner-b"


def test_the_runner_running_it_holds_it_before_others_that_only_see_its_container() -> None:
    # Nodes sharing one Docker Engine all see the container; the runner that started it counts it.
    loads = [
        RunnerLoad("runner-a", capacity=1, running=0, holds=True),
        RunnerLoad("runner-b", capacity=1, running=1, holds=True, runs=True),
        RunnerLoad("runner-c", capacity=1, running=0),
    ]
    assert holder(loads) == "runner-b"
    assert choose_runner(loads, own_role="runner-c") == "runner-b"
    assert holder(loads[:1] + loads[2:]) == "runner-a"
    assert holder(loads[2:]) is None


def test_while_a_runner_is_silent_only_a_holder_among_the_others_gets_the_execution() -> None:
    # The silent runner may hold it (a start before this shard restarted): starting elsewhere could run it twice.
    with_room = [RunnerLoad("runner-a", capacity=2, running=0)]
    assert choose_runner(with_room, own_role="runner-a", all_answered=False) is None
    held = [*with_room, RunnerLoad("runner-b", capacity=1, running=1, holds=True, runs=True)]
    assert choose_runner(held, own_role="runner-a", all_answered=False) == "runner-b"


def test_an_own_role_without_a_runner_is_ignored() -> None:
    # A shard whose node's runner has not reported (restarting, unreachable) still places its execution.
    assert choose_runner([RunnerLoad("runner-b", capacity=1, running=0)], own_role="runner-a") == "runner-b"


loads_strategy = st.lists(
    st.builds(
        RunnerLoad,
        role=st.sampled_from([f"runner-{c}" for c in "abcdef"]),
        capacity=st.integers(0, 4),
        running=st.integers(0, 6),
        holds=st.booleans(),
        runs=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda load: load.role,
)


@given(loads_strategy, st.sampled_from([None, "runner-a", "runner-z"]))
def test_a_chosen_runner_has_room_or_holds_the_execution_and_none_only_when_all_are_full(
    loads: list[RunnerLoad], own_role: str | None
) -> None:
    chosen = choose_runner(loads, own_role)
    by_role = {load.role: load for load in loads}
    if chosen is None:
        assert not any(load.has_room or load.holds or load.runs for load in loads)
    else:
        assert by_role[chosen].has_room or by_role[chosen].holds or by_role[chosen].runs
        if any(load.runs for load in loads):
            assert by_role[chosen].runs
        elif not any(load.holds for load in loads):
            in_use = [load.utilisation for load in loads if load.has_room]
            assert chosen == own_role or by_role[chosen].utilisation == min(in_use)
