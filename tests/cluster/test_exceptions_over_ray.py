"""Every exception class of the project through a real Ray actor, both ways an error comes back from the
actors: raised by a remote method (`RayPort` calls), and as one outcome of a batch of calls answered by
`run_batch` (`ActorHost.call_batch`). The examples are those of tests/unit/test_exception_pickling.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from ray.exceptions import RayTaskError

from cluster.remote_errors import raised_by_remote_method
from styx_actors.actors.batching import Call, CallBatcher, Outcome, run_batch
from tests.unit.test_exception_pickling import EXAMPLES, assert_same_error, example_id


@ray.remote(num_cpus=0)
class ErrorRaiser:
    """Raises the error it is given, from a method call or from each call of a batch."""

    async def raise_error(self, error: BaseException) -> None:
        raise error

    async def call_batch(self, calls: list[Call]) -> list[Outcome]:
        return await run_batch(self, calls)


@pytest.fixture(scope="module")
def raiser(ray_runtime: None) -> Iterator[Any]:
    actor = ErrorRaiser.remote()  # type: ignore[attr-defined]
    yield actor
    ray.kill(actor)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
async def test_an_error_raised_by_an_actor_method_is_caught_as_its_class_and_unwraps_intact(
    raiser: Any, example: BaseException
) -> None:
    with pytest.raises(type(example)) as raised:  # as `except IllegalTransition` in Commands.send catches it
        await raiser.raise_error.remote(example)
    # Ray's wrapper: its str() is the remote traceback, Styx's message is the cause's (cluster/remote_errors.py).
    assert isinstance(raised.value, RayTaskError)
    assert_same_error(raised_by_remote_method(raised.value), example)


async def test_errors_answered_as_batched_outcomes_reach_each_caller_intact(raiser: Any) -> None:
    batcher = CallBatcher(lambda calls: raiser.call_batch.remote(calls))
    outcomes = await asyncio.gather(
        *(batcher.call("raise_error", (example,)) for example in EXAMPLES), return_exceptions=True
    )
    for outcome, example in zip(outcomes, EXAMPLES, strict=True):
        assert isinstance(outcome, BaseException), example_id(example)
        assert_same_error(outcome, example)
