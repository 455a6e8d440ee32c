"""The web dashboard (docs/dashboard.md): a single page served at `/`, its assets under `/ui/`."""

from api.dashboard.router import router

__all__ = ["router"]
