"""Periodic loops in Styx's style: fixed delay with jitter, failures logged and survived."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)


async def every(interval: timedelta, action: Callable[[], object], rng: random.Random, jitter: bool = True) -> None:
    """Run `action` forever, each run `interval × U[0.5, 1.5)` (or exactly `interval`) after the last ended."""
    seconds = interval.total_seconds()
    while True:
        await asyncio.sleep(seconds * (0.5 + rng.random()) if jitter else seconds)
        try:
            result = action()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("periodic %s failed", getattr(action, "__qualname__", action))
