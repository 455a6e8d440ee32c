"""The local Ray of `styx serve` (no STYX_RAY_ADDRESS): reachable from this machine only, its token private.

Loopback. Every Ray component listens where its node's address says: the GCS, the raylet (node and object
managers), each worker's gRPC server, the dashboard agent (gRPC, HTTP, and the Prometheus metrics exporter,
which has no authentication) and the runtime-env agent bind 127.0.0.1 when the node address is a loopback
address, and all interfaces otherwise. `ray.init(_node_ip_address="127.0.0.1")` alone does not give them
that address on Linux: Ray takes a loopback node address for a mistake on a platform that supports
clusters and replaces it by the machine's outward address (`resolve_ip_for_localhost`). Ray keeps loopback
only where clusters are off, which `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` asks for on any platform (despite
its name). Ray reads that variable once, when it is imported: the processes ray.init starts (GCS, raylet,
agents, and the workers the raylet starts) read it from the environment; the driver, which imported Ray
long before, is told through the constant Ray read it into. Both are restored once the node runs, so that
a later `ray start` of this process's children (a test's cluster) may still form a cluster.

The token. Loopback keeps other machines out, not other users of this one: Ray's token authentication
(on by default for a local ray.init) does. Ray reads the token from RAY_AUTH_TOKEN, or from the file named
by RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token, and writes that file itself with the process umask, so
usually readable by everyone. The file is therefore made here first, 0600, or narrowed to 0600.

Tested by tests/cluster/test_ray_loopback.py (every listening socket of the session's processes).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from styx_actors.settings import Settings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Ray's ENABLE_RAY_CLUSTERS_ENV_VAR: "0" keeps a loopback node address (ray/_private/ray_constants.py).
SINGLE_MACHINE_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
TOKEN_VARIABLE = "RAY_AUTH_TOKEN"
TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"
TOKEN_BYTES = 32  # as Ray generates them: 256 random bits, in hex
OWNER_ONLY = 0o600


@contextmanager
def local_ray_init(settings: Settings) -> Iterator[dict[str, Any]]:
    """Wrap the ray.init that starts the local Ray; yields keyword arguments for that call. For a Ray
    cluster (STYX_RAY_ADDRESS) it yields {} and changes nothing: the nodes keep the addresses they were
    started with. Raises ValueError when the token file cannot be made private."""
    if settings.ray_address:
        yield {}
        return
    if os.environ.get(AUTH_MODE_VARIABLE, "").lower() != "disabled":
        make_token_file_private()
    from ray._private import ray_constants  # what the driver read SINGLE_MACHINE_VARIABLE into

    previous_variable = os.environ.get(SINGLE_MACHINE_VARIABLE)
    previous_constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_VARIABLE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield {"_node_ip_address": LOOPBACK}
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous_constant
        if previous_variable is None:
            del os.environ[SINGLE_MACHINE_VARIABLE]
        else:
            os.environ[SINGLE_MACHINE_VARIABLE] = previous_variable


def ray_token_file() -> Path | None:
    """Where Ray reads its token from; None when the environment holds the token itself."""
    if os.environ.get(TOKEN_VARIABLE):
        return None
    named = os.environ.get(TOKEN_PATH_VARIABLE)
    return Path(named) if named else Path.home() / ".ray" / "auth_token"


def make_token_file_private() -> None:
    """Create Ray's token file readable by its owner only, or narrow an existing one to that."""
    path = ray_token_file()
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
        except FileExistsError:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                os.chmod(path, OWNER_ONLY)
                log.warning("Ray's token file %s was readable by other users: now 0600", path)
            return
        with os.fdopen(descriptor, "w") as token_file:
            token_file.write(secrets.token_hex(TOKEN_BYTES))
    except OSError as error:
        raise ValueError(
            f"Cannot keep Ray's token file {path} private (readable by its owner only): {error}"
        ) from error
