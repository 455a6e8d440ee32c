"""NoopRunner: every execution "starts" and exits 0 at once, and nothing runs.

For scheduler benchmarks only (STYX_RUNNER=noop): it measures the scheduler without containers. Never use
it to run workflows.
"""

from __future__ import annotations

from styx_actors.runners.base import (
    DEFAULT_LOG_TAIL_BYTES,
    ExecutionStatus,
    Exited,
    NoContainer,
    OutputKeeper,
    RunnerError,
    RunSpec,
    StatusListener,
    StatusListeners,
)

_SUCCEEDED = Exited(exit_code=0)


class NoopRunner:
    """Reports every started execution as exited with code 0, to watchers and to `status()` alike."""

    def __init__(self, runner_id: str) -> None:
        self.runner_id = runner_id
        self._executions: set[str] = set()
        self._listeners = StatusListeners()

    async def start(self, spec: RunSpec) -> None:
        if spec.execution_id not in self._executions:
            self._executions.add(spec.execution_id)
            self._listeners.publish(spec.execution_id, _SUCCEEDED)

    async def status(self, execution_id: str) -> ExecutionStatus:
        return _SUCCEEDED if execution_id in self._executions else NoContainer()

    async def stop(self, execution_id: str) -> None:
        """Nothing runs, so nothing to stop."""

    async def owned_executions(self) -> dict[str, ExecutionStatus]:
        return {execution_id: _SUCCEEDED for execution_id in self._executions}

    def watch(self, listener: StatusListener) -> None:
        self._listeners.add(listener)

    async def logs(self, execution_id: str, tail_bytes: int = DEFAULT_LOG_TAIL_BYTES) -> str:
        if execution_id not in self._executions:
            raise RunnerError(f"No container for execution {execution_id}")
        return ""

    async def cleanup(self, wanted_execution_ids: set[str], keep_output: OutputKeeper | None = None) -> None:
        """Forget executions nobody wants (no grace period: there is nothing to inspect, no output to keep)."""
        for execution_id in self._executions - wanted_execution_ids:
            self._executions.discard(execution_id)
            self._listeners.forget(execution_id)

    async def close(self) -> None:
        """Holds nothing."""
