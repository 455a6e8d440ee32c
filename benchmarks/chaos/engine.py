"""What the Docker Engine itself says about the service's containers, read by the chaos runner (not by the
service): every container event of the installation's label from before the service starts, and frequent
lists of the running containers of the resource-limited workflows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
from docker.errors import DockerException

from benchmarks.chaos.history import ContainerEvent, RunningSample
from styx_actors.runners.docker import (
    LABEL_COMPONENT_ID,
    LABEL_EXECUTION_ID,
    LABEL_INSTALLATION,
    LABEL_WORKFLOW_ID,
)

SAMPLE_INTERVAL_SECONDS = 0.25
RECONNECT_SECONDS = 0.5


def _event(raw: dict[str, Any]) -> ContainerEvent | None:
    attributes = raw.get("Actor", {}).get("Attributes", {})
    execution_id = attributes.get(LABEL_EXECUTION_ID)
    if execution_id is None:
        return None
    workflow = f"{attributes.get(LABEL_COMPONENT_ID)}/{attributes.get(LABEL_WORKFLOW_ID)}"
    return ContainerEvent(at=raw["timeNano"] / 1e9, action=raw["Action"], execution_id=execution_id, workflow=workflow)


def _execution_ids(client: docker.DockerClient, filters: dict[str, Any]) -> list[str]:
    """One list call (no inspect per container)."""
    labels = (container["Labels"] for container in client.api.containers(filters=filters))
    return [label[LABEL_EXECUTION_ID] for label in labels if LABEL_EXECUTION_ID in label]


class EngineWatcher:
    """Follows the engine's container events of one installation (a thread), reconnecting from the last event
    seen should the stream break, and samples the running containers of some workflows (another thread)."""

    def __init__(self, installation_id: str, sampled: dict[str, str]) -> None:
        self._label = f"{LABEL_INSTALLATION}={installation_id}"
        self._sampled = sampled  # "c/w" -> its workflow id label value
        self._events_client = docker.from_env()  # one client per thread: docker-py clients are not shared
        self._since = int(time.time())
        self._seen: set[tuple[int, str, str]] = set()  # (timeNano, container id, action): reconnects overlap
        self.events: list[ContainerEvent] = []
        self.samples: list[RunningSample] = []
        self._stream: Any = None
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, name="engine-events", daemon=True),
            threading.Thread(target=self._sample, name="engine-samples", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both threads, then read the events up to now once more, so none still in flight is missed."""
        self._stopping.set()
        if self._stream is not None:
            self._stream.close()
        for thread in self._threads:
            thread.join(timeout=30)
        until = int(time.time()) + 1
        self._record(self._events_client.events(since=self._since, until=until, decode=True, filters=self._filters()))
        self._events_client.close()

    def running(self) -> list[str]:
        """Names (= execution ids) of the installation's running containers, sorted."""
        client = docker.from_env()
        try:
            return sorted(_execution_ids(client, {"label": self._label, "status": "running"}))
        finally:
            client.close()

    def kill(self, name: str) -> None:
        """`docker kill` (SIGKILL) one container."""
        client = docker.from_env()
        try:
            client.containers.get(name).kill()
        finally:
            client.close()

    def remove_containers(self) -> None:
        """Remove every container of the installation (finished ones are kept for a grace period)."""
        client = docker.from_env()
        try:
            for container in client.containers.list(all=True, filters={"label": self._label}):
                container.remove(force=True)
        finally:
            client.close()

    def _filters(self) -> dict[str, Any]:
        return {"type": "container", "label": self._label}

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                self._stream = self._events_client.events(since=self._since, decode=True, filters=self._filters())
                self._record(self._stream)
            except DockerException:
                pass
            except Exception:  # the stream closed by stop() while a read was under way
                if not self._stopping.is_set():
                    raise
            self._stopping.wait(RECONNECT_SECONDS)

    def _record(self, raw_events: Iterator[dict[str, Any]]) -> None:
        for raw in raw_events:
            key = (raw["timeNano"], raw.get("id", ""), raw["Action"])
            if key in self._seen:
                continue
            self._seen.add(key)
            self._since = max(self._since, raw["time"])  # a reconnect replays this second: `_seen` drops the repeats
            event = _event(raw)
            if event is not None:
                self.events.append(event)

    def _sample(self) -> None:
        client = docker.from_env()
        try:
            while not self._stopping.wait(SAMPLE_INTERVAL_SECONDS):
                for workflow, workflow_id in self._sampled.items():
                    filters = {"label": [self._label, f"{LABEL_WORKFLOW_ID}={workflow_id}"], "status": "running"}
                    try:
                        running = tuple(sorted(_execution_ids(client, filters)))
                    except DockerException:
                        continue
                    self.samples.append(RunningSample(at=time.time(), workflow=workflow, execution_ids=running))
        finally:
            client.close()
