"""Live progress, in process, on SQLite and PostgreSQL: the JSON the dashboard's and the
item page's script polls follows real background work, honours each role's scope, speaks
the reader's language, and is the API's error shape when refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from test_webapp import _browser, _photo, _shas, _upload, login

from conftest import Api, make_api
from sprava.instance import Instance
from sprava.jobs.runner import InProcessJobRunner


@pytest.fixture
def web(instance: Instance) -> Iterator[Api]:
    harness = make_api(instance)
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]


def test_progress_follows_the_analysis_of_an_upload_within_the_role(web: Api) -> None:
    uploader = _browser(web)
    csrf = login(uploader, "uploader")
    [sha] = _shas(_upload(uploader, csrf, ("march.jpg", _photo((90, 30, 30)))).text)  # type: ignore[attr-defined]

    dashboard = uploader.get("/")  # background jobs are off in these tests: still queued
    assert re.findall(r"<script[^>]*>", dashboard.text) == ['<script src="/static/progress.js">']
    assert "script-src 'self'" in dashboard.headers["content-security-policy"]
    assert '<p id="jobs-summary" aria-live="polite">1 job is waiting or running.</p>' in \
        dashboard.text
    assert f'<td data-state-of="{sha}">queued</td>' in dashboard.text
    page = uploader.get(f"/items/{sha}")
    assert re.search(r'<span id="analysis-state" data-state-of="' + sha +
                     r'" data-detail data-active aria-live="polite">queued</span>', page.text)
    assert '<script src="/static/progress.js">' in page.text

    queued = uploader.get(f"/jobs/progress?item={sha}")
    assert queued.status_code == 200
    assert queued.headers["cache-control"] == "no-store"
    assert queued.json() == {
        "jobs": {"total": 1, "total_text": "1", "summary": "1 job is waiting or running.",
                 "shown": [{"item": sha, "short": sha[:16], "text": "analysis · queued"}]},
        "items": {sha: {"state": "queued", "label": "queued", "settled": False,
                        "steps": {}, "detail": "queued"}}}

    other = _browser(web)
    login(other, "uploader2")  # another uploader's jobs are not theirs to see
    assert other.get("/jobs/progress").json()["jobs"]["total"] == 0
    hidden = other.get(f"/jobs/progress?item={sha}")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "item-not-found"
    investigator = _browser(web)
    login(investigator, "investigator")
    assert investigator.get("/jobs/progress").json()["jobs"]["total"] == 1

    summary = InProcessJobRunner(web.instance.settings, 1).run_until_idle()
    assert summary.failed == 0
    done = uploader.get(f"/jobs/progress?item={sha}").json()
    assert done["jobs"] == {"total": 0, "total_text": "0",
                            "summary": "No jobs are waiting or running.", "shown": []}
    entry = done["items"][sha]
    assert (entry["state"], entry["settled"]) == ("done", True)
    assert entry["steps"] == {"metadata": "done", "phash": "done", "thumbnail": "done"}
    assert entry["detail"] == "metadata: done; phash: done; thumbnail: done"
    assert entry["detail"] in uploader.get(f"/items/{sha}").text  # as the page says it

    russian = uploader.get(f"/jobs/progress?item={sha}&lang=ru").json()
    assert russian["jobs"]["summary"] == "Нет задач в очереди или в работе."
    assert russian["items"][sha]["label"] == "готово"


def test_progress_is_refused_as_the_api_refuses(web: Api) -> None:
    anonymous = _browser(web)
    refused = anonymous.get("/jobs/progress")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not-authenticated"
    viewer = _browser(web)
    login(viewer, "viewer")
    assert viewer.get("/jobs/progress?item=nonsense").status_code == 422
    many = "&".join(f"item={n:064x}" for n in range(51))
    assert viewer.get(f"/jobs/progress?{many}").json()["error"]["code"] == "too-many-items"
    plain = viewer.get("/")
    assert '<p id="jobs-summary" aria-live="polite">No jobs are waiting or running.</p>' in \
        plain.text
    assert '<ul id="jobs-list" hidden>' in plain.text
