"""Fixtures for the resilience tests: the API apps of tests/api over a real store, and the process's RSS."""

from __future__ import annotations

import os

import pytest

from tests.api.conftest import api, start_api, store  # noqa: F401 - fixtures shared with the API tests


@pytest.fixture
def system() -> str:
    """These faults are injected into the in-process system (its clock, its store connection, its load);
    the same faults on Ray are in tests/cluster and tests/e2e."""
    return "local"


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process right now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES
