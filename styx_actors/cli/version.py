"""The version the CLI reports (`styx version`, `--version`) and sends in its User-Agent."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("styx-actors")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "unknown"

VERSION_TEXT = f"Styx CLI {VERSION}"
