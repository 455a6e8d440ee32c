"""Workflow files for `styx workflow create`: one or many YAML or JSON documents (`---` separated), each a
WorkflowConfiguration (docs/cli.md#workflows).

Plain YAML scalars are read as text (only `null`/`~`/empty stay null), the way Styx's Jackson reader
coerces them: `id: 123`, `docker_args: [sleep, 10]` and `PORT: 8080` mean the strings, a date stays the
text that was written, and `yes` is not silently turned into `true`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
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
KNOWN_KEYS = frozenset(
    name
    for field_name, field in WorkflowConfiguration.model_fields.items()
    for name in (field_name, field.alias)
    if name is not None
)


@dataclass(frozen=True)
class WorkflowDocument:
    """One workflow of a file, and the keys it has that no workflow field has. Those are ignored, as Styx
    ignores them, but they are most often typos (`docker_arg:`), so the CLI warns about them."""

    configuration: WorkflowConfiguration
    unknown_keys: list[str]

    def unknown_key_warnings(self) -> list[str]:
        warnings = []
        for key in self.unknown_keys:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"workflow {self.configuration.id}: unknown key {key!r} is ignored{hint}")
        return warnings


class _TextScalarLoader(yaml.SafeLoader):
    """SafeLoader without the implicit int/float/bool/timestamp resolvers."""


_TextScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag in _KEPT_RESOLVERS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def structure_error(problem: str) -> InputError:
    return InputError(f"{STRUCTURE_ERROR}{problem}\n{MINIMAL_EXAMPLE}")


def read_workflow_documents(text: str) -> list[WorkflowDocument]:
    """Every document of `text` as a WorkflowConfiguration with its unknown keys (empty documents are
    skipped).

    Raises InputError (exit status 6) when the text is not YAML/JSON or a document does not have the
    shape of a workflow configuration.
    """
    try:
        documents = list(yaml.load_all(text, Loader=_TextScalarLoader))
    except yaml.YAMLError as exc:
        raise structure_error(_yaml_problem(exc)) from None
    workflows = [
        WorkflowDocument(_configuration(index, document), [str(key) for key in document if key not in KNOWN_KEYS])
        for index, document in enumerate(documents, 1)
        if document is not None
    ]
    if not workflows:
        raise structure_error("no workflow configuration found")
    return workflows


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
