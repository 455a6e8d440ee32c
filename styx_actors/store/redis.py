"""The shared store for a multi-node cluster: Redis via redis.asyncio, every key under one prefix.

A batch of transitions is one EVALSHA of a Lua script, which applies each transition atomically (the
commit rule of records.transition_outcome) and maintains the snapshot indexes in the same step. Composite
ids are JSON arrays inside keys and hash fields, so no character in an id can make two records collide or
leave the prefix. Key layout: docs/store.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

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
    check_active_filter,
    check_limit,
    decode_run_state,
    decode_run_states,
    encode_run_state,
    instance_parts,
    state_patch_json,
    stored_event,
)

DEFAULT_PREFIX = "styx"

# Mirrors records.transition_outcome. KEYS: the snapshots and snapshot trigger-key hashes and the finished
# index, then 5 keys per transition; ARGV: 8 values per transition (see RedisStore.commit).
COMMIT_SCRIPT = """
local results = {}
for i = 0, #ARGV / 8 - 1 do
  local a, k = i * 8, 3 + i * 5
  local field, entry = ARGV[a + 4], ARGV[a + 7]
  local events_key, trigger_key = KEYS[k + 1], KEYS[k + 5]
  local latest = redis.call('LINDEX', events_key, -1)
  local written = 0
  if latest == entry then
    written = 1  -- written by an earlier attempt of this commit whose reply was lost
  elseif not latest or tonumber(ARGV[a + 2]) > tonumber(string.match(latest, '^(%-?%d+) ')) then
    local active = redis.call('HEXISTS', KEYS[1], field) == 1
    if (ARGV[a + 1] == '1') ~= active then
      redis.call('RPUSH', events_key, entry)
      redis.call('ZADD', KEYS[k + 2], 0, ARGV[a + 6])
      -- The trigger set the snapshot was indexed under: stored, because the trigger id is inside its JSON.
      local old_trigger_key = redis.call('HGET', KEYS[2], field)
      if old_trigger_key and old_trigger_key ~= trigger_key then
        redis.call('SREM', old_trigger_key, field)
      end
      if ARGV[a + 3] == '1' then
        redis.call('HDEL', KEYS[1], field)
        redis.call('HDEL', KEYS[2], field)
        redis.call('SREM', KEYS[k + 3], field)
        redis.call('SREM', KEYS[k + 4], field)
        redis.call('SREM', trigger_key, field)
        redis.call('ZADD', KEYS[3], ARGV[a + 8], field)  -- finished at its terminal transition's time
      else
        if ARGV[a + 1] == '1' then
          redis.call('ZREM', KEYS[3], field)  -- active again: its history is not to be deleted
        end
        redis.call('HSET', KEYS[1], field, ARGV[a + 5])
        redis.call('HSET', KEYS[2], field, trigger_key)
        redis.call('SADD', KEYS[k + 3], field)
        redis.call('SADD', KEYS[k + 4], field)
        redis.call('SADD', trigger_key, field)
      end
      written = 1
    end
  end
  results[i + 1] = written
end
return results
"""

# The snapshots of the instances in one index set, read atomically with the set (HMGET in chunks: Lua's
# unpack has a stack limit). Index and hash change together in COMMIT_SCRIPT, so every member has one.
INDEXED_SNAPSHOTS_SCRIPT = """
local fields = redis.call('SMEMBERS', KEYS[1])
local snapshots = {}
for i = 1, #fields, 1000 do
  local values = redis.call('HMGET', KEYS[2], unpack(fields, i, math.min(i + 999, #fields)))
  for _, value in ipairs(values) do
    snapshots[#snapshots + 1] = value
  end
end
return snapshots
"""

# KEYS: event lists. The counter of each list's last entry, -1 for an empty list (one command for many
# instances: a burst of triggers reads them together).
LATEST_COUNTERS_SCRIPT = """
local counters = {}
for i, key in ipairs(KEYS) do
  local latest = redis.call('LINDEX', key, -1)
  counters[i] = latest and tonumber(string.match(latest, '^(%-?%d+) ')) or -1
end
return counters
"""

# KEYS: the snapshots hash, the finished index, then per instance its event list and its workflow's parameter
# index; ARGV: the cutoff (epoch milliseconds), then per instance its snapshot field and its parameter. An
# instance re-triggered (or finished again) since it was read from the index is no longer below the cutoff there.
EXPIRE_HISTORY_SCRIPT = """
local deleted = 0
for i = 1, (#KEYS - 2) / 2 do
  local field = ARGV[2 * i]
  local finished_at = redis.call('ZSCORE', KEYS[2], field)
  if finished_at and tonumber(finished_at) < tonumber(ARGV[1]) and redis.call('HEXISTS', KEYS[1], field) == 0 then
    redis.call('UNLINK', KEYS[2 * i + 1])
    redis.call('ZREM', KEYS[2 * i + 2], ARGV[2 * i + 1])
    redis.call('ZREM', KEYS[2], field)
    deleted = deleted + 1
  end
end
return deleted
"""

# KEYS: workflows, workflow states; ARGV: workflow field, JSON object of the patched fields. The state is
# a flat object of strings, booleans and nulls, which cjson round-trips exactly.
PATCH_STATE_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return false
end
local state = cjson.decode(redis.call('HGET', KEYS[2], ARGV[1]))
for name, value in pairs(cjson.decode(ARGV[2])) do
  state[name] = value
end
local encoded = cjson.encode(state)
redis.call('HSET', KEYS[2], ARGV[1], encoded)
return encoded
"""

# KEYS: an execution's output hash, its instance's output index; ARGV: execution id, ended_at, size, output,
# expires_at ('' = never). The output key expires with the output; the index lives as long as the
# longest-kept output it lists (entries of expired outputs are dropped when read: UNINDEX_EXPIRED_SCRIPT).
PUT_OUTPUT_SCRIPT = """
local index_ttl = redis.call('PTTL', KEYS[2])  -- -2: no index yet, -1: it lists an output kept forever
redis.call('HSET', KEYS[1], 'ended_at', ARGV[2], 'size', ARGV[3], 'output', ARGV[4], 'expires_at', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[5] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  return 1
end
local expires_at = tonumber(ARGV[5])
redis.call('PEXPIREAT', KEYS[1], expires_at)
if index_ttl == -2 then
  redis.call('PEXPIREAT', KEYS[2], expires_at)
elseif index_ttl >= 0 then
  local now = redis.call('TIME')
  if expires_at > tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + index_ttl then
    redis.call('PEXPIREAT', KEYS[2], expires_at)
  end
end
return 1
"""

# KEYS: an instance's output index, the output hash of ARGV[1]; the entry goes only if the output has expired
# (a put of the same execution may have come meanwhile).
UNINDEX_EXPIRED_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
"""


@functools.lru_cache(maxsize=65536)  # every transition names its instance's keys five times
def composite(*parts: str | None) -> str:
    """An id tuple as one string that no other tuple maps to (a JSON array, ASCII-only)."""
    return json.dumps(parts, separators=(",", ":"))


class RedisKeys:
    """Every key of one store, all under `prefix:`; variable parts are `composite` encoded."""

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty")
        self.prefix = prefix
        self.workflows = f"{prefix}:workflows"  # hash: composite(component, workflow) -> Workflow JSON
        self.workflow_states = f"{prefix}:workflow_states"  # hash: same fields -> WorkflowState JSON
        self.resources = f"{prefix}:resources"  # hash: id -> Resource JSON
        self.backfills = f"{prefix}:backfills"  # hash: id -> Backfill JSON
        self.config = f"{prefix}:config"  # string: GlobalConfig JSON
        self.marker = f"{prefix}:marker"  # string: the installation marker (styx_actors/store/marker.py)
        self.snapshots = f"{prefix}:snapshots"  # hash: composite(c, w, p) -> RunState JSON
        self.snapshot_trigger_keys = f"{prefix}:snapshot_trigger_keys"  # hash: same fields -> by_trigger key
        # sorted set: snapshot fields of the finished instances, scored by the time of their terminal transition
        self.finished = f"{prefix}:finished"

    def by_component(self, component_id: str) -> str:
        return f"{self.prefix}:by_component:{composite(component_id)}"  # set of snapshot fields

    def by_workflow(self, component_id: str, workflow_id: str) -> str:
        return f"{self.prefix}:by_workflow:{composite(component_id, workflow_id)}"  # set of snapshot fields

    def by_trigger(self, trigger_id: str | None) -> str:
        return f"{self.prefix}:by_trigger:{composite(trigger_id)}"  # set of snapshot fields

    def events(self, instance: WorkflowInstance) -> str:
        return self.events_of(composite(*instance_parts(instance)))

    def events_of(self, field: str) -> str:
        return f"{self.prefix}:events:{field}"  # list of event entries of the instance with snapshot field `field`

    def parameters(self, component_id: str, workflow_id: str) -> str:
        # sorted set, all scores 0: the parameters with events, in byte (= code point) order
        return f"{self.prefix}:parameters:{composite(component_id, workflow_id)}"

    def output(self, instance: WorkflowInstance, execution_id: str) -> str:
        # hash: ended_at, size, output, expires_at; expires with the output
        return f"{self.prefix}:output:{composite(*instance_parts(instance), execution_id)}"

    def outputs(self, instance: WorkflowInstance) -> str:
        # sorted set: execution ids with a kept output, scored by ended_at
        return f"{self.prefix}:outputs:{composite(*instance_parts(instance))}"


def encode_event_entry(event: StoredEvent) -> str:
    """`counter timestamp json`: the counter first, so the commit script can read it with one match."""
    return f"{event.counter} {event.timestamp} {event.event_json}"


def decode_event_entry(entry: str) -> StoredEvent:
    counter, timestamp, event_json = entry.split(" ", 2)
    return StoredEvent(counter=int(counter), timestamp=int(timestamp), event_json=event_json)


@dataclass(frozen=True, slots=True)
class _Connection:
    """An open client with the store's scripts registered on it."""

    client: Redis
    commit: AsyncScript
    indexed_snapshots: AsyncScript
    patch_state: AsyncScript
    latest_counters: AsyncScript
    expire_history: AsyncScript
    put_output: AsyncScript
    unindex_expired: AsyncScript


SOCKET_TIMEOUT_SECONDS = 10.0
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _reply(reply: Awaitable[T] | T) -> Awaitable[T]:
    """A command's reply, to await: redis-py types each command for its sync and asyncio clients at once
    (`Awaitable[X] | X`), and the asyncio client's commands always return an awaitable."""
    return cast(Awaitable[T], reply)


def _translate_errors(
    method: Callable[Concatenate[RedisStore, P], Awaitable[R]],
) -> Callable[Concatenate[RedisStore, P], Coroutine[Any, Any, R]]:
    """Every Redis failure (refused connection, timeout, script error) surfaces as StoreError."""

    @functools.wraps(method)
    async def translated(self: RedisStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except RedisError as exc:
            raise StoreError(f"Redis store (prefix {self.keys.prefix!r}): {exc}") from exc

    return translated


class RedisStore(Store):
    """A Store in one Redis database; stores with different prefixes share a server without meeting."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        self._url = url
        self.keys = RedisKeys(prefix)
        self._connection: _Connection | None = None

    @property
    def identity(self) -> str:
        """Scheme, server, database and prefix; the password and other options of the URL are left out."""
        parts = urlsplit(self._url)
        host = parts.hostname or "localhost"
        server = f"[{host}]" if ":" in host else host
        database = parts.path.strip("/") or dict(parse_qsl(parts.query)).get("db", "0")
        return f"{parts.scheme}://{server}:{parts.port or 6379}/{database}?prefix={self.keys.prefix}"

    # -- lifecycle ------------------------------------------------------------------------------------------

    @_translate_errors
    async def open(self) -> None:
        if self._connection is not None:
            return
        # A server that stops answering (SIGSTOP, a partition) must fail calls, not hang them: reads and writes
        # then answer 503 and /readyz says why. The URL's own `?socket_timeout=` wins (docs/store.md).
        client = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._connection = _Connection(
            client=client,
            commit=client.register_script(COMMIT_SCRIPT),
            indexed_snapshots=client.register_script(INDEXED_SNAPSHOTS_SCRIPT),
            patch_state=client.register_script(PATCH_STATE_SCRIPT),
            latest_counters=client.register_script(LATEST_COUNTERS_SCRIPT),
            expire_history=client.register_script(EXPIRE_HISTORY_SCRIPT),
            put_output=client.register_script(PUT_OUTPUT_SCRIPT),
            unindex_expired=client.register_script(UNINDEX_EXPIRED_SCRIPT),
        )

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.client.aclose()

    @_translate_errors
    async def ping(self) -> None:
        await self._open.client.ping()

    @property
    def _open(self) -> _Connection:
        if self._connection is None:
            raise StoreError(f"Redis store (prefix {self.keys.prefix!r}) is not open")
        return self._connection

    # -- workflows ------------------------------------------------------------------------------------------

    @_translate_errors
    async def put_workflow(self, workflow: Workflow, state: WorkflowState) -> None:
        field = composite(workflow.component_id, workflow.workflow_id)
        async with self._open.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.workflows, field, workflow.model_dump_json())
            pipe.hset(self.keys.workflow_states, field, state.model_dump_json())
            await pipe.execute()

    @_translate_errors
    async def get_workflow(self, workflow_id: WorkflowId) -> tuple[Workflow, WorkflowState] | None:
        field = composite(workflow_id.component_id, workflow_id.id)
        async with self._open.client.pipeline(transaction=True) as pipe:
            pipe.hget(self.keys.workflows, field)
            pipe.hget(self.keys.workflow_states, field)
            workflow_json, state_json = await pipe.execute()
        if workflow_json is None:
            return None
        return Workflow.model_validate_json(workflow_json), WorkflowState.model_validate_json(state_json)

    @_translate_errors
    async def get_workflows(self, workflow_ids: Sequence[WorkflowId]) -> list[tuple[Workflow, WorkflowState] | None]:
        if not workflow_ids:
            return []
        fields = [composite(workflow_id.component_id, workflow_id.id) for workflow_id in workflow_ids]
        async with self._open.client.pipeline(transaction=True) as pipe:
            pipe.hmget(self.keys.workflows, fields)
            pipe.hmget(self.keys.workflow_states, fields)
            workflow_jsons, state_jsons = await pipe.execute()
        return [
            None
            if workflow_json is None
            else (Workflow.model_validate_json(workflow_json), WorkflowState.model_validate_json(state_json))
            for workflow_json, state_json in zip(workflow_jsons, state_jsons, strict=True)
        ]

    @_translate_errors
    async def workflows(self, component_id: str | None = None) -> list[tuple[Workflow, WorkflowState]]:
        async with self._open.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.workflows)
            pipe.hgetall(self.keys.workflow_states)
            workflow_jsons, state_jsons = await pipe.execute()
        found = [
            (Workflow.model_validate_json(workflow_json), WorkflowState.model_validate_json(state_jsons[field]))
            for field, workflow_json in workflow_jsons.items()
        ]
        if component_id is not None:
            found = [pair for pair in found if pair[0].component_id == component_id]
        return sorted(found, key=lambda pair: (pair[0].component_id, pair[0].workflow_id))

    @_translate_errors
    async def delete_workflow(self, workflow_id: WorkflowId) -> bool:
        field = composite(workflow_id.component_id, workflow_id.id)
        async with self._open.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.workflows, field)
            pipe.hdel(self.keys.workflow_states, field)
            deleted: int
            deleted, _ = await pipe.execute()
        return deleted > 0

    @_translate_errors
    async def patch_workflow_state(self, workflow_id: WorkflowId, patch: WorkflowStatePatch) -> WorkflowState | None:
        patched = await self._open.patch_state(
            keys=[self.keys.workflows, self.keys.workflow_states],
            args=[composite(workflow_id.component_id, workflow_id.id), json.dumps(state_patch_json(patch))],
        )
        return None if patched is None else WorkflowState.model_validate_json(patched)

    # -- resources ------------------------------------------------------------------------------------------

    @_translate_errors
    async def put_resource(self, resource: Resource) -> None:
        await _reply(self._open.client.hset(self.keys.resources, resource.id, resource.model_dump_json()))

    @_translate_errors
    async def get_resource(self, resource_id: str) -> Resource | None:
        found = await _reply(self._open.client.hget(self.keys.resources, resource_id))
        return None if found is None else Resource.model_validate_json(found)

    @_translate_errors
    async def resources(self) -> list[Resource]:
        found = [
            Resource.model_validate_json(text) for text in await _reply(self._open.client.hvals(self.keys.resources))
        ]
        return sorted(found, key=lambda resource: resource.id)

    @_translate_errors
    async def delete_resource(self, resource_id: str) -> bool:
        return await _reply(self._open.client.hdel(self.keys.resources, resource_id)) > 0

    # -- backfills ------------------------------------------------------------------------------------------

    @_translate_errors
    async def put_backfill(self, backfill: Backfill) -> None:
        await _reply(self._open.client.hset(self.keys.backfills, backfill.id, backfill.model_dump_json()))

    @_translate_errors
    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        found = await _reply(self._open.client.hget(self.keys.backfills, backfill_id))
        return None if found is None else Backfill.model_validate_json(found)

    @_translate_errors
    async def backfills(
        self,
        component_id: str | None = None,
        workflow_id: str | None = None,
        include_finished: bool = False,
    ) -> list[Backfill]:
        # Backfills are few and never deleted: one hash, filtered here.
        found = [
            Backfill.model_validate_json(text) for text in await _reply(self._open.client.hvals(self.keys.backfills))
        ]
        found = [
            backfill
            for backfill in found
            if (component_id is None or backfill.workflow_id.component_id == component_id)
            and (workflow_id is None or backfill.workflow_id.id == workflow_id)
            and (include_finished or not (backfill.halted or backfill.all_triggered))
        ]
        return sorted(found, key=lambda backfill: backfill.id)

    # -- global config --------------------------------------------------------------------------------------

    @_translate_errors
    async def get_config(self) -> GlobalConfig:
        found = await self._open.client.get(self.keys.config)
        return GlobalConfig() if found is None else GlobalConfig.model_validate_json(found)

    @_translate_errors
    async def put_config(self, config: GlobalConfig) -> None:
        await self._open.client.set(self.keys.config, config.model_dump_json())

    @_translate_errors
    async def get_marker(self) -> str | None:
        found: str | None = await self._open.client.get(self.keys.marker)
        return found

    @_translate_errors
    async def put_marker_if_absent(self, marker: str) -> str:
        await self._open.client.set(self.keys.marker, marker, nx=True)
        found: str | None = await self._open.client.get(self.keys.marker)
        if found is None:
            raise StoreError(f"Redis store (prefix {self.keys.prefix!r}): the installation marker vanished")
        return found

    # -- active instances and their events ------------------------------------------------------------------

    @_translate_errors
    async def commit(self, transitions: Sequence[Transition]) -> list[bool]:
        if not transitions:
            return []
        keys = [self.keys.snapshots, self.keys.snapshot_trigger_keys, self.keys.finished]
        args: list[str | int] = []
        for transition in transitions:
            state = transition.state
            component_id, workflow_id, parameter = instance_parts(transition.instance)
            keys += [
                self.keys.events(transition.instance),
                self.keys.parameters(component_id, workflow_id),
                self.keys.by_component(component_id),
                self.keys.by_workflow(component_id, workflow_id),
                self.keys.by_trigger(state.data.trigger_id),
            ]
            args += [
                "1" if transition.insert else "0",
                state.counter,
                "1" if state.state.is_terminal else "0",
                composite(component_id, workflow_id, parameter),
                encode_run_state(state),
                parameter,
                encode_event_entry(stored_event(transition)),
                state.timestamp,
            ]
        results = await self._open.commit(keys=keys, args=args)
        return [bool(written) for written in results]

    @_translate_errors
    async def active_state(self, instance: WorkflowInstance) -> RunState | None:
        found = await _reply(self._open.client.hget(self.keys.snapshots, composite(*instance_parts(instance))))
        return None if found is None else decode_run_state(found)

    @_translate_errors
    async def active_states(self, component_id: str | None = None, workflow_id: str | None = None) -> list[RunState]:
        check_active_filter(component_id, workflow_id)
        if component_id is None:
            snapshots = await _reply(self._open.client.hvals(self.keys.snapshots))
        elif workflow_id is None:
            snapshots = await self._indexed_snapshots(self.keys.by_component(component_id))
        else:
            snapshots = await self._indexed_snapshots(self.keys.by_workflow(component_id, workflow_id))
        return decode_run_states(snapshots, sort=True)

    async def active_state_pages(self, page_size: int = ACTIVE_STATES_PAGE) -> AsyncIterator[list[RunState]]:
        # The field names (~60 bytes each), not the snapshots, are read at once: sorted by the instance they
        # name, then their snapshots a page at a time. One that ended meanwhile has none any more.
        fields = sorted(await self._snapshot_fields(), key=lambda field: tuple(json.loads(field)))
        for start in range(0, len(fields), page_size):
            snapshots = await self._snapshots_of(fields[start : start + page_size])
            page = decode_run_states(snapshot for snapshot in snapshots if snapshot is not None)
            if page:
                yield page

    async def owned_active_states(self, owns: Callable[[str], bool]) -> list[RunState]:
        # A field is composite(c, w, p), and the instance key is "c#w#p": the owned fields are chosen from the
        # field names alone, and only their snapshots are read and decoded, a page at a time.
        fields = [field for field in await self._snapshot_fields() if owns("#".join(json.loads(field)))]
        states: list[RunState] = []
        for start in range(0, len(fields), ACTIVE_STATES_PAGE):
            snapshots = await self._snapshots_of(fields[start : start + ACTIVE_STATES_PAGE])
            states += decode_run_states(snapshot for snapshot in snapshots if snapshot is not None)
        return states

    @_translate_errors
    async def _snapshot_fields(self) -> list[str]:
        return list(await _reply(self._open.client.hkeys(self.keys.snapshots)))

    @_translate_errors
    async def _snapshots_of(self, fields: list[str]) -> list[str | None]:
        return list(await _reply(self._open.client.hmget(self.keys.snapshots, fields)))

    @_translate_errors
    async def active_states_by_trigger(self, trigger_id: str) -> list[RunState]:
        snapshots = await self._indexed_snapshots(self.keys.by_trigger(trigger_id))
        return decode_run_states(snapshots, sort=True)

    @_translate_errors
    async def events(self, instance: WorkflowInstance) -> list[StoredEvent]:
        # Entries are appended in counter order: the commit rule only accepts increasing counters.
        entries = await _reply(self._open.client.lrange(self.keys.events(instance), 0, -1))
        return [decode_event_entry(entry) for entry in entries]

    @_translate_errors
    async def latest_event_counter(self, instance: WorkflowInstance) -> int:
        latest = await _reply(self._open.client.lindex(self.keys.events(instance), -1))
        return -1 if latest is None else decode_event_entry(latest).counter

    @_translate_errors
    async def latest_event_counters(self, instances: Sequence[WorkflowInstance]) -> list[int]:
        if not instances:
            return []
        counters = await self._open.latest_counters(keys=[self.keys.events(instance) for instance in instances])
        return [int(counter) for counter in counters]

    @_translate_errors
    async def delete_expired_history(self, finished_before_millis: int, limit: int) -> int:
        check_limit(limit)
        # Bounded: one range read of the finished index, then one script over at most `limit` instances, which
        # deletes only those still finished before the cutoff (a trigger may have come in between).
        fields: list[str] = await self._open.client.zrangebyscore(
            self.keys.finished, "-inf", f"({finished_before_millis}", start=0, num=limit
        )
        if not fields:
            return 0
        keys = [self.keys.snapshots, self.keys.finished]
        args: list[str | int] = [finished_before_millis]
        for field in fields:
            component_id, workflow_id, parameter = json.loads(field)
            keys += [self.keys.events_of(field), self.keys.parameters(component_id, workflow_id)]
            args += [field, parameter]
        deleted = await self._open.expire_history(keys=keys, args=args)
        return int(deleted)

    @_translate_errors
    async def instance_parameters(
        self,
        workflow_id: WorkflowId,
        start: str | None = None,
        stop: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[str]:
        check_limit(limit)
        key = self.keys.parameters(workflow_id.component_id, workflow_id.id)
        low = "-" if start is None else f"[{start}"
        high = "+" if stop is None else f"({stop}"
        page = {"start": None if limit is None else 0, "num": limit}
        parameters: list[str]
        if newest_first:
            parameters = await self._open.client.zrevrangebylex(key, high, low, **page)
        else:
            parameters = await self._open.client.zrangebylex(key, low, high, **page)
        return parameters

    # -- execution output -----------------------------------------------------------------------------------

    @_translate_errors
    async def put_execution_output(self, output: ExecutionOutput) -> None:
        await self._open.put_output(
            keys=[self.keys.output(output.instance, output.execution_id), self.keys.outputs(output.instance)],
            args=[
                output.execution_id,
                output.ended_at,
                output.size,
                output.output,
                "" if output.expires_at is None else output.expires_at,
            ],
        )

    @_translate_errors
    async def execution_output(self, instance: WorkflowInstance, execution_id: str) -> ExecutionOutput | None:
        ended_at, text, expires_at = await _reply(
            self._open.client.hmget(self.keys.output(instance, execution_id), ["ended_at", "output", "expires_at"])
        )
        if ended_at is None:
            return None
        return ExecutionOutput(instance, execution_id, int(ended_at), text, int(expires_at) if expires_at else None)

    @_translate_errors
    async def execution_outputs(self, instance: WorkflowInstance) -> list[OutputSummary]:
        index = self.keys.outputs(instance)
        execution_ids = await self._open.client.zrange(index, 0, -1)
        async with self._open.client.pipeline(transaction=False) as pipe:
            for execution_id in execution_ids:
                pipe.hmget(self.keys.output(instance, execution_id), ["ended_at", "size"])
            found = await pipe.execute()
        summaries = []
        for execution_id, (ended_at, size) in zip(execution_ids, found, strict=True):
            if ended_at is None:  # expired since: its index entry goes too
                output_key = self.keys.output(instance, execution_id)
                await self._open.unindex_expired(keys=[index, output_key], args=[execution_id])
            else:
                summaries.append(OutputSummary(execution_id=execution_id, ended_at=int(ended_at), size=int(size)))
        return sorted(summaries, key=lambda summary: (summary.ended_at, summary.execution_id))

    async def delete_expired_outputs(self, limit: int) -> int:
        """Redis deletes expired outputs itself (key TTLs)."""
        check_limit(limit)
        return 0

    async def _indexed_snapshots(self, index_key: str) -> list[str]:
        snapshots: list[str] = await self._open.indexed_snapshots(keys=[index_key, self.keys.snapshots])
        return snapshots
