"""The inbox's routes: the insider's pages (:mod:`sprava.inbox.pages`) and the recipients'
JSON API under ``/api/v1/inbox``. :data:`router` holds both, for ``create_app``.

Recipients need the ``inbox`` capability (coordinators and investigators) *and* to be
assigned by a coordinator; reading also needs their key unlocked for the session
(``POST /inbox/unlock``). Assigning recipients needs the ``accounts`` capability;
moving a file into the vault also needs ``upload``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sprava.accounts.roles import Capability
from sprava.accounts.sessions import Principal
from sprava.api.deps import SESSION_COOKIE, PagingDep, needs
from sprava.api.models import CONFLICT, THROTTLED, PageOut, UploadOut
from sprava.errors import AuthenticationError
from sprava.inbox import pages, recipients, staff
from sprava.inbox.service import Inbox

API_PREFIX = "/api/v1"  # sprava.api.app.PREFIX (not imported: that module imports this one)

Member = Annotated[Principal, Depends(needs(Capability.INBOX))]
Coordinator = Annotated[Principal, Depends(needs(Capability.ACCOUNTS))]
Mover = Annotated[Principal, Depends(needs(Capability.UPLOAD))]
JSONObject = Annotated[dict[str, Any], Body()]


class RecipientOut(BaseModel):
    account_id: str
    username: str
    public_key: str | None
    key_on_server: bool
    assigned_at: datetime
    key_set_at: datetime | None


class SubmissionOut(BaseModel):
    id: str
    pseudonym: str
    created_day: date
    insider_day: date
    staff_day: date | None
    posts: int
    files: int
    replies: int


class FileOut(BaseModel):
    id: str
    name: str
    size: int
    media_type: str
    vault_sha256: str | None


class PostOut(BaseModel):
    seq: int
    day: date
    author: str
    actor: str | None
    message: str | None
    files: list[FileOut]


class ConversationOut(BaseModel):
    id: str
    pseudonym: str
    created_day: date
    insider_day: date
    staff_day: date | None
    posts: list[PostOut]


class ReplyOut(BaseModel):
    seq: int


def _inbox(request: Request) -> Inbox:
    return pages.inbox_of(request)


InboxDep = Annotated[Inbox, Depends(_inbox)]


def credential(request: Request) -> str:
    """The secret this request authenticates with (bearer token first, as ``current``
    reads it); the unlocked key is sealed under it."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie
    raise AuthenticationError("log in first, or send an API token", code="not-authenticated")


Credential = Annotated[str, Depends(credential)]

api = APIRouter(prefix=f"{API_PREFIX}/inbox", tags=["inbox"])


def _recipient_out(info: recipients.RecipientInfo) -> RecipientOut:
    return RecipientOut(account_id=info.account_id, username=info.username,
                        public_key=info.public_key, key_on_server=info.key_on_server,
                        assigned_at=info.assigned_at, key_set_at=info.key_set_at)


@api.get("/recipients", response_model=list[RecipientOut])
def list_recipients(inbox: InboxDep, principal: Member) -> Any:
    """Who receives the inbox, and whose key is set up (public keys only)."""
    return [_recipient_out(r) for r in recipients.list_recipients(inbox)]


@api.post("/recipients", response_model=RecipientOut, status_code=201, responses=CONFLICT)
def assign_recipient(inbox: InboxDep, principal: Coordinator, body: JSONObject) -> Any:
    """Make an account a recipient: ``{"account_id"}`` (a coordinator or investigator)."""
    return _recipient_out(recipients.assign(inbox, principal, body))


@api.delete("/recipients/{account_id}", status_code=204)
def remove_recipient(inbox: InboxDep, principal: Coordinator, account_id: str) -> Response:
    """Stop an account receiving; its key is deleted from the server."""
    recipients.unassign(inbox, principal, account_id)
    return Response(status_code=204)


@api.post("/key", response_model=RecipientOut, responses=CONFLICT)
def set_key(inbox: InboxDep, principal: Member, body: JSONObject) -> Any:
    """Set up one's key: ``{"password"}`` (kept on the server, sealed with the password)
    or ``{"public_key": "age1…"}`` (held offline); ``"replace": true`` to change it."""
    return _recipient_out(recipients.set_key(inbox, principal, body))


@api.post("/unlock", status_code=204, responses=THROTTLED)
def unlock(inbox: InboxDep, principal: Member, secret: Credential,
           body: JSONObject) -> Response:
    """Unlock one's key for this session or token: ``{"password", "new_password"?}``."""
    recipients.unlock(inbox, principal, secret, body)
    return Response(status_code=204)


@api.post("/lock", status_code=204)
def lock(inbox: InboxDep, principal: Member, secret: Credential) -> Response:
    """Forget the unlocked key of this session or token."""
    recipients.lock(inbox, secret)
    return Response(status_code=204)


@api.get("/submissions", response_model=PageOut[SubmissionOut])
def list_submissions(inbox: InboxDep, principal: Member, paging: PagingDep) -> Any:
    """Submissions by pseudonym, the most recently active first (no content)."""
    recipients.require_recipient(inbox, principal)
    page = staff.list_submissions(inbox, limit=paging.limit, offset=paging.offset)
    return {"items": [SubmissionOut(**vars(s)) for s in page.items], "total": page.total,
            "limit": page.limit, "offset": page.offset}


@api.get("/submissions/{submission_id}", response_model=ConversationOut)
def read_submission(inbox: InboxDep, principal: Member, secret: Credential,
                    submission_id: str) -> Any:
    """The conversation, decrypted with the reader's unlocked key (a custody event)."""
    identity = recipients.session_identity(inbox, principal, secret)
    return staff.read(inbox, principal, identity, submission_id)


@api.post("/submissions/{submission_id}/replies", response_model=ReplyOut, status_code=201,
          responses=CONFLICT)
def reply(inbox: InboxDep, principal: Member, submission_id: str,
          body: JSONObject) -> Any:
    """Reply ``{"text"}``: only the holder of the receipt code (and the recipients) can
    read it."""
    recipients.require_recipient(inbox, principal)
    return ReplyOut(seq=staff.reply(inbox, principal, submission_id, body))


@api.get("/submissions/{submission_id}/files/{file_id}", response_class=StreamingResponse,
         responses={200: {"content": {"application/octet-stream": {}}}})
async def download(inbox: InboxDep, principal: Member, secret: Credential,
                   submission_id: str, file_id: str) -> StreamingResponse:
    """One file, decrypted as it is sent (a download, never rendered; a custody event)."""
    identity = await run_in_threadpool(recipients.session_identity, inbox, principal, secret)
    found = await run_in_threadpool(staff.open_file, inbox, principal, identity,
                                    submission_id, file_id)
    return StreamingResponse(found.chunks, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename=\"{file_id}\"; "
                               f"filename*=UTF-8''{_quote(found.name)}"})


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


@api.post("/submissions/{submission_id}/files/{file_id}/vault", response_model=UploadOut,
          status_code=201)
def move_to_vault(inbox: InboxDep, principal: Member, mover: Mover, secret: Credential,
                  submission_id: str, file_id: str,
                  body: Annotated[dict[str, Any] | None, Body()] = None) -> Any:
    """Decrypt one file into the vault as an item with source "insider submission":
    ``{"name"?}`` (default: a neutral name). Custody events name the mover."""
    identity = recipients.session_identity(inbox, principal, secret)
    result = staff.move_to_vault(inbox, principal, identity, submission_id, file_id, body)
    return UploadOut(name=result.name, status=result.status, sha256=result.sha256,
                     size=result.size, media_type=result.media_type,
                     leaf_index=result.leaf_index)


keep_out_of_access_log = pages.keep_out_of_access_log

router = APIRouter()
router.include_router(pages.router)
router.include_router(api)
