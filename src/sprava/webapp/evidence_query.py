"""The reads behind the evidence pages and the dashboard: items with filters, within the
reader's scope, their analysis state and thumbnail; jobs in progress; incidents per week.

The scope is the API's (:func:`sprava.api.routes_items.scope`): every item, the reader's
own uploads, or redacted copies only. Thumbnails (redacted copies made for screens)
are not listed as items of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, not_, select

from sprava.backends.db.catalogue_tables import incident
from sprava.backends.db.tables import (
    analysis,
    derived_item,
    item,
    item_cluster,
    item_name,
    job,
    source,
)
from sprava.jobs.kinds import ANALYSE
from sprava.media.pipeline import THUMBNAIL

KINDS = ("image", "video", "audio", "other")
STATES = ("queued", "running", "done", "failed", "none")


@dataclass(frozen=True)
class ItemFilters:
    kind: str | None = None  # one of KINDS
    source: str | None = None
    state: str | None = None  # one of STATES (the analysis job's)
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    cluster: str | None = None  # near-duplicates: one cluster's members
    # taken (capture time from the item's own metadata) at or after / before; with
    # either set, items without a capture time are left out
    taken_since: datetime | None = None
    taken_until: datetime | None = None


def _scoped(query: Any, uploaded_by: str | None, derived: str | None) -> Any:
    if uploaded_by is not None:
        query = query.where(exists().where(item_name.c.item_sha256 == item.c.sha256,
                                           item_name.c.actor == uploaded_by))
    if derived is not None:
        query = query.where(exists().where(derived_item.c.sha256 == item.c.sha256,
                                           derived_item.c.kind == derived))
    else:
        query = query.where(not_(exists().where(derived_item.c.sha256 == item.c.sha256,
                                                derived_item.c.kind == THUMBNAIL)))
    return query


def _analysis_state() -> Any:
    return (select(job.c.status).where(job.c.item_sha256 == item.c.sha256,
                                       job.c.kind == ANALYSE)
            .order_by(job.c.id.desc()).limit(1).scalar_subquery())


def _filtered(query: Any, filters: ItemFilters) -> Any:
    if filters.kind in ("image", "video", "audio"):
        query = query.where(item.c.media_type.like(f"{filters.kind}/%"))
    elif filters.kind == "other":
        query = query.where(not_(item.c.media_type.like("image/%")),
                            not_(item.c.media_type.like("video/%")),
                            not_(item.c.media_type.like("audio/%")))
    if filters.source:
        query = query.where(exists().where(
            item_name.c.item_sha256 == item.c.sha256, item_name.c.source_id == source.c.id,
            source.c.name == filters.source))
    if filters.state == "none":
        query = query.where(not_(exists().where(job.c.item_sha256 == item.c.sha256,
                                                job.c.kind == ANALYSE)))
    elif filters.state in STATES:
        query = query.where(_analysis_state() == filters.state)
    if filters.cluster:
        query = query.where(exists().where(item_cluster.c.item_sha256 == item.c.sha256,
                                           item_cluster.c.cluster == filters.cluster))
    if filters.since is not None:
        query = query.where(item.c.first_seen >= filters.since)
    if filters.until is not None:
        query = query.where(item.c.first_seen < filters.until)
    if filters.taken_since is not None:
        query = query.where(item.c.captured_at >= filters.taken_since)
    if filters.taken_until is not None:
        query = query.where(item.c.captured_at < filters.taken_until)
    return query


def find_items(conn: Connection, scope: dict[str, str | None], filters: ItemFilters, *,
               limit: int, offset: int, newest_first: bool = True
               ) -> tuple[list[dict[str, Any]], int]:
    """Items in the scope that pass the filters, newest first, and how many there are."""
    first_name = (select(item_name.c.name).where(item_name.c.item_sha256 == item.c.sha256)
                  .order_by(item_name.c.id).limit(1).scalar_subquery())
    thumb = (select(derived_item.c.sha256)
             .where(derived_item.c.original_sha256 == item.c.sha256,
                    derived_item.c.kind == THUMBNAIL).limit(1).scalar_subquery())
    query = _filtered(_scoped(select(
        item.c.sha256, item.c.size, item.c.media_type, item.c.first_seen,
        item.c.captured_at, first_name.label("name"), thumb.label("thumbnail"),
        _analysis_state().label("state")), **scope), filters)
    order = (item.c.first_seen.desc(), item.c.sha256) if newest_first else (
        item.c.first_seen, item.c.sha256)
    rows = conn.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    total = conn.execute(_filtered(_scoped(select(func.count()).select_from(item), **scope),
                                   filters)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


def source_names(conn: Connection) -> list[str]:
    return list(conn.execute(select(source.c.name).order_by(source.c.name)).scalars())


def thumbnail_of(conn: Connection, sha256: str) -> str | None:
    found = conn.execute(select(derived_item.c.sha256).where(
        derived_item.c.original_sha256 == sha256, derived_item.c.kind == THUMBNAIL)
        .limit(1)).scalar_one_or_none()
    return str(found) if found is not None else None


def jobs_in_progress(conn: Connection, scope: dict[str, str | None], limit: int = 10
                     ) -> tuple[list[dict[str, Any]], int]:
    """Queued and running jobs on items in the scope (oldest first), and their number."""
    where = and_(job.c.status.in_(("queued", "running")),
                 job.c.item_sha256.in_(_scoped(select(item.c.sha256), **scope)))
    rows = conn.execute(select(job.c.kind, job.c.status, job.c.item_sha256, job.c.created_at)
                        .where(where).order_by(job.c.id).limit(limit)).all()
    total = conn.execute(select(func.count()).select_from(job).where(where)).scalar_one()
    return [dict(r._mapping) for r in rows], int(total)


def analysis_progress(conn: Connection, shas: list[str]
                      ) -> dict[str, tuple[str, dict[str, str]]]:
    """For each item: the state of its latest analysis job (``none`` without one) and
    the status of each analysis step recorded so far."""
    found: dict[str, tuple[str, dict[str, str]]] = {sha: ("none", {}) for sha in shas}
    if not shas:
        return found
    latest = (select(job.c.item_sha256, func.max(job.c.id).label("id"))
              .where(job.c.kind == ANALYSE, job.c.item_sha256.in_(shas))
              .group_by(job.c.item_sha256).subquery())
    for sha, status in conn.execute(select(job.c.item_sha256, job.c.status)
                                    .join(latest, latest.c.id == job.c.id)):
        found[sha] = (str(status), found[sha][1])
    for sha, step, status in conn.execute(
            select(analysis.c.item_sha256, analysis.c.step, analysis.c.status)
            .where(analysis.c.item_sha256.in_(shas)).order_by(analysis.c.step)):
        found[sha][1][str(step)] = str(status)
    return found


def incidents_per_week(conn: Connection, weeks: int, now: datetime | None = None
                       ) -> list[tuple[datetime, int]]:
    """Incidents by the week (Monday, UTC) of their start, for the ``weeks`` weeks up to
    the latest incident's (or up to now, if that is earlier or there is none), oldest
    first; weeks without incidents count zero. Records of past events are often made
    long after: a window ending today would show nothing of them."""
    now = now or datetime.now(UTC)
    latest = conn.execute(select(func.max(incident.c.start_at))).scalar_one_or_none()
    if latest is not None:
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        now = min(now, latest)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    counts = [0] * weeks
    for (start,) in conn.execute(select(incident.c.start_at)
                                 .where(incident.c.start_at >= first)):
        moment = start if start.tzinfo else start.replace(tzinfo=UTC)
        index = (moment.astimezone(UTC) - first).days // 7
        if 0 <= index < weeks:
            counts[index] += 1
    return [(first + timedelta(weeks=i), n) for i, n in enumerate(counts)]
