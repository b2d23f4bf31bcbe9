"""Response shapes that are not domain dataclasses (those are used as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from sprava.accounts.roles import Role
from sprava.accounts.service import Account

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


# Error answers some operations give beyond those every operation may give (401, 403,
# 404, 413, 422: see create_app), for the OpenAPI description.
CONFLICT: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorOut,
    "description": "Conflict: the record's state does not allow this (e.g. a step its "
                   "status rules out, or a review by the claim's own author)"}}
THROTTLED: dict[int | str, dict[str, Any]] = {429: {
    "model": ErrorOut,
    "description": "Too many failed logins: logins are paused for a while",
    "headers": {"Retry-After": {"required": True, "schema": {"type": "integer"},
                                "description": "seconds to wait before trying again"}}}}


class AccountOut(BaseModel):
    id: str
    username: str
    role: Role
    reviewer: bool
    may_review: bool
    active: bool
    totp_enabled: bool
    must_change_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, acc: Account) -> AccountOut:
        return cls(id=acc.id, username=acc.username, role=acc.role, reviewer=acc.reviewer,
                   may_review=acc.may_review, active=acc.active,
                   totp_enabled=acc.totp_enabled,
                   must_change_password=acc.must_change_password,
                   created_at=acc.created_at, updated_at=acc.updated_at)


class CreatedAccountOut(BaseModel):
    account: AccountOut
    one_time_password: str | None = Field(
        description="shown once; the account must change it at first login")


class PasswordOut(BaseModel):
    one_time_password: str


class SessionOut(BaseModel):
    account: AccountOut
    csrf_token: str | None = Field(
        description="send it back in the X-CSRF-Token header on every request that "
                    "changes something, when logged in by cookie")
    capabilities: list[str]


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewTokenOut(BaseModel):
    token: TokenOut
    secret: str = Field(description="the bearer token; shown once, only its digest is kept")


class TotpOut(BaseModel):
    secret: str
    uri: str


class ItemOut(BaseModel):
    sha256: str
    size: int
    media_type: str
    first_seen: str
    name: str
    names: int
    derived_from: str | None


class UploadOut(BaseModel):
    name: str
    status: str
    sha256: str | None = None
    size: int | None = None
    media_type: str | None = None
    leaf_index: int | None = None


class ChangeOut(BaseModel):
    leaf_index: int
    entity: str
    entity_id: str
    change: str
    actor: str
    at: datetime
    state_sha256: str | None
    note: str | None


class CustodyEventOut(BaseModel):
    leaf_index: int
    leaf_hash: str
    event: dict[str, Any]
