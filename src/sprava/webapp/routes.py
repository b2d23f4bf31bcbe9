"""All the team's pages, as one router for :func:`sprava.api.app.create_app`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from sprava.webapp import (
    account_pages,
    case_pages,
    dashboard,
    evidence,
    incident_pages,
    incident_views,
    person_pages,
    progress,
    redaction_pages,
    review,
    search_page,
    team_pages,
    unit_pages,
    upload,
)
from sprava.webapp.page import static_file
from sprava.webapp.upload import PATH as UPLOAD_PATH

__all__ = ["UPLOAD_PATH", "router"]


def router() -> APIRouter:
    joined = APIRouter(include_in_schema=False)

    @joined.get("/static/style.css")
    def _style() -> Response:
        return static_file("style.css", "text/css")

    @joined.get("/static/icon.svg")
    def _icon() -> Response:
        return static_file("icon.svg", "image/svg+xml")

    @joined.get("/static/upload.js")
    def _upload_script() -> Response:
        return static_file("upload.js", "text/javascript")

    @joined.get("/static/progress.js")
    def _progress_script() -> Response:
        return static_file("progress.js", "text/javascript")

    for part in (account_pages, dashboard, evidence, redaction_pages, upload, incident_views,
                 incident_pages, unit_pages, person_pages, review, case_pages, search_page,
                 team_pages, progress):
        joined.include_router(part.router)
    return joined
