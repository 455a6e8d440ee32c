"""Prints the PID of every live actor of one Ray namespace, as JSON `{actor name: pid}`.

`python -m benchmarks.chaos.ray_actors GCS_ADDRESS NAMESPACE`, run by the chaos runner in a process of its
own: it asks the service's GCS directly (Ray's GcsClient, the call `ray list actors` ends in) without joining
the cluster as a driver, since a driver of a Ray that is then SIGKILLed would take its own process down
with it. The service's local Ray uses token authentication, so RAY_AUTH_MODE=token must be set (the token is
the service's: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).
"""

from __future__ import annotations

import asyncio
import json
import sys

ALIVE = 2  # ActorTableData.ActorState.ALIVE
GCS_TIMEOUT_SECONDS = 10


async def actor_pids(gcs_address: str, namespace: str) -> dict[str, int]:
    # Ray's own client of the GCS: private, but what its state API uses.
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    client = GcsClient(address=gcs_address)
    actors = await client.async_get_all_actor_info(timeout=GCS_TIMEOUT_SECONDS)
    return {
        info.name: info.pid
        for info in actors.values()
        if info.ray_namespace == namespace and info.state == ALIVE and info.name and info.pid
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(actor_pids(argv[0], argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
