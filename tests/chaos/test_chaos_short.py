"""A short chaos run with a fixed seed against `styx serve` (Ray, its own Redis with AOF, Docker): every kind of
fault at least once while the mixed workload runs, then every invariant of the history checker holds.
The long runs and their figures: docs/reliability.md, "Chaos runs"."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos.history import FaultKind
from benchmarks.chaos.runner import ChaosOptions, run

pytestmark = [pytest.mark.docker, pytest.mark.redis]

SEED = 7
MINUTES = 2.0
FAULT_GAP = (8.0, 16.0)  # at least six faults in the 105 s window: each of the five kinds comes once


@pytest.mark.timeout(1800)  # service restarts take half a minute each on a loaded 2-core machine
def test_a_short_seeded_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    # Generous bounds: the check is about what happens, not how fast a busy CI machine gets there.
    options = ChaosOptions(
        seed=SEED,
        minutes=MINUTES,
        work_dir=tmp_path,
        convergence_timeout=600,
        readiness_bound=300,
        fault_gap=FAULT_GAP,
    )
    result = run(options)
    print(result.report)
    assert set(result.summary.faults) == {kind.value for kind in FaultKind}, result.report
    assert result.summary.commands_acknowledged.get("trigger", 0) > 10, result.report
    assert result.summary.containers > 20, result.report
    assert result.violations == 0, result.report
