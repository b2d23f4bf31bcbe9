"""The item page's redaction, in process, on SQLite and PostgreSQL: a preview of the mode
and threshold chosen is drawn from the original with faces obscured, stored nowhere
(vault, ledger, jobs, cache), shown only to the roles that may redact; its page queues
the real redaction with the same settings."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from test_webapp import _browser, login

from conftest import Api, make_api
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import derived_item, item, job
from sprava.instance import Instance
from sprava.jobs.kinds import REDACT
from sprava.ledger import log
from sprava.store.ingest import Ingestor

# A real face, read in place from the shared samples; its hand-labelled box
# (tests/assets/faces/face_recognition_boxes.json).
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "face_recognition"
FACE = (370, 115, 610, 420)


@pytest.fixture
def web(instance: Instance) -> Iterator[Api]:
    harness = make_api(instance)
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]


def _held(instance: Instance, name: bytes, data: bytes) -> str:
    result = Ingestor(instance, actor="user:investigator").ingest_chunks(name, iter([data]))
    assert result.sha256 is not None
    return result.sha256


def _state(instance: Instance) -> tuple[int, int, int, int, str]:
    """What a preview must not change: leaves, items, derived items, jobs, blobs."""
    blobs = instance.settings.home / "blobs"
    files = sorted(str(p) for p in blobs.rglob("*") if p.is_file()) if blobs.exists() else []
    with read_transaction(instance.engine) as conn:
        return (log.leaf_count(conn),
                conn.execute(select(func.count()).select_from(item)).scalar_one(),
                conn.execute(select(func.count()).select_from(derived_item)).scalar_one(),
                conn.execute(select(func.count()).select_from(job)).scalar_one(),
                json.dumps(files))


def test_a_preview_shows_the_faces_obscured_and_stores_nothing(web: Api) -> None:
    photo = (SAMPLE / "obama.jpg").read_bytes()
    sha = _held(web.instance, b"portrait.jpg", photo)
    client = _browser(web)
    csrf = login(client, "investigator")
    page = client.get(f"/items/{sha}")
    assert f'formaction="/items/{sha}/preview"' in page.text
    before = _state(web.instance)

    shown = client.post(f"/items/{sha}/preview", data={"csrf": csrf, "mode": "solid",
                                                       "threshold": "0.3"})
    assert shown.status_code == 200, shown.text
    address = f"/items/{sha}/preview.jpg?mode=solid&amp;threshold=0.30"
    assert f'src="{address}"' in shown.text
    assert 'name="threshold" value="0.30"' in shown.text  # the Redact form keeps them
    assert f'action="/items/{sha}/redact"' in shown.text

    picture = client.get(address.replace("&amp;", "&"))
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/jpeg"
    assert picture.headers["cache-control"] == "no-store"
    with Image.open(io.BytesIO(photo)) as opened:
        width, height = opened.size
    with Image.open(io.BytesIO(picture.content)) as opened:
        assert max(opened.size) <= 960
        scale = opened.width / width
        pixels = np.asarray(opened.convert("L"), dtype=np.float64)
        assert abs(opened.height - round(height * scale)) <= 1
        assert not opened.getexif()  # drawn from pixels: no metadata rides along
    x0, y0, x1, y1 = (round(v * scale) for v in FACE)
    face = pixels[y0 + 5:y1 - 5, x0 + 5:x1 - 5]
    assert face.mean() < 12  # the face is painted over
    with Image.open(io.BytesIO(photo)) as opened:
        original = np.asarray(opened.convert("L").resize(pixels.shape[::-1]), dtype=np.float64)
    assert original[y0 + 5:y1 - 5, x0 + 5:x1 - 5].mean() > 60  # ... and was not before
    blurred = client.get(f"/items/{sha}/preview.jpg?mode=blur&threshold=0.5")
    assert blurred.status_code == 200
    assert blurred.content != picture.content
    assert _state(web.instance) == before  # nothing stored, recorded or queued

    queued = client.post(f"/items/{sha}/redact", data={"csrf": csrf, "mode": "solid",
                                                       "threshold": "0.30"})
    assert queued.headers["location"] == f"/items/{sha}?redaction=queued"
    with read_transaction(web.instance.engine) as conn:
        params = conn.execute(select(job.c.params).where(
            job.c.item_sha256 == sha, job.c.kind == REDACT)).scalars().all()
    assert [json.loads(p) for p in params] == [
        {"mode": "solid", "threshold": 0.3, "keep_audio": False}]


def test_only_those_who_may_redact_see_a_preview(web: Api) -> None:
    sha = _held(web.instance, b"portrait.jpg", (SAMPLE / "obama.jpg").read_bytes())
    text = _held(web.instance, b"notes.txt", b"plain text, not a picture " * 20)
    investigator = _browser(web)
    csrf = login(investigator, "investigator")
    bad = investigator.post(f"/items/{sha}/preview", data={"csrf": csrf, "mode": "solid",
                                                           "threshold": "5"})
    assert bad.status_code == 422
    assert "The threshold is a number from 0.01 to 0.99." in bad.text
    assert investigator.get(
        f"/items/{sha}/preview.jpg?mode=erase&threshold=0.2").status_code == 422
    refused = investigator.post(f"/items/{text}/preview", data={"csrf": csrf})
    assert refused.status_code == 422
    assert "Only photos and videos can be redacted." in refused.text
    assert investigator.get(f"/items/{'0' * 64}/preview.jpg").status_code == 404
    assert investigator.post(f"/items/{sha}/preview",
                             data={"mode": "blur"}).status_code == 403  # no CSRF token

    address = f"/items/{sha}/preview.jpg?mode=blur&threshold=0.2"
    for role in ("uploader", "viewer"):  # neither may redact: no preview either
        other = _browser(web)
        token = login(other, role)
        answer = other.get(address)
        assert answer.status_code == 403, role
        assert answer.headers["content-type"].startswith("text/html")
        assert other.post(f"/items/{sha}/preview", data={"csrf": token}).status_code == 403
        assert 'formaction="' not in other.get(f"/items/{sha}").text
