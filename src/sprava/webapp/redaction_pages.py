"""Redaction from an item's page: a preview of the settings chosen, then the real job.

The item page's redaction form has two buttons. **Preview** posts the mode and the
threshold to a page that shows the picture redacted with them, with a **Redact** button
that queues the real job with the same settings, and a form to try others. The preview
picture is made in the request from the original (a downscaled copy, faces obscured as
chosen) and stored nowhere: not in the vault, not in the ledger, not in any cache
(``Cache-Control: no-store``). Everything works without JavaScript.

Who may: exactly those who may redact (coordinators and investigators, who see
originals), and only for an original in their scope: a preview shows nothing a role
that sees only redacted copies could not already see, but it is computed from the
original, so no other role may ask for it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData, QueryParams

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.routes_items import sha_of
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.errors import BadInputError, NotFoundError
from sprava.instance import Instance
from sprava.jobs import queue
from sprava.jobs.kinds import REDACT
from sprava.media.redaction_job import MODES, PREVIEW_SIDE, preview_redaction, redaction_params
from sprava.media.thumbnail import DETECT_SIDE
from sprava.store import items as store_items
from sprava.webapp.evidence import original_in_scope
from sprava.webapp.page import HEADERS, _, render
from sprava.webapp.visitor import (
    PageRoute,
    Redirect,
    VisitorDep,
    form_of,
    instance_of,
    require,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_REDACTABLE = ("image/", "video/")


def chosen_settings(values: FormData | QueryParams) -> tuple[str, float]:
    """The mode and the detection threshold of a redaction form (or a preview's query);
    BadInputError ``bad-field`` or ``bad-threshold`` if they are not usable."""
    raw_mode = values.get("mode")
    mode = raw_mode.strip() if isinstance(raw_mode, str) and raw_mode.strip() else "blur"
    if mode not in MODES:
        raise BadInputError(f"mode: one of {', '.join(MODES)}", code="bad-field")
    raw = values.get("threshold")
    try:
        threshold = float(raw.strip() or "0.2") if isinstance(raw, str) else 0.2
    except ValueError:
        threshold = -1.0
    if not 0.01 <= threshold <= 0.99:  # NaN fails this too
        raise BadInputError("threshold: a number from 0.01 to 0.99", code="bad-threshold")
    return mode, round(threshold, 2)


def _redactable(instance: Instance, principal: Principal, sha: str) -> str:
    """The media type of an original this reader may redact. A redacted copy is not
    redacted again (NotFoundError, as for an item out of scope); anything but a photo or
    a video is BadInputError ``not-redactable``."""
    require(principal, Capability.ITEMS_ALL)
    if not original_in_scope(instance, principal, sha):
        raise NotFoundError(f"sha256:{sha} is a redacted copy", code="item-not-found")
    with read_transaction(instance.engine) as conn:
        media_type = str(store_items.item_record(conn, sha)["media_type"])
    if not media_type.startswith(_REDACTABLE):
        raise BadInputError("only photos and videos can be redacted", code="not-redactable")
    return media_type


@router.post("/items/{sha256}/redact", response_model=None)
async def redact(request: Request, principal: VisitorDep, sha256: str) -> Response:
    """Queue a redacted copy (faces obscured, identifying metadata removed) with the mode
    and detection threshold chosen; it appears among the derived items when done."""
    require(principal, Capability.ITEMS_ALL)
    instance = instance_of(request)
    sha = sha_of(sha256)
    mode, threshold = chosen_settings(await form_of(request))
    params = redaction_params(mode, threshold, False)
    _redactable(instance, principal, sha)
    with write_transaction(instance.engine) as conn:
        queue.enqueue(conn, REDACT, sha, params)
    request.app.state.jobs.poke()
    raise Redirect(f"/items/{sha}?redaction=queued")


@router.post("/items/{sha256}/preview", response_class=HTMLResponse)
async def preview_page(request: Request, principal: VisitorDep, sha256: str) -> HTMLResponse:
    """The picture redacted with the settings of the item page's form, before anything
    is queued, with a button that queues the real redaction with those settings."""
    require(principal, Capability.ITEMS_ALL)
    instance = instance_of(request)
    sha = sha_of(sha256)
    mode, threshold = chosen_settings(await form_of(request))
    media_type = _redactable(instance, principal, sha)
    return render(request, "preview.html", title=_("Preview of the redacted copy"),
                  sha=sha, mode=mode, threshold=f"{threshold:.2f}", modes=MODES,
                  video=media_type.startswith("video/"), side=PREVIEW_SIDE,
                  detect_side=DETECT_SIDE)


@router.get("/items/{sha256}/preview.jpg")
def preview_image(request: Request, principal: VisitorDep, sha256: str) -> Response:
    """The preview picture itself (a JPEG of at most ``PREVIEW_SIDE`` pixels a side),
    made for this request and never cached."""
    require(principal, Capability.ITEMS_ALL)
    instance = instance_of(request)
    sha = sha_of(sha256)
    mode, threshold = chosen_settings(request.query_params)
    _redactable(instance, principal, sha)
    data = preview_redaction(instance, sha, redaction_params(mode, threshold, False))
    return Response(data, media_type="image/jpeg", headers=dict(HEADERS))
