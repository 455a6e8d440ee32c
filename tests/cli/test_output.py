"""Pretty output on terminals of different widths (in-process, with a recording console)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from styx_actors.cli.output import BACKFILL_COLUMNS, PrettyOutput
from styx_actors.cli.views import PartitionCounts

BACKFILL: dict[str, Any] = {
    "id": "backfill-1717236001000-04242",
    "start": "2024-01-01T00:00:00Z",
    "end": "2024-01-02T00:00:00Z",
    "workflow_id": {"component_id": "demo", "id": "hourly-report"},
    "concurrency": 2,
    "description": "the first day of the year, hour by hour",
    "next_trigger": "2024-01-01T05:00:00Z",
    "schedule": "hours",
    "all_triggered": False,
    "halted": False,
    "reverse": False,
    "trigger_parameters": {"env": {"B": "2", "A": "1"}},
    "created": "2024-06-01T10:00:01.123Z",
    "last_modified": None,
}


def _render(width: int, no_trunc: bool = False) -> list[str]:
    console = Console(width=width, record=True, highlight=False, markup=False, color_system=None)
    PrettyOutput(console).backfill(BACKFILL, no_trunc=no_trunc)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_backfill_is_a_table_row_where_it_fits() -> None:
    header, _, row = _render(width=300)
    assert [column for column in BACKFILL_COLUMNS if column in header] == list(BACKFILL_COLUMNS)
    for cell in (
        "backfill-1717236001000-04242",
        "2024-01-01T00",
        "2024-01-02T00",
        "2024-01-01T05",
        "hourly-report",
        "2024-06-01T10:00:01Z",
        "N/A",
        "the first day of the...",
        "A=1 B=2",
    ):
        assert cell in row


def test_a_backfill_is_a_labelled_block_on_a_narrow_terminal() -> None:
    lines = _render(width=100, no_trunc=True)
    assert [line.split(":")[0] for line in lines] == list(BACKFILL_COLUMNS)
    assert lines[0].split() == ["BACKFILL", "ID:", "backfill-1717236001000-04242"]
    assert lines[12].endswith("the first day of the year, hour by hour")


def test_the_first_frame_of_a_watched_backfill_knows_its_total() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=200, color_system=None, highlight=False)
    with PrettyOutput(console).backfill_progress("backfill-1", PartitionCounts(done=1, running=1, waiting=1)):
        first_frame = terminal.getvalue()  # drawn when the display opens, before any update
    assert "1 done 1 running 0 failed 1 waiting of 3" in " ".join(first_frame.split())
    assert "None" not in terminal.getvalue()
