"""Every tunable of the service, read from `STYX_*` environment variables (pydantic-settings).

Defaults are Styx's own (docs/semantics.md#constants, docs/configuration.md); tests and operators shorten them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from styx_actors.docker_image import normalize_registry
from styx_actors.timeutil import parse_duration

# Durations are given as seconds (`180`, `0.5`) or ISO-8601 (`PT3M`).
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_BYTE_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?[bkmg]?", re.IGNORECASE)


def _byte_size(text: str) -> str:
    if not _BYTE_SIZE.fullmatch(text):
        raise ValueError(f"{text!r} is not a size: a number with an optional unit b, k, m or g (e.g. 512m)")
    return text


def _no_limit_as_none(text: object) -> object:
    return None if text in ("", "0") else text


# Docker's sizes (`512m`, `2g`); for a limit, `0` or empty means none.
ByteSize = Annotated[str, AfterValidator(_byte_size)]
ByteLimit = Annotated[ByteSize | None, BeforeValidator(_no_limit_as_none)]

# Docker's default set minus what batch jobs do not need: raw sockets (ping, spoofing), device nodes,
# chroot, audit records and file capabilities (Kubernetes' "restricted" profile drops them all: ["ALL"]).
DEFAULT_CAP_DROP = ("NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP")
_CAPABILITY = re.compile(r"[A-Z][A-Z0-9_]*")


def _capabilities(names: list[str]) -> list[str]:
    """Upper case without the `CAP_` prefix, as Docker takes them; `ALL` alone when it is named."""
    normalized = [name.strip().upper().removeprefix("CAP_") for name in names]
    for name in normalized:
        if not _CAPABILITY.fullmatch(name):
            raise ValueError(f"{name!r} is not a capability name (e.g. NET_RAW, or ALL)")
    return ["ALL"] if "ALL" in normalized else list(dict.fromkeys(normalized))


Capabilities = Annotated[list[str], AfterValidator(_capabilities)]
Registries = Annotated[list[str], AfterValidator(lambda names: [normalize_registry(name) for name in names])]

# styx-standalone.conf's stale-state TTLs; `default` applies to every state not listed.
DEFAULT_STALE_STATE_TTLS: dict[str, timedelta] = {
    "new": timedelta(minutes=30),
    "submitted": timedelta(minutes=10),
    "running": timedelta(hours=24),
    "terminated": timedelta(minutes=30),
    "failed": timedelta(minutes=30),
    "default": timedelta(days=2),
}


class WhitelistedResource(BaseModel):
    """A Google Cloud resource whose service accounts may call the API (docs/auth.md#google-id-tokens)."""

    type: Literal["organization", "folder", "project"]
    id: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STYX_", extra="ignore")

    # Service
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".styx-actors")
    store: str = ""  # sqlite:///PATH or redis://HOST:PORT/DB; empty = SQLite file under data_dir
    runner: Literal["docker", "noop"] = "docker"
    # Where the actors run: "ray" (what `styx serve` runs: named actors on a local or remote Ray) or "local"
    # (every actor in the API process, without Ray: quick trials and fast tests).
    actor_system: Literal["ray", "local"] = "ray"
    ray_address: str | None = None
    api_only: bool = False  # serve the API over actors another `styx serve` started (never create them)
    ray_namespace: str = "styx"  # several installations can share one Ray cluster under different namespaces
    auth: Literal["google", "none", "auto"] = "auto"
    environment: str = "production"
    max_body_bytes: int = 1 << 20  # larger request bodies get a 413
    access_log: bool = False  # uvicorn's line per request; changes are in the audit log either way
    debug: bool = False  # `styx serve --debug`: Ray's own banners and warnings are shown too
    rate_limit_per_second: float | None = Field(default=None, gt=0)  # per client address; None = no limit (429 past it)
    rate_limit_burst: float | None = Field(
        default=None, ge=1
    )  # requests a client may save up; None = one second's worth

    # HTTP layer (api/host_check.py, api/server.py, docs/security.md)
    # With authentication off: Host names answered besides loopback and STYX_HOST ("*" = any), and origins
    # whose writes are accepted besides the service's own.
    allowed_hosts: list[str] = Field(default_factory=list)
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)  # request line and headers; more get a 431
    http_max_url_bytes: int = Field(default=8 * 1024, ge=256)  # request target (path and query); more get a 414
    http_header_timeout: Duration = timedelta(seconds=10)  # a request head not complete by then: closed
    http_body_timeout: Duration = timedelta(seconds=30)  # a request body not complete this long after its head: closed
    http_keep_alive_timeout: Duration = timedelta(seconds=5)  # idle keep-alive connections closed after this
    http_max_connections: int = Field(default=512, ge=1)  # open connections; more get a 503 and are closed

    # Actor placement
    placement: Literal["sharded", "dedicated"] = "sharded"
    shard_count: int = 4
    shard_resources: dict[str, float] = Field(
        default_factory=dict
    )  # Ray resources a shard needs, e.g. {"styx_worker": 0.001}

    # Loop intervals (each run is jittered by ±50% like Styx's fixed-delay loops)
    trigger_tick_interval: Duration = timedelta(seconds=1)
    backfill_tick_interval: Duration = timedelta(seconds=1)
    state_manager_tick_interval: Duration = timedelta(seconds=15)

    # Retry policy (docs/semantics.md#retries)
    retry_base_delay: Duration = timedelta(seconds=180)
    retry_max_exponent: int = 4
    missing_deps_delay: Duration = timedelta(seconds=600)
    max_retry_cost: float = 50.0
    global_disabled_min_delay: Duration = timedelta(seconds=150)
    global_disabled_max_delay: Duration = timedelta(seconds=450)

    # Timeouts (docs/semantics.md#timeouts)
    stale_state_ttls: dict[str, Duration] = Field(default_factory=lambda: dict(DEFAULT_STALE_STATE_TTLS))
    max_running_timeout: Duration | None = timedelta(hours=48)

    # Throughput limits
    workflow_cache_ttl: Duration = timedelta(seconds=30)  # retry conditions and running timeouts
    backfill_max_triggers_per_tick: int = 10

    # Docker runner
    docker_host: str | None = None  # falls back to DOCKER_HOST, then the local socket
    docker_runner_id: str = "default"
    # On a Ray cluster: executions one node's runner runs at once; more go to another node with room (0 = no limit)
    runner_capacity: int = Field(default=0, ge=0)
    container_grace_period: Duration = timedelta(seconds=120)
    keep_containers: bool = False  # debug: never remove finished containers
    # Container confinement (docs/runner.md, "Limits and security defaults")
    container_memory_limit: ByteLimit = "2g"  # swap included; "0" = no limit
    container_cpu_limit: float | None = Field(default=None, gt=0)  # CPUs, e.g. 1.5; none by default (see docs)
    container_pids_limit: int = Field(default=1024, ge=0)  # processes and threads; 0 = no limit
    container_log_max_size: ByteSize = "10m"  # json-file logs: size of one file ...
    container_log_max_files: int = Field(default=3, ge=1)  # ... and files kept
    container_cap_drop: Capabilities = Field(default_factory=lambda: list(DEFAULT_CAP_DROP))  # ["ALL"]: every one
    container_read_only_root: bool = False  # read-only root filesystem, with a tmpfs at /tmp ...
    container_tmp_size: ByteSize = "256m"  # ... of this size (counted in the memory limit)
    container_user: str | None = None  # None: the image's user (docs/runner.md says why)
    termination_log_dir: Path | None = None  # None: DATA_DIR/termination-logs
    allowed_registries: Registries = Field(default_factory=list)  # image registries; empty = any
    docker_call_timeout: Duration = timedelta(seconds=60)
    # Label value: installations sharing one engine never see or touch each other's containers.
    docker_installation_id: str = "styx-actors"
    container_network: str | None = None  # Docker network mode, e.g. "none"; None = the engine's default
    container_stop_timeout: Duration = timedelta(seconds=10)  # SIGTERM, then SIGKILL after this (halt, timeout)
    image_pull_timeout: Duration = timedelta(minutes=10)
    # The end of each execution's output, kept in the store when its container is removed (docs/runner.md,
    # "Output after the container"): at most this many bytes (0 = keep none; at most the 16 MiB the API
    # serves), for this long after the execution ended (0 = forever).
    output_tail_bytes: int = Field(default=256 * 1024, ge=0, le=16 * 1024 * 1024)
    output_retention: Duration = timedelta(days=30)
    # The event log of a finished instance, and its entry in the instances listing, are deleted this long after
    # its last transition (docs/store.md, "Retention and sizing"); 0 = kept forever.
    event_retention: Duration = timedelta(days=30)

    # Authentication with Google ID tokens (docs/auth.md#google-id-tokens)
    auth_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    auth_allowed_audiences: list[str] = Field(default_factory=list)
    auth_domain_whitelist: list[str] = Field(default_factory=list)
    auth_resource_whitelist: list[WhitelistedResource] = Field(default_factory=list)

    # Service-account usage authorization (docs/auth.md#service-account-usage-iam)
    authorization_role: str | None = None  # e.g. roles/iam.serviceAccountUser; set = check Google IAM
    authorization_policy_file: Path | None = None  # set = check a static YAML/JSON policy instead
    authorization_admins: list[str] = Field(default_factory=list)  # user:/serviceAccount:/group: entries
    authorization_blocklist: list[str] = Field(default_factory=list)
    authorization_require_all: bool = False
    authorization_require_workflows: list[str] = Field(default_factory=list)  # component#workflow keys
    authorization_message: str = ""
    authorization_gsuite_user: str | None = None  # Workspace user the group lookups act as
    # With authentication on, only these (user:/serviceAccount:/group: entries) may change the global config
    # and resources (docs/auth.md, "Scheduler administrators")
    scheduler_admins: list[str] = Field(default_factory=list)

    # Google REST APIs used by authentication and authorization
    iam_base_url: str = "https://iam.googleapis.com"
    crm_base_url: str = "https://cloudresourcemanager.googleapis.com"
    directory_base_url: str = "https://admin.googleapis.com"
    google_api_timeout: Duration = timedelta(seconds=10)
    google_api_retry_deadline: Duration = timedelta(seconds=10)  # retries of 5xx and network errors

    @field_validator("stale_state_ttls")
    @classmethod
    def _ttls_need_default(cls, ttls: dict[str, timedelta]) -> dict[str, timedelta]:
        """Given TTLs override Styx's defaults state by state."""
        return {**DEFAULT_STALE_STATE_TTLS, **{key.lower(): value for key, value in ttls.items()}}

    @field_validator("output_retention", "event_retention")
    @classmethod
    def _retention_not_negative(cls, retention: timedelta, info: ValidationInfo) -> timedelta:
        if retention < timedelta(0):
            what = str(info.field_name).removesuffix("_retention")
            raise ValueError(f"the {what} retention cannot be negative (0: kept forever)")
        return retention

    @model_validator(mode="after")
    def _history_outlives_timeouts(self) -> Settings:
        """A finished instance's timeout timers stay armed in its shard until their deadline, with its run's
        counters, and a re-trigger after its history was deleted numbers from 0 again: such a timer must be gone
        by then, or it could time out the new run (docs/store.md, "Retention and sizing")."""
        longest = max([*self.stale_state_ttls.values(), self.max_running_timeout or timedelta(0)])
        if self.event_retention and self.event_retention <= longest:
            raise ValueError(
                f"the event retention ({self.event_retention}) must be longer than the longest state timeout "
                f"({longest}: STYX_STALE_STATE_TTLS, STYX_MAX_RUNNING_TIMEOUT), or 0 (kept forever)"
            )
        return self

    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.data_dir / 'styx.db'}"
