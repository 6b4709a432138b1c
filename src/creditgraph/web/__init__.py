"""The investigator page: static assets (no build step) served by the API under ``/ui``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Where the page is served; ``/`` redirects there.
UI_PATH = "/ui"


def mount_ui(app: FastAPI) -> None:
    """Serve the page at ``/ui/`` and send ``/`` there."""
    app.mount(UI_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/")
