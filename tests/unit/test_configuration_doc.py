"""docs/configuration.md names every setting, so an operator can find each one."""

from __future__ import annotations

from pathlib import Path

from styx_actors.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    assert [name for name in Settings.model_fields if f"STYX_{name.upper()}" not in text] == []
