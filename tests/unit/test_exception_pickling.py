"""Every exception class of the project survives pickling, the way errors travel between Ray actors and the
API: an error that cannot be rebuilt turns a refusal (e.g. the 400 of a retry of a RUNNING instance) into a
500. The classes are found by walking the packages, so a new class without an example here fails."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

from api.auth.gcp import GoogleApiError
from api.auth.policy_file import PolicyFileError
from api.errors import NotAcceptable, PayloadTooLarge
from api.security import Forbidden, Unauthorized
from styx_actors.actors.instance import NotActive
from styx_actors.actors.shard import AlreadyActive
from styx_actors.cli.errors import (
    ApiError,
    ArgumentError,
    AuthError,
    ClientError,
    CliError,
    InputError,
    UnknownError,
)
from styx_actors.docker_image import InvalidImageReference
from styx_actors.errors import BadRequest, CommandError, Conflict, NotFound, PicklableError, Unavailable
from styx_actors.events import EventParseError, RetryAfter
from styx_actors.model import RunState, State, WorkflowInstance
from styx_actors.retry_condition import RetryConditionSyntaxError, _EvaluationError
from styx_actors.runners.base import RunnerError
from styx_actors.schedule import InvalidOffset, InvalidSchedule, ParameterError, _NotAnInstant, _Unparsable
from styx_actors.state_machine import IllegalTransition
from styx_actors.store.base import StoreError
from styx_actors.store.marker import StoreLost
from styx_server.startup import ServiceError

PACKAGES = ("styx_actors", "api", "cluster", "styx_server")

RUNNING = RunState.fresh(WorkflowInstance.of("c", "w", "2016-04-04"), 1_460_000_000_000, counter=3).model_copy(
    update={"state": State.RUNNING}
)

# One instance of every exception class defined in the project, built as the code raising it builds it.
EXAMPLES: list[BaseException] = [
    NotActive("c#w#2016-04-04"),
    AlreadyActive("c#w#2016-04-04"),
    CliError(),
    UnknownError("Nothing deleted."),
    ArgumentError("invalid Styx API host: 'x' (expected e.g. http://127.0.0.1:8080)"),
    ClientError("could not connect to http://127.0.0.1:1 within 5 s"),
    ApiError(400, "workflow not found", "r-1"),
    AuthError(401, "Authorization token is invalid", "r-2", token_sent=False),
    InputError("wf.yaml: not a mapping"),
    InvalidImageReference("Busybox:", ["repository must be lower case", "tag is empty"]),
    CommandError("refused"),
    BadRequest("Invalid payload."),
    NotFound("workflow not found"),
    Conflict("these partitions are already active: 2016-04-04"),
    Unavailable("Store unavailable"),
    PicklableError("a base of the others"),
    EventParseError("unknown event type 'nope'"),
    RetryConditionSyntaxError("unexpected character '$'", 4),
    _EvaluationError("division by zero"),
    RunnerError("Docker Engine not reachable at unix:///var/run/docker.sock"),
    InvalidSchedule(),
    InvalidOffset("Text cannot be parsed to a Period"),
    ParameterError("2016-13", "Invalid value for MonthOfYear (valid values 1 - 12): 13"),
    _Unparsable(7),
    _NotAnInstant(": Invalid date 'February 30'"),
    ServiceError("Cannot listen on 127.0.0.1:8080"),
    IllegalTransition(RUNNING, RetryAfter(0)),
    StoreError("redis is down"),
    StoreLost("the installation marker is gone"),
    GoogleApiError(403, "GET https://iam.googleapis.com/...: permission denied"),
    PolicyFileError("policy.yaml: not a mapping"),
    PayloadTooLarge("Payload too large"),
    NotAcceptable("Not acceptable"),
    Unauthorized("Authorization token is invalid"),
    Forbidden("not authorized to use service account"),
]


def project_exception_classes() -> set[type[BaseException]]:
    """The BaseException subclasses defined (not just imported) in a module of the project's packages."""
    found: set[type[BaseException]] = set()
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            module.name
            for module in pkgutil.walk_packages(package.__path__, f"{package_name}.")
            if not module.name.endswith(".__main__")  # importing it runs the CLI
        ]
        for name in names:
            module = importlib.import_module(name)
            found.update(
                value
                for value in vars(module).values()
                if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name
            )
    return found


def example_id(example: BaseException) -> str:
    return type(example).__qualname__


def test_every_exception_class_has_an_example() -> None:
    classes = project_exception_classes()
    assert IllegalTransition in classes and GoogleApiError in classes  # the walk reaches every package
    example_classes = [type(example) for example in EXAMPLES]
    assert len(example_classes) == len(set(example_classes)), "one example per class"
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes - set(example_classes))
    assert not missing, f"exception classes without an example in EXAMPLES: {missing}"


def assert_same_error(copy: BaseException, original: BaseException) -> None:
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_an_exception_survives_pickling(example: BaseException) -> None:
    assert_same_error(pickle.loads(pickle.dumps(example)), example)


def test_an_illegal_transition_keeps_styx_message_and_attributes_through_pickling() -> None:
    copy = pickle.loads(pickle.dumps(IllegalTransition(RUNNING, RetryAfter(0))))
    assert str(copy) == "c#w#2016-04-04 received retryAfter while in RUNNING"
    assert (copy.instance, copy.event_name, copy.state) == (RUNNING.workflow_instance, "retryAfter", State.RUNNING)


def test_attributes_set_after_construction_survive_pickling() -> None:
    error = AuthError(401, "Authorization token is invalid", "r-3", token_sent=True)
    error.add_note("seen by the CLI")
    assert pickle.loads(pickle.dumps(error)).__notes__ == ["seen by the CLI"]
