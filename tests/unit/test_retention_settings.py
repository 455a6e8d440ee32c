"""STYX_EVENT_RETENTION and STYX_OUTPUT_RETENTION: durations as every other, 0 for forever, never negative."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from styx_actors.settings import Settings


@pytest.mark.parametrize("name", ["event", "output"])
@pytest.mark.parametrize(
    ("text", "retention"), [("P7D", timedelta(days=7)), ("345600", timedelta(days=4)), ("0", timedelta(0))]
)
def test_a_retention_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, retention: timedelta
) -> None:
    monkeypatch.setenv(f"STYX_{name.upper()}_RETENTION", text)
    assert getattr(Settings(), f"{name}_retention") == retention


def test_the_event_retention_is_30_days_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STYX_EVENT_RETENTION", raising=False)
    assert Settings().event_retention == timedelta(days=30)


@pytest.mark.parametrize("name", ["event", "output"])
def test_a_negative_retention_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(f"STYX_{name.upper()}_RETENTION", "-PT1S")
    with pytest.raises(ValidationError, match=rf"the {name} retention cannot be negative \(0: kept forever\)"):
        Settings()


@pytest.mark.parametrize(
    ("environment", "refused"),
    [
        ({"STYX_EVENT_RETENTION": "P2D"}, True),  # the default stale-state TTL is 2 days
        ({"STYX_EVENT_RETENTION": "P3D"}, False),
        ({"STYX_STALE_STATE_TTLS": '{"default": "P40D"}'}, True),  # the 30 days' default is too short then
        ({"STYX_STALE_STATE_TTLS": '{"default": "P40D"}', "STYX_EVENT_RETENTION": "0"}, False),
        ({"STYX_MAX_RUNNING_TIMEOUT": "P31D"}, True),
    ],
)
def test_the_event_retention_must_outlast_every_state_timeout(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], refused: bool
) -> None:
    """A finished run's timeout timers stay armed until their deadline with its counters, which a re-trigger
    numbers again once the history is gone: the history must outlive them."""
    monkeypatch.delenv("STYX_EVENT_RETENTION", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if refused:
        with pytest.raises(ValidationError, match="must be longer than the longest state timeout"):
            Settings()
    else:
        Settings()
