"""The JSON body reader (api/payloads.py): the language it accepts, its messages, linear time on pathological
megabyte bodies, and text that could not be stored refused where it is read."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.payloads import ENTITY_PAYLOAD, WORKFLOW_PAYLOAD, parse_json, parse_model
from styx_actors.errors import BadRequest
from styx_actors.model import WorkflowConfiguration

# What a 1 MB body may cost the event loop: the quadratic reader this replaces took ~9 s on `[1,1,1,…`.
# Measured in CPU time of this process, which other processes on a shared machine do not inflate.
PARSE_CPU_SECONDS = 1.0
MEGABYTE = 1_000_000


def reference_without_trailing_commas(text: str) -> str:
    """The tolerated language, spelled out character by character (quadratic; for short texts only)."""
    out: list[str] = []
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "," and text[index + 1 :].lstrip()[:1] in ("}", "]"):
            continue
        out.append(char)
    return "".join(out)


def outcome(body: bytes) -> tuple[str, Any]:
    try:
        return "parsed", parse_json(body, ENTITY_PAYLOAD)
    except BadRequest as exc:
        return "refused", exc.message


def reference_outcome(body: bytes) -> tuple[str, Any]:
    """Strict JSON first; failing that, JSON without its trailing commas; refused with the strict error."""
    if not body.strip():
        return "refused", "Missing payload"
    try:
        return "parsed", json.loads(body)
    except ValueError as exc:
        strict_error = exc
    try:
        return "parsed", json.loads(reference_without_trailing_commas(body.decode()))
    except ValueError:
        return "refused", f"Payload parsing failed: {strict_error}"


JSONISH = st.text(alphabet=list('"\\,}]{[ \n\t\xa0:1ax'), max_size=16)


@settings(max_examples=1500, deadline=None)
@given(JSONISH)
def test_the_reader_accepts_exactly_json_with_trailing_commas(text: str) -> None:
    body = text.encode()
    assert outcome(body) == reference_outcome(body)


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        # The contract's own Create Backfill example ends its object with a comma.
        (
            b'{"start": "2017-01-01T00:00:00Z", "workflow": "StyxCanary",\n}',
            {"start": "2017-01-01T00:00:00Z", "workflow": "StyxCanary"},
        ),
        (b'[1, [2, {"a": [3,],},], ]', [1, [2, {"a": [3]}]]),
        (b'{"text": "a,]", "quote": "\\",}",}', {"text": "a,]", "quote": '",}'}),
        (b'{"path": "c:\\\\", "n": 1,}', {"path": "c:\\", "n": 1}),
    ],
)
def test_trailing_commas_outside_strings_are_dropped(body: bytes, parsed: Any) -> None:
    assert parse_json(body, ENTITY_PAYLOAD) == parsed


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"   ", "Missing payload."),
        (
            b'{"id": "x",',
            "Invalid payload. Expecting property name enclosed in double quotes: line 1 column 12 (char 11)",
        ),
        # The strict parser's message, not the tolerant pass's: the text the client sent is what it names.
        (
            b'{"id": "x",} x',
            "Invalid payload. Expecting property name enclosed in double quotes: line 1 column 12 (char 11)",
        ),
        (b"[1,,]", "Invalid payload. Expecting value: line 1 column 4 (char 3)"),  # one comma is dropped, not two
        (b'{"n": NaN,}', "Invalid payload. NaN is not a JSON value"),
        (b'"unterminated,]', "Invalid payload. Unterminated string starting at: line 1 column 1 (char 0)"),
    ],
)
def test_refusals_keep_their_messages(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_json(body, WORKFLOW_PAYLOAD)
    assert refused.value.message == message


def _keys(count: int, trailing: str) -> bytes:
    return ("{" + ",".join(f'"k{i}":{i}' for i in range(count)) + trailing).encode()


PATHOLOGICAL = {
    "open array of ones": b"[" + b"1," * (MEGABYTE // 2),
    "array of ones, trailing comma": b"[" + b"1," * (MEGABYTE // 2) + b"]",
    "array of ones, no trailing comma": b"[" + b"1," * (MEGABYTE // 2) + b"1]",
    "commas and spaces": b"[" + b", " * (MEGABYTE // 2),
    "one long run of spaces": b"[1," + b" " * MEGABYTE,
    "deep arrays": b"[" * MEGABYTE,
    "deep arrays, closed": b"[" * (MEGABYTE // 2) + b"]" * (MEGABYTE // 2),
    "deep objects": b'{"a":' * (MEGABYTE // 5),
    "escaped quotes, unterminated": b'"' + b'\\"' * (MEGABYTE // 2),
    "escaped quotes in strings, trailing comma": b"[" + b'"\\"",' * (MEGABYTE // 5) + b"]",
    "escaped backslashes": b'["' + b"\\\\" * (MEGABYTE // 2) + b'",]',
    "quote runs": b'"' * MEGABYTE,
    "many short strings": b"[" + b'"a",' * (MEGABYTE // 4),
    "many keys, trailing comma": _keys(MEGABYTE // 12, ",}"),
    "many keys": _keys(MEGABYTE // 12, "}"),
    "surrogate pairs": b"[" + b'"\\ud83d\\ude00",' * (MEGABYTE // 16) + b"]",
    "many numbers and one lone surrogate": b'["\\ud800",' + b"1," * (MEGABYTE // 2) + b"1]",
}


@pytest.mark.parametrize("body", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_megabyte_pathological_bodies_are_read_in_linear_time(body: bytes) -> None:
    started = time.process_time()
    result, _ = outcome(body)
    elapsed = time.process_time() - started
    assert result in ("parsed", "refused")
    assert elapsed < PARSE_CPU_SECONDS, f"{elapsed:.2f}s of CPU"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"env": {"A": "\\ud800"}}', "env.A: "),
        (b'{"env": {"x\\udfffy": "v"}}', "env: a key is "),
        (b'{"docker_args": ["ok", "\\udbff"]}', "docker_args.1: "),
        (b'"\\ud800"', ""),
        # A surrogate written in UTF-8 bytes instead of an escape reads the same way.
        (b'{"description": "\xed\xa0\x80"}', "description: "),
        (b'[{"a": "\\ude00\\ud83d"}]', "0.a: "),  # a pair in the wrong order is two lone halves
    ],
)
def test_unpaired_surrogates_are_refused_naming_where(body: bytes, where: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_json(body, WORKFLOW_PAYLOAD)
    assert refused.value.message.startswith(f"Invalid payload. {where}")
    assert refused.value.message.endswith("not valid Unicode text (an unpaired surrogate)")
    refused.value.message.encode()  # the answer itself can be sent


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'["\\ud83d\\ude00"]', ["\U0001f600"]),  # a pair is one character
        (b'["\\\\ud800"]', ["\\ud800"]),  # an escaped backslash, not an escape
        (b'["\xf0\x9f\x98\x80"]', ["\U0001f600"]),
    ],
)
def test_paired_surrogates_and_lookalikes_are_text(body: bytes, parsed: Any) -> None:
    assert parse_json(body, ENTITY_PAYLOAD) == parsed


def test_a_payload_with_many_wrong_items_is_answered_with_the_first_few() -> None:
    data = {"id": "w", "schedule": "hours", "docker_args": list(range(1000))}
    with pytest.raises(BadRequest) as refused:
        parse_model(data, WorkflowConfiguration, WORKFLOW_PAYLOAD)
    message = refused.value.message
    assert message.startswith("Invalid payload. docker_args.0: Input should be a valid string; docker_args.1: ")
    assert message.count("Input should be a valid string") == 10
    assert message.endswith("; and 990 more errors")
