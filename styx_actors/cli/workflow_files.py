"""Workflow files for `styx workflow create`: one or many YAML or JSON documents (`---` separated), each a
WorkflowConfiguration (reference §11.2).

Plain YAML scalars are read as text (only `null`/`~`/empty stay null), the way Styx's Jackson reader
coerces them: `id: 123`, `docker_args: [sleep, 10]` and `PORT: 8080` mean the strings, a date stays the
text that was written, and `yes` is not silently turned into `true`.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from styx_actors.cli.errors import InputError
from styx_actors.model import WorkflowConfiguration

STRUCTURE_ERROR = "Workflow configuration doesn't conform to the expected structure, problem: "
MINIMAL_EXAMPLE = """Minimal valid example:
========================
id: bar
schedule: DAYS
docker_image: busybox
docker_args: [echo, bar]
========================"""

_KEPT_RESOLVERS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"})


class _TextScalarLoader(yaml.SafeLoader):
    """SafeLoader without the implicit int/float/bool/timestamp resolvers."""


_TextScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag in _KEPT_RESOLVERS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def structure_error(problem: str) -> InputError:
    return InputError(f"{STRUCTURE_ERROR}{problem}\n{MINIMAL_EXAMPLE}")


def read_workflow_configurations(text: str) -> list[WorkflowConfiguration]:
    """Every document of `text` as a WorkflowConfiguration (empty documents are skipped).

    Raises InputError (exit status 6) when the text is not YAML/JSON or a document does not have the
    shape of a workflow configuration.
    """
    try:
        documents = list(yaml.load_all(text, Loader=_TextScalarLoader))
    except yaml.YAMLError as exc:
        raise structure_error(_yaml_problem(exc)) from None
    configurations = [
        _configuration(index, document) for index, document in enumerate(documents, 1) if document is not None
    ]
    if not configurations:
        raise structure_error("no workflow configuration found")
    return configurations


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's complaint and where: `expected ',' or ']', but got '<stream end>' (line 2, column 1)`."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        context = f"{error.context}: " if error.context else ""
        return f"{context}{error.problem}{where}"
    return " ".join(str(error).split())


def _configuration(index: int, document: Any) -> WorkflowConfiguration:
    if not isinstance(document, dict):
        raise structure_error(f"document {index} is a {type(document).__name__}, not a mapping of fields")
    try:
        return WorkflowConfiguration.model_validate(document)
    except ValidationError as exc:
        name = document.get("id")
        where = f"document {index}" + (f" ({name})" if isinstance(name, str) else "")
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'document'}: {error['msg']}" for error in exc.errors()
        )
        raise structure_error(f"{where}: {problems}") from None
