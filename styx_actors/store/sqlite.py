"""The embedded store: one SQLite file that several processes (Ray actors) may open at once.

WAL mode lets readers run beside the one writer; every write takes the file's write lock up front
(`BEGIN IMMEDIATE`) and waits up to `busy_timeout` for it, so concurrent writers queue instead of failing.
Ids are SQL columns, never parts of a concatenated key, so no character in an id can confuse two records.
Schema and rules: docs/store.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from styx_actors.model import (
    Backfill,
    GlobalConfig,
    Resource,
    RunState,
    Workflow,
    WorkflowId,
    WorkflowInstance,
    WorkflowState,
    WorkflowStatePatch,
)
from styx_actors.store.base import (
    ACTIVE_STATES_PAGE,
    ExecutionOutput,
    OutputSummary,
    Store,
    StoredEvent,
    StoreError,
    Transition,
)
from styx_actors.store.records import (
    Outcome,
    apply_state_patch,
    check_active_filter,
    check_limit,
    decode_run_state,
    decode_run_states,
    encode_run_state,
    instance_parts,
    stored_event,
    transition_outcome,
)

MEMORY = ":memory:"
# 2: execution outputs (a table added to version 1: opening a version 1 file adds it). 3: `instances.finished_at`
# and its index (added to an older file when it is opened: FINISHED_INDEX).
SCHEMA_VERSION = 3

# Rows with large JSON live in rowid tables (their primary key becomes a unique index); the small
# `instances` index table is clustered on its key.
SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    component TEXT NOT NULL, workflow TEXT NOT NULL, workflow_json TEXT NOT NULL, state_json TEXT NOT NULL,
    PRIMARY KEY (component, workflow));
CREATE TABLE IF NOT EXISTS resources (id TEXT NOT NULL PRIMARY KEY, record_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backfills (
    id TEXT NOT NULL PRIMARY KEY, component TEXT NOT NULL, workflow TEXT NOT NULL,
    finished INTEGER NOT NULL, record_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS backfills_by_workflow ON backfills (component, workflow);
CREATE TABLE IF NOT EXISTS config (name TEXT NOT NULL PRIMARY KEY, record_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS active_states (
    component TEXT NOT NULL, workflow TEXT NOT NULL, parameter TEXT NOT NULL,
    trigger_id TEXT, state_json TEXT NOT NULL,
    PRIMARY KEY (component, workflow, parameter));
CREATE INDEX IF NOT EXISTS active_states_by_trigger ON active_states (trigger_id);
CREATE TABLE IF NOT EXISTS instances (
    component TEXT NOT NULL, workflow TEXT NOT NULL, parameter TEXT NOT NULL, latest_counter INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (component, workflow, parameter)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    component TEXT NOT NULL, workflow TEXT NOT NULL, parameter TEXT NOT NULL,
    counter INTEGER NOT NULL, timestamp INTEGER NOT NULL, event_json TEXT NOT NULL,
    PRIMARY KEY (component, workflow, parameter, counter));
CREATE TABLE IF NOT EXISTS outputs (
    component TEXT NOT NULL, workflow TEXT NOT NULL, parameter TEXT NOT NULL, execution_id TEXT NOT NULL,
    ended_at INTEGER NOT NULL, expires_at INTEGER, size INTEGER NOT NULL, output TEXT NOT NULL,
    PRIMARY KEY (component, workflow, parameter, execution_id));
CREATE INDEX IF NOT EXISTS outputs_by_expiry ON outputs (expires_at) WHERE expires_at IS NOT NULL;
"""
# The finished instances by the time of their terminal transition (`instances.finished_at`, NULL while active).
# Created after the schema: a file of version 2 or older first gets the column (SqliteStore._upgrade).
FINISHED_INDEX = (
    "CREATE INDEX IF NOT EXISTS instances_by_finished ON instances (finished_at) WHERE finished_at IS NOT NULL"
)
# Kept outputs not yet expired at `?` (now, epoch milliseconds).
_OUTPUT_LIVES = "(expires_at IS NULL OR expires_at > ?)"
_ACTIVE_PAGE = "SELECT component, workflow, parameter, state_json FROM active_states"  # keyset pages by primary key

GLOBAL_CONFIG = "global"
INSTALLATION_MARKER = "installation-marker"  # in the config table: name -> the marker as record_json
# Instances looked up per statement in commit(): 3 bound variables each, well below SQLite's limit.
LOOKUP_CHUNK = 500

Key = tuple[str, str, str]


@dataclass(slots=True)
class _InstanceRecord:
    """What the store holds for one instance, as far as the commit rule needs it."""

    active: bool = False
    latest_event: StoredEvent | None = None


@dataclass(slots=True)
class _CommitPlan:
    """A batch's outcome applied in order to an in-memory view, reduced to the rows to write."""

    results: list[bool] = field(default_factory=list)
    snapshots: dict[Key, RunState | None] = field(default_factory=dict)  # None: delete the snapshot
    events: list[tuple[Key, StoredEvent]] = field(default_factory=list)

    @classmethod
    def of(cls, transitions: Sequence[Transition], records: dict[Key, _InstanceRecord]) -> _CommitPlan:
        plan = cls()
        for transition in transitions:
            key = instance_parts(transition.instance)
            record = records.setdefault(key, _InstanceRecord())
            outcome = transition_outcome(transition, record.active, record.latest_event)
            plan.results.append(outcome is not Outcome.REFUSED)
            if outcome is not Outcome.WRITE:
                continue
            state = transition.state
            record.active = not state.state.is_terminal
            record.latest_event = stored_event(transition)
            plan.snapshots[key] = None if state.state.is_terminal else state
            plan.events.append((key, record.latest_event))
        return plan

    def instance_rows(self) -> list[tuple[str, str, str, int, int | None]]:
        """(key, latest counter, finished_at) of each written instance: finished_at is its terminal event's
        timestamp when its last write in the batch was terminal, else None (active)."""
        latest = dict(self.events)
        return [
            (*key, event.counter, event.timestamp if self.snapshots[key] is None else None)
            for key, event in latest.items()
        ]


class SqliteStore(Store):
    """A Store in one SQLite file (or in memory, for tests and throwaway runs).

    One connection per store object, used by one asyncio task at a time: an open write transaction is
    never visible to this object's own reads. Other processes open their own SqliteStore on the file.
    """

    def __init__(self, path: str | Path, busy_timeout: timedelta = timedelta(seconds=30)) -> None:
        self._path = str(path)
        self._busy_timeout_ms = int(busy_timeout.total_seconds() * 1000)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def path(self) -> str:
        return self._path

    @property
    def identity(self) -> str | None:
        return None if self._path == MEMORY else f"sqlite:///{Path(self._path).resolve()}"

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        with self._errors():
            if self._path != MEMORY:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (`BEGIN IMMEDIATE`), never opened behind our back.
            connecting = aiosqlite.connect(self._path, isolation_level=None)
            # aiosqlite's worker thread is not a daemon: a process that exits without closing the store (a Ray
            # actor killed by `ray.kill`) would wait for it forever and linger as an orphan. Every write is
            # committed before it is acknowledged, so nothing is lost when the thread ends with the process.
            worker: threading.Thread | None = getattr(connecting, "_thread", None)
            if worker is not None:
                worker.daemon = True
            db = await connecting
            try:
                await db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                await db.execute("PRAGMA journal_mode = WAL")
                # Every commit is fsynced: a write that was acknowledged survives a power loss too.
                await db.execute("PRAGMA synchronous = FULL")
                await db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
                await self._upgrade(db)
            except BaseException:
                await db.close()
                raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            with self._errors():
                await db.close()

    async def ping(self) -> None:
        await self._fetchall("SELECT 1")

    # -- workflows ------------------------------------------------------------------------------------------

    async def put_workflow(self, workflow: Workflow, state: WorkflowState) -> None:
        await self._execute(
            "INSERT INTO workflows (component, workflow, workflow_json, state_json) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (component, workflow) DO UPDATE SET "
            "workflow_json = excluded.workflow_json, state_json = excluded.state_json",
            (workflow.component_id, workflow.workflow_id, workflow.model_dump_json(), state.model_dump_json()),
        )

    async def get_workflow(self, workflow_id: WorkflowId) -> tuple[Workflow, WorkflowState] | None:
        rows = await self._fetchall(
            "SELECT workflow_json, state_json FROM workflows WHERE component = ? AND workflow = ?",
            (workflow_id.component_id, workflow_id.id),
        )
        return _decode_workflow(rows[0]) if rows else None

    async def workflows(self, component_id: str | None = None) -> list[tuple[Workflow, WorkflowState]]:
        if component_id is None:
            rows = await self._fetchall("SELECT workflow_json, state_json FROM workflows ORDER BY component, workflow")
        else:
            rows = await self._fetchall(
                "SELECT workflow_json, state_json FROM workflows WHERE component = ? ORDER BY workflow",
                (component_id,),
            )
        return [_decode_workflow(row) for row in rows]

    async def delete_workflow(self, workflow_id: WorkflowId) -> bool:
        deleted = await self._execute(
            "DELETE FROM workflows WHERE component = ? AND workflow = ?", (workflow_id.component_id, workflow_id.id)
        )
        return deleted > 0

    async def patch_workflow_state(self, workflow_id: WorkflowId, patch: WorkflowStatePatch) -> WorkflowState | None:
        key = (workflow_id.component_id, workflow_id.id)
        async with self._transaction() as db:
            rows = list(
                await db.execute_fetchall("SELECT state_json FROM workflows WHERE component = ? AND workflow = ?", key)
            )
            if not rows:
                return None
            patched = apply_state_patch(WorkflowState.model_validate_json(rows[0][0]), patch)
            await db.execute(
                "UPDATE workflows SET state_json = ? WHERE component = ? AND workflow = ?",
                (patched.model_dump_json(), *key),
            )
        return patched

    # -- resources ------------------------------------------------------------------------------------------

    async def put_resource(self, resource: Resource) -> None:
        await self._execute(
            "INSERT INTO resources (id, record_json) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET record_json = excluded.record_json",
            (resource.id, resource.model_dump_json()),
        )

    async def get_resource(self, resource_id: str) -> Resource | None:
        rows = await self._fetchall("SELECT record_json FROM resources WHERE id = ?", (resource_id,))
        return Resource.model_validate_json(rows[0][0]) if rows else None

    async def resources(self) -> list[Resource]:
        rows = await self._fetchall("SELECT record_json FROM resources ORDER BY id")
        return [Resource.model_validate_json(row[0]) for row in rows]

    async def delete_resource(self, resource_id: str) -> bool:
        return await self._execute("DELETE FROM resources WHERE id = ?", (resource_id,)) > 0

    # -- backfills ------------------------------------------------------------------------------------------

    async def put_backfill(self, backfill: Backfill) -> None:
        await self._execute(
            "INSERT INTO backfills (id, component, workflow, finished, record_json) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET component = excluded.component, workflow = excluded.workflow, "
            "finished = excluded.finished, record_json = excluded.record_json",
            (
                backfill.id,
                backfill.workflow_id.component_id,
                backfill.workflow_id.id,
                backfill.halted or backfill.all_triggered,
                backfill.model_dump_json(),
            ),
        )

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        rows = await self._fetchall("SELECT record_json FROM backfills WHERE id = ?", (backfill_id,))
        return Backfill.model_validate_json(rows[0][0]) if rows else None

    async def backfills(
        self,
        component_id: str | None = None,
        workflow_id: str | None = None,
        include_finished: bool = False,
    ) -> list[Backfill]:
        conditions = ["1"]
        params: list[Any] = []
        if component_id is not None:
            conditions.append("component = ?")
            params.append(component_id)
        if workflow_id is not None:
            conditions.append("workflow = ?")
            params.append(workflow_id)
        if not include_finished:
            conditions.append("finished = 0")
        rows = await self._fetchall(
            f"SELECT record_json FROM backfills WHERE {' AND '.join(conditions)} ORDER BY id", params
        )
        return [Backfill.model_validate_json(row[0]) for row in rows]

    # -- global config --------------------------------------------------------------------------------------

    async def get_config(self) -> GlobalConfig:
        rows = await self._fetchall("SELECT record_json FROM config WHERE name = ?", (GLOBAL_CONFIG,))
        return GlobalConfig.model_validate_json(rows[0][0]) if rows else GlobalConfig()

    async def put_config(self, config: GlobalConfig) -> None:
        await self._execute(
            "INSERT INTO config (name, record_json) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET record_json = excluded.record_json",
            (GLOBAL_CONFIG, config.model_dump_json()),
        )

    async def get_marker(self) -> str | None:
        rows = await self._fetchall("SELECT record_json FROM config WHERE name = ?", (INSTALLATION_MARKER,))
        return str(rows[0][0]) if rows else None

    async def put_marker_if_absent(self, marker: str) -> str:
        await self._execute(
            "INSERT INTO config (name, record_json) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (INSTALLATION_MARKER, marker),
        )
        found = await self.get_marker()
        assert found is not None
        return found

    # -- active instances and their events ------------------------------------------------------------------

    async def commit(self, transitions: Sequence[Transition]) -> list[bool]:
        if not transitions:
            return []
        async with self._transaction() as db:
            records = await self._instance_records(db, {instance_parts(t.instance) for t in transitions})
            plan = _CommitPlan.of(transitions, records)
            await db.executemany(
                "INSERT INTO active_states (component, workflow, parameter, trigger_id, state_json) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (component, workflow, parameter) DO UPDATE SET "
                "trigger_id = excluded.trigger_id, state_json = excluded.state_json",
                [
                    (*key, state.data.trigger_id, encode_run_state(state))
                    for key, state in plan.snapshots.items()
                    if state is not None
                ],
            )
            await db.executemany(
                "DELETE FROM active_states WHERE component = ? AND workflow = ? AND parameter = ?",
                [key for key, state in plan.snapshots.items() if state is None],
            )
            await db.executemany(
                "INSERT INTO events (component, workflow, parameter, counter, timestamp, event_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*key, event.counter, event.timestamp, event.event_json) for key, event in plan.events],
            )
            await db.executemany(
                "INSERT INTO instances (component, workflow, parameter, latest_counter, finished_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (component, workflow, parameter) DO UPDATE SET "
                "latest_counter = excluded.latest_counter, finished_at = excluded.finished_at",
                plan.instance_rows(),
            )
        return plan.results

    async def active_state(self, instance: WorkflowInstance) -> RunState | None:
        rows = await self._fetchall(
            "SELECT state_json FROM active_states WHERE component = ? AND workflow = ? AND parameter = ?",
            instance_parts(instance),
        )
        return decode_run_state(rows[0][0]) if rows else None

    async def active_states(self, component_id: str | None = None, workflow_id: str | None = None) -> list[RunState]:
        check_active_filter(component_id, workflow_id)
        order = "ORDER BY component, workflow, parameter"
        if component_id is None:
            rows = await self._fetchall(f"SELECT state_json FROM active_states {order}")
        elif workflow_id is None:
            rows = await self._fetchall(
                f"SELECT state_json FROM active_states WHERE component = ? {order}", (component_id,)
            )
        else:
            rows = await self._fetchall(
                f"SELECT state_json FROM active_states WHERE component = ? AND workflow = ? {order}",
                (component_id, workflow_id),
            )
        return decode_run_states(row[0] for row in rows)

    async def active_state_pages(self, page_size: int = ACTIVE_STATES_PAGE) -> AsyncIterator[list[RunState]]:
        after: tuple[str, str, str] | None = None
        while True:
            if after is None:
                rows = await self._fetchall(
                    f"{_ACTIVE_PAGE} ORDER BY component, workflow, parameter LIMIT ?", (page_size,)
                )
            else:
                rows = await self._fetchall(
                    f"{_ACTIVE_PAGE} WHERE (component, workflow, parameter) > (?, ?, ?) "
                    "ORDER BY component, workflow, parameter LIMIT ?",
                    (*after, page_size),
                )
            if not rows:
                return
            yield decode_run_states(row[3] for row in rows)
            if len(rows) < page_size:
                return
            after = (rows[-1][0], rows[-1][1], rows[-1][2])

    async def active_states_by_trigger(self, trigger_id: str) -> list[RunState]:
        rows = await self._fetchall(
            "SELECT state_json FROM active_states WHERE trigger_id = ? ORDER BY component, workflow, parameter",
            (trigger_id,),
        )
        return decode_run_states(row[0] for row in rows)

    async def events(self, instance: WorkflowInstance) -> list[StoredEvent]:
        rows = await self._fetchall(
            "SELECT counter, timestamp, event_json FROM events "
            "WHERE component = ? AND workflow = ? AND parameter = ? ORDER BY counter",
            instance_parts(instance),
        )
        return [StoredEvent(counter=row[0], timestamp=row[1], event_json=row[2]) for row in rows]

    async def latest_event_counter(self, instance: WorkflowInstance) -> int:
        rows = await self._fetchall(
            "SELECT latest_counter FROM instances WHERE component = ? AND workflow = ? AND parameter = ?",
            instance_parts(instance),
        )
        return rows[0][0] if rows else -1

    async def delete_expired_history(self, finished_before_millis: int, limit: int) -> int:
        check_limit(limit)
        # Bounded: the write lock is held for at most `limit` instances, found oldest first by the partial index.
        async with self._transaction() as db:
            expired = list(
                await db.execute_fetchall(
                    "SELECT component, workflow, parameter FROM instances AS i WHERE finished_at < ? "
                    "AND NOT EXISTS (SELECT 1 FROM active_states AS a WHERE a.component = i.component "
                    "AND a.workflow = i.workflow AND a.parameter = i.parameter) ORDER BY finished_at LIMIT ?",
                    (finished_before_millis, limit),
                )
            )
            for table in ("events", "instances"):
                await db.executemany(
                    f"DELETE FROM {table} WHERE component = ? AND workflow = ? AND parameter = ?", expired
                )
        return len(expired)

    async def instance_parameters(
        self,
        workflow_id: WorkflowId,
        start: str | None = None,
        stop: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[str]:
        check_limit(limit)
        conditions = ["component = ?", "workflow = ?"]
        params: list[Any] = [workflow_id.component_id, workflow_id.id]
        if start is not None:
            conditions.append("parameter >= ?")
            params.append(start)
        if stop is not None:
            conditions.append("parameter < ?")
            params.append(stop)
        params.append(-1 if limit is None else limit)  # LIMIT -1: no limit
        rows = await self._fetchall(
            f"SELECT parameter FROM instances WHERE {' AND '.join(conditions)} "
            f"ORDER BY parameter {'DESC' if newest_first else 'ASC'} LIMIT ?",
            params,
        )
        return [row[0] for row in rows]

    # -- execution output -----------------------------------------------------------------------------------

    async def put_execution_output(self, output: ExecutionOutput) -> None:
        await self._execute(
            "INSERT INTO outputs (component, workflow, parameter, execution_id, ended_at, expires_at, size, output) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (component, workflow, parameter, execution_id) DO UPDATE SET "
            "ended_at = excluded.ended_at, expires_at = excluded.expires_at, size = excluded.size, "
            "output = excluded.output",
            (
                *instance_parts(output.instance),
                output.execution_id,
                output.ended_at,
                output.expires_at,
                output.size,
                output.output,
            ),
        )

    async def execution_output(self, instance: WorkflowInstance, execution_id: str) -> ExecutionOutput | None:
        rows = await self._fetchall(
            "SELECT ended_at, expires_at, output FROM outputs WHERE component = ? AND workflow = ? AND parameter = ? "
            f"AND execution_id = ? AND {_OUTPUT_LIVES}",
            (*instance_parts(instance), execution_id, _now_millis()),
        )
        if not rows:
            return None
        ended_at, expires_at, text = rows[0]
        return ExecutionOutput(instance, execution_id, ended_at, text, expires_at)

    async def execution_outputs(self, instance: WorkflowInstance) -> list[OutputSummary]:
        # The columns before `output` are read from the row's first page: the text itself is not loaded.
        rows = await self._fetchall(
            "SELECT execution_id, ended_at, size FROM outputs WHERE component = ? AND workflow = ? AND parameter = ? "
            f"AND {_OUTPUT_LIVES} ORDER BY ended_at, execution_id",
            (*instance_parts(instance), _now_millis()),
        )
        return [OutputSummary(execution_id=row[0], ended_at=row[1], size=row[2]) for row in rows]

    async def delete_expired_outputs(self, limit: int) -> int:
        check_limit(limit)
        # Bounded: the file's write lock is held for at most `limit` rows (the partial index finds them).
        return await self._execute(
            "DELETE FROM outputs WHERE rowid IN (SELECT rowid FROM outputs WHERE expires_at <= ? LIMIT ?)",
            (_now_millis(), limit),
        )

    # -- plumbing -------------------------------------------------------------------------------------------

    @staticmethod
    async def _upgrade(db: aiosqlite.Connection) -> None:
        """Bring a file of an older version to SCHEMA_VERSION, under the write lock so that processes opening it
        together do it once. Instances that finished before version 3 get no `finished_at` (docs/store.md)."""
        async with _write_transaction(db):
            columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(instances)")}
            if "finished_at" not in columns:
                await db.execute("ALTER TABLE instances ADD COLUMN finished_at INTEGER")
            await db.execute(FINISHED_INDEX)
            await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    async def _instance_records(db: aiosqlite.Connection, keys: Iterable[Key]) -> dict[Key, _InstanceRecord]:
        """Whether each given instance that has events is active, and its last event (one query per chunk)."""
        records: dict[Key, _InstanceRecord] = {}
        for chunk in _chunks(list(keys), LOOKUP_CHUNK):
            # CROSS JOIN fixes the join order: from the wanted keys down the primary keys, never a scan.
            rows = await db.execute_fetchall(
                f"WITH wanted (component, workflow, parameter) AS (VALUES {', '.join(['(?, ?, ?)'] * len(chunk))}) "
                "SELECT i.component, i.workflow, i.parameter, a.component IS NOT NULL, "
                "e.counter, e.timestamp, e.event_json FROM wanted AS w "
                "CROSS JOIN instances AS i "
                "ON i.component = w.component AND i.workflow = w.workflow AND i.parameter = w.parameter "
                "CROSS JOIN events AS e ON e.component = i.component AND e.workflow = i.workflow "
                "AND e.parameter = i.parameter AND e.counter = i.latest_counter "
                "LEFT JOIN active_states AS a "
                "ON a.component = i.component AND a.workflow = i.workflow AND a.parameter = i.parameter",
                [part for key in chunk for part in key],
            )
            for component, workflow, parameter, active, counter, timestamp, event_json in rows:
                records[(component, workflow, parameter)] = _InstanceRecord(
                    bool(active), StoredEvent(counter=counter, timestamp=timestamp, event_json=event_json)
                )
        return records

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"SQLite store {self._path} is not open")
        return self._db

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            with self._errors():
                return list(await self._connection().execute_fetchall(sql, params))

    async def _execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement in its own transaction; the number of rows it changed."""
        async with self._lock:
            with self._errors():
                async with self._connection().execute(sql, params) as cursor:
                    return cursor.rowcount

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction holding the file's write lock from its start; rolled back on any error."""
        async with self._lock:
            with self._errors():
                async with _write_transaction(self._connection()) as db:
                    yield db


@contextlib.asynccontextmanager
async def _write_transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """`BEGIN IMMEDIATE`: the file's write lock is taken up front, so two writers never deadlock upgrading."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        await db.execute("COMMIT")
    except BaseException:
        await db.rollback()  # a no-op when COMMIT already ended the transaction
        raise


def _decode_workflow(row: sqlite3.Row) -> tuple[Workflow, WorkflowState]:
    workflow_json, state_json = row
    return Workflow.model_validate_json(workflow_json), WorkflowState.model_validate_json(state_json)


def _now_millis() -> int:
    """The wall clock, which output expiry is measured against (as Redis measures its key TTLs)."""
    return time.time_ns() // 1_000_000


def _chunks(items: list[Key], size: int) -> Iterator[list[Key]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]
