"""The store-marker trap, as a user meets it with `styx serve`: after a run on the default store, another
store starts cleanly (each store has its own marker in the data dir); the default store coming back empty
is refused with the marker file's full path, STYX_DATA_DIR and what to do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from styx_actors.store.marker import marker_file
from styx_actors.store.sqlite import SqliteStore
from tests.conftest import free_port
from tests.e2e.conftest import ServeProcess

# The in-process actors and no containers: the marker is checked before either matters.
QUICK_SERVICE = {"STYX_ACTOR_SYSTEM": "local", "STYX_RUNNER": "noop"}


def serve_once(store_url: str, data_dir: Path) -> None:
    """`styx serve` until it is ready, then stopped."""
    service = ServeProcess(store_url, data_dir, **QUICK_SERVICE)
    service.start()
    service.stop()


def test_another_store_starts_after_the_default_one_and_the_emptied_default_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()  # where ServeProcess keeps the service's log
    serve_once("", data_dir)  # the default store: SQLite under the data dir
    serve_once(f"sqlite:///{tmp_path / 'fresh.db'}", data_dir)  # refused before markers were kept per store

    default_db = data_dir / "styx.db"
    for file in data_dir.glob("styx.db*"):  # the database and its write-ahead log: its data is lost
        file.unlink()
    env = {**os.environ, "STYX_DATA_DIR": str(data_dir), "STYX_PORT": str(free_port()), **QUICK_SERVICE}
    env.pop("STYX_STORE", None)
    refused = subprocess.run(["styx", "serve"], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    remembered_in = marker_file(data_dir, SqliteStore(default_db))
    assert remembered_in is not None and remembered_in.exists()
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(f"styx serve: Refusing to start on the store at sqlite:///{default_db}: ")
    assert f"delete {remembered_in} (the data dir is STYX_DATA_DIR, default ~/.styx-actors)" in message

    remembered_in.unlink()  # what the message says to do, to start afresh on purpose
    serve_once("", data_dir)
