"""Persistence: the Store interface (base.py) and its backends, chosen by URL with `open_store`."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from styx_actors.store.base import ExecutionOutput, OutputSummary, Store, StoredEvent, StoreError, Transition

__all__ = ["ExecutionOutput", "OutputSummary", "Store", "StoreError", "StoredEvent", "Transition", "open_store"]

URL_FORMS = "sqlite:///PATH, sqlite://:memory: or redis://HOST:PORT/DB[?prefix=NAME]"


def open_store(url: str) -> Store:
    """The store a URL names, not yet connected: `await store.open()` before use, `close()` after.

    - `sqlite:///PATH`: a SQLite file, relative to the working directory with three slashes, absolute with
      four (`sqlite:////var/lib/styx/styx.db`, what `Settings.store_url()` makes of an absolute data dir);
    - `sqlite://:memory:` (also `sqlite://` and `sqlite:///:memory:`): an in-memory database;
    - `redis://...` or `rediss://...`: any URL redis-py accepts; an optional `prefix` query parameter
      namespaces every key (default "styx").
    """
    scheme, separator, rest = url.partition("://")
    if separator and scheme == "sqlite":
        from styx_actors.store.sqlite import MEMORY, SqliteStore

        path = rest.removeprefix("/")
        if path in ("", MEMORY):
            return SqliteStore(MEMORY)
        return SqliteStore(path)
    if separator and scheme in ("redis", "rediss"):
        from styx_actors.store.redis import DEFAULT_PREFIX, RedisStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefixes = [value for name, value in query if name == "prefix"]
        if len(prefixes) > 1 or (prefixes and not prefixes[0]):
            raise ValueError("invalid Redis store URL: give at most one prefix, and not an empty one")
        redis_url = urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n != "prefix"])))
        return RedisStore(redis_url, prefix=prefixes[0] if prefixes else DEFAULT_PREFIX)
    # Only the scheme is echoed: the rest of a URL may hold a password.
    given = repr(scheme) if separator else "(none)"
    raise ValueError(f"unsupported store URL scheme {given}: expected {URL_FORMS}")
