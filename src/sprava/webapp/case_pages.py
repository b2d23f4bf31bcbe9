"""Cases, and their export as case files, for coordinators.

A case file hands evidence to someone outside the team, so only a coordinator (the role
that may export the catalogue) sees these pages. The export is the same as
``sprava export case``: a signed BagIt bag, zipped, recorded as a custody event naming
the recipient; the recipient typed in the form must be the one the case was prepared
for. The bag is written to a temporary file in the instance folder (it may be many
gigabytes: never in memory), sent as a download, and removed once sent.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.casefile.export import default_name, export_case
from sprava.catalogue import cases, schema
from sprava.errors import SpravaError
from sprava.webapp.page import _, render
from sprava.webapp.visitor import PageRoute, VisitorDep, form_of, instance_of, require, text_field

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/cases", response_class=HTMLResponse)
def case_list(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.EXCHANGE)
    page = cases.list_cases(instance_of(request), limit=200)
    return render(request, "cases.html", title=_("Cases"), cases=page.items, total=page.total)


def _case_page(request: Request, principal: Principal, case_id: str, *, status: int = 200,
               problem: SpravaError | None = None, typed: str = "") -> HTMLResponse:
    case = cases.get_case(instance_of(request), case_id)
    return render(request, "case.html", title=_("Case"), case=case, status=status,
                  problem=problem, typed=typed)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, principal: VisitorDep, case_id: str) -> HTMLResponse:
    require(principal, Capability.EXCHANGE)
    return _case_page(request, principal, schema.entity_id(case_id, "case_id"))


@router.post("/cases/{case_id}/export", response_model=None)
async def case_export(request: Request, principal: VisitorDep, case_id: str) -> Response:
    """Write the case file and send it; a wrong recipient or a case that changed during
    the export gets the case page again with the reason, and nothing is sent."""
    require(principal, Capability.EXCHANGE)
    case_id = schema.entity_id(case_id, "case_id")
    form = await form_of(request)
    recipient = text_field(form, "recipient")
    instance = instance_of(request)
    spool = Path(tempfile.mkdtemp(prefix="case-export-", dir=instance.settings.home))
    name = default_name(case_id, datetime.now(UTC), zipped=True)
    try:
        done = await anyio.to_thread.run_sync(lambda: export_case(
            instance, case_id, recipient=recipient, out=spool / name, zipped=True,
            actor=principal.actor))
    except SpravaError as exc:
        shutil.rmtree(spool, ignore_errors=True)
        if exc.http_status >= 500:
            raise
        return _case_page(request, principal, case_id, status=exc.http_status, problem=exc,
                          typed=recipient)
    except BaseException:
        shutil.rmtree(spool, ignore_errors=True)
        raise
    return FileResponse(done.path, media_type="application/zip", filename=name,
                        headers={"Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"},
                        background=BackgroundTask(shutil.rmtree, spool, True))

