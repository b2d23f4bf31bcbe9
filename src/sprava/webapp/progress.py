"""Live progress of background work: the JSON that ``static/progress.js`` polls so that
the dashboard's jobs in progress and an item's analysis state change without a reload.

Progressive enhancement only: without JavaScript the pages show the state at the time
they were loaded, and a reload shows the new one (no meta refresh: it moves readers of
screen readers and keyboard users away from where they were).

``GET /jobs/progress?item=SHA256&item=…`` answers, for the session's account:

* ``jobs``: the queued and running jobs on the items in the reader's scope (an
  uploader's own items only; a viewer's redacted copies only), as the dashboard lists
  them, with ``total`` and ``summary`` (the sentence the dashboard shows, in the
  reader's language);
* ``items``: for each item asked for (at most :data:`MAX_ITEMS`), the state of its
  latest analysis job, that state in words, and for the roles that see originals the
  status of each analysis step.

Nothing is recorded: job states say nothing of an item's content. Failures are the
API's JSON error shape (401 without a session, 404 for an item out of scope, exactly as
for one that is not held).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from sprava.accounts.roles import Capability
from sprava.api.responses import SafeJSONResponse
from sprava.api.routes_items import scope, sha_of
from sprava.backends.db.engine import read_transaction
from sprava.errors import BadInputError, NotFoundError, PermissionDeniedError
from sprava.store.items import in_scope
from sprava.webapp.evidence_query import analysis_progress, jobs_in_progress
from sprava.webapp.page import HEADERS, WORDS, Formatter, _, language
from sprava.webapp.visitor import instance_of, principal_of

MAX_ITEMS = 50
JOBS_SHOWN = 10
ACTIVE = ("queued", "running")
router = APIRouter(include_in_schema=False)  # not a PageRoute: errors are JSON


def words(say: Callable[[str], str]) -> Callable[[str], str]:
    """A stored value (state, kind) in the reader's language, as the pages write it."""
    return lambda value: say(WORDS[value]) if value in WORDS else value


def analysis_text(say: Callable[[str], str], state: str, steps: dict[str, str]) -> str:
    """An item's analysis as its page shows it: the job's state while it is waiting or
    running, and the outcome of each step recorded so far."""
    word = words(say)
    done = "; ".join(f"{step}: {word(status)}" for step, status in sorted(steps.items()))
    if not done:
        return word(state)
    return f"{word(state)} ({done})" if state in ACTIVE else done


def jobs_summary(say: Callable[[str], str], ngettext: Callable[[str, str, int], str],
                 fmt: Formatter, total: int) -> str:
    """The sentence above the dashboard's list of jobs in progress."""
    if not total:
        return say(_("No jobs are waiting or running."))
    return ngettext("%(num)s job is waiting or running.",
                    "%(num)s jobs are waiting or running.", total) % {
                        "num": fmt.number(total)}


@router.get("/jobs/progress")
def progress(request: Request) -> SafeJSONResponse:
    principal = principal_of(request)
    if principal.account.must_change_password:
        raise PermissionDeniedError("change the one-time password first",
                                    code="password-change-required")
    asked = request.query_params.getlist("item")
    if len(asked) > MAX_ITEMS:
        raise BadInputError(f"item: at most {MAX_ITEMS} at a time", code="too-many-items")
    shas = list(dict.fromkeys(sha_of(value) for value in asked))
    where = scope(principal)
    full = principal.can(Capability.ITEMS_ALL) or principal.can(Capability.ITEMS_OWN)
    lang = language(request)
    say, word, fmt = lang.gettext, words(lang.gettext), Formatter(lang.code)
    with read_transaction(instance_of(request).engine) as conn:
        for sha in shas:
            if not in_scope(conn, sha, **where):
                raise NotFoundError(f"no item sha256:{sha} is held", code="item-not-found")
        jobs, total = jobs_in_progress(conn, where, limit=JOBS_SHOWN)
        states = analysis_progress(conn, shas)
    items: dict[str, dict[str, Any]] = {}
    for sha, (state, steps) in states.items():
        entry: dict[str, Any] = {"state": state, "label": word(state),
                                 "settled": state not in ACTIVE}
        if full:
            entry["steps"] = steps
            entry["detail"] = analysis_text(say, state, steps)
        items[sha] = entry
    body = {
        "jobs": {"total": total, "total_text": fmt.number(total),
                 "summary": jobs_summary(say, lang.ngettext, fmt, total),
                 "shown": [{"item": j["item_sha256"], "short": j["item_sha256"][:16],
                            "text": f"{word(j['kind'])} · {word(j['status'])}"}
                           for j in jobs]},
        "items": items,
    }
    return SafeJSONResponse(body, headers={
        "Cache-Control": "no-store", "Content-Language": lang.code,
        "X-Content-Type-Options": HEADERS["X-Content-Type-Options"]})
