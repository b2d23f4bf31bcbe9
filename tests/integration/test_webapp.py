"""The team's pages over a real instance, in process, on SQLite and PostgreSQL: login
with a second factor, CSRF, the first coordinator's password change, what each role may
see, validation messages next to the field with nothing stored, review by a second
person only, search across scripts, languages."""

from __future__ import annotations

import hashlib
import html
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import API_PASSWORD, Api, make_api, new_instance
from sprava.accounts import service
from sprava.backends.db.engine import read_transaction
from sprava.catalogue import claims, incidents, units
from sprava.domain.digest import Digest
from sprava.instance import Instance
from sprava.ledger import log

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def _browser(api: Api) -> TestClient:
    return TestClient(api.client.app, follow_redirects=False)  # type: ignore[attr-defined]


def login(client: TestClient, username: str, password: str = API_PASSWORD,
          code: str | None = None) -> str:
    """Log in through the form; returns the CSRF token of the session's forms."""
    page = client.get("/login")
    form = {"csrf": _csrf(page.text), "username": username, "password": password,
            "next": "/"}
    if code:
        form["code"] = code
    done = client.post("/login", data=form)
    assert done.status_code == 303, done.text
    return _csrf(client.get("/account").text)


def _photo(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def _upload(client: TestClient, csrf: str, *files: tuple[str, bytes],
            source: str = "") -> object:
    return client.post("/upload", data={"csrf": csrf, "source": source},
                       files=[("files", (name, data, "image/jpeg")) for name, data in files])


def _shas(html: str) -> set[str]:
    return set(re.findall(r'href="/items/([0-9a-f]{64})"', html))


def _ledger_size(instance: Instance) -> int:
    with read_transaction(instance.engine) as conn:
        return log.leaf_count(conn)


@pytest.fixture
def web(instance: Instance) -> Iterator[Api]:
    harness = make_api(instance)
    try:
        yield harness
    finally:
        harness.client.close()  # type: ignore[attr-defined]


def test_login_sets_a_strict_cookie_and_every_page_a_strict_policy(web: Api) -> None:
    client = _browser(web)
    page = client.get("/login")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy  # no script at all
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script" not in page.text
    wrong = client.post("/login", data={"csrf": _csrf(page.text), "username": "investigator",
                                        "password": "not the password at all"})
    assert wrong.status_code == 401
    assert "Wrong user name, password or code." in wrong.text
    assert "sprava_session" not in wrong.headers.get("set-cookie", "")
    page = client.get("/login")
    done = client.post("/login", data={"csrf": _csrf(page.text), "username": "investigator",
                                       "password": API_PASSWORD, "next": "/incidents"})
    assert done.status_code == 303
    assert done.headers["location"] == "/incidents"
    cookie = done.headers["set-cookie"]
    assert "sprava_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert "investigator" in dashboard.text
    # the dashboard's one script (live progress) and the upload page's are this server's
    assert "script-src 'self'; connect-src 'self'" in dashboard.headers[
        "content-security-policy"]
    assert re.findall(r"<script[^>]*>", dashboard.text) == [
        '<script src="/static/progress.js">']
    assert "script-src" not in client.get("/incidents").headers["content-security-policy"]
    upload = client.get("/upload")
    assert "script-src 'self'; connect-src 'self'" in upload.headers["content-security-policy"]
    assert re.findall(r"<script[^>]*>", upload.text) == ['<script src="/static/upload.js">']
    csrf = _csrf(dashboard.text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/").headers["location"].startswith("/login")


def test_login_and_forms_refuse_a_missing_csrf_token(web: Api) -> None:
    client = _browser(web)
    refused = client.post("/login", data={"username": "investigator",
                                          "password": API_PASSWORD})
    assert refused.status_code == 403
    assert "sprava_session" not in refused.headers.get("set-cookie", "")
    login(client, "investigator")
    before = incidents.list_incidents(web.instance).total
    forged = client.post("/incidents/new", data={
        "title": "Forged", "start": "2020-08-10T22:40", "place_name": "Minsk"})
    assert forged.status_code == 403
    assert "out of date" in forged.text
    assert incidents.list_incidents(web.instance).total == before
    # a next address that leaves the site is ignored
    page = client.get("/login?next=//evil.example/")
    assert 'value="/"' in page.text


def test_a_second_factor_is_set_up_and_then_required(web: Api) -> None:
    client = _browser(web)
    csrf = login(client, "investigator")
    started = client.post("/account/totp", data={"csrf": csrf})
    assert started.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started.text).group(1)  # type: ignore[union-attr]
    assert "otpauth://totp/" in started.text
    bad = client.post("/account/totp/enable", data={"csrf": csrf, "code": "000000"})
    assert bad.status_code == 422
    assert "The code does not match" in bad.text
    totp = pyotp.TOTP(secret)
    enabled = client.post("/account/totp/enable", data={"csrf": csrf, "code": totp.now()})
    assert enabled.status_code == 303
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303

    fresh = _browser(web)
    page = fresh.get("/login")
    without = fresh.post("/login", data={"csrf": _csrf(page.text), "username": "investigator",
                                         "password": API_PASSWORD})
    assert without.status_code == 401
    # codes are single-use: the next time step's code (accepted within ±1 step)
    login(fresh, "investigator", code=totp.at(time.time() + 30))
    assert "investigator" in fresh.get("/").text


def test_the_first_coordinator_must_change_the_one_time_password(
        tmp_path: Path, database_url: str) -> None:
    from sprava.api.app import create_app

    instance = new_instance(tmp_path / "first", database_url)
    try:
        first = service.ensure_first_coordinator(instance)
        assert first is not None
        username, one_time = first
        client = TestClient(create_app(instance, background_jobs=False),
                            follow_redirects=False)
        page = client.get("/login")
        done = client.post("/login", data={"csrf": _csrf(page.text), "username": username,
                                           "password": one_time, "next": "/incidents"})
        assert done.headers["location"] == "/account/password"
        assert client.get("/incidents").headers["location"] == "/account/password"
        form = client.get("/account/password")
        assert "one-time password" in form.text
        csrf = _csrf(form.text)
        differ = client.post("/account/password", data={
            "csrf": csrf, "current": one_time, "new": "seven quiet rivers north",
            "again": "seven quiet rivers south"})
        assert differ.status_code == 422
        assert "The two new passwords differ." in differ.text
        wrong = client.post("/account/password", data={
            "csrf": csrf, "current": "not it at all", "new": "seven quiet rivers north",
            "again": "seven quiet rivers north"})
        assert wrong.status_code == 422
        assert 'id="current-error"' in wrong.text
        changed = client.post("/account/password", data={
            "csrf": csrf, "current": one_time, "new": "seven quiet rivers north",
            "again": "seven quiet rivers north"})
        assert changed.headers["location"] == "/account?done=password"
        assert client.get("/incidents").status_code == 200
        client.close()
    finally:
        instance.close()


def test_each_role_sees_what_it_may_and_an_original_view_is_recorded(web: Api) -> None:
    alice, bob, viewer, investigator = (_browser(web) for _ in range(4))
    alice_csrf = login(alice, "uploader")
    photos = [_photo((200, 10, 10)), _photo((10, 200, 10))]
    stored = _upload(alice, alice_csrf, ("a.jpg", photos[0]), ("b.jpg", photos[1]),
                     source="volunteer-7")
    assert stored.status_code == 200, stored.text  # type: ignore[attr-defined]
    own = _shas(stored.text)  # type: ignore[attr-defined]
    assert own == {hashlib.sha256(p).hexdigest() for p in photos}  # the exact bytes
    for sha in own:
        with web.instance.blobs.open(Digest(sha)) as handle:
            assert handle.read() in photos
    bob_csrf = login(bob, "uploader2")
    theirs = _shas(_upload(bob, bob_csrf, ("c.jpg", _photo((10, 10, 200)))).text)  # type: ignore[attr-defined]
    assert len(theirs) == 1

    assert _shas(alice.get("/items").text) == own
    assert _shas(bob.get("/items").text) == theirs
    other = next(iter(own))
    assert bob.get(f"/items/{other}").status_code == 404
    assert bob.get(f"/items/{other}/thumbnail.jpg").status_code == 404

    login(viewer, "viewer")
    assert _shas(viewer.get("/items").text) == set()
    assert viewer.get(f"/items/{other}").status_code == 404  # no originals for viewers
    assert viewer.get("/upload").status_code == 403
    assert viewer.get("/review").status_code == 403

    login(investigator, "investigator")
    assert _shas(investigator.get("/items").text) >= own | theirs
    size = _ledger_size(web.instance)
    item = investigator.get(f"/items/{other}")
    assert item.status_code == 200
    assert "volunteer-7" in item.text
    assert 'id="custody"' in item.text
    assert _ledger_size(web.instance) == size + 1  # the view is a custody event
    filtered = investigator.get("/items?source=volunteer-7&kind=image")
    assert _shas(filtered.text) == own
    assert _shas(investigator.get("/items?kind=video").text) == set()
    bad = investigator.get("/items?since=yesterday")
    assert bad.status_code == 422


def test_uploads_refuse_bad_forms_and_keep_nothing_half_stored(
        tmp_path: Path, database_url: str) -> None:
    instance = new_instance(tmp_path / "small", database_url, upload_max_mb=1)
    harness = make_api(instance)
    try:
        client = _browser(harness)
        csrf = login(client, "uploader")
        empty = client.post("/upload", data={"csrf": csrf},
                            files=[("files", ("", b"", "application/octet-stream"))])
        assert empty.status_code == 422
        assert "Choose at least one file." in empty.text
        forged = _upload(client, "wrong", ("a.jpg", _photo((1, 2, 3))))
        assert forged.status_code == 403  # type: ignore[attr-defined]
        big = _upload(client, csrf, ("small.jpg", _photo((9, 9, 9))),
                      ("big.bin", b"\x01" * (1024 * 1024 + 10)))
        assert big.status_code == 413  # type: ignore[attr-defined]
        assert "small.jpg" in big.text
        assert "big.bin" not in big.text
        with read_transaction(instance.engine) as conn:
            assert log.leaf_count(conn) > 0
        listed = client.get("/items")
        assert len(_shas(listed.text)) == 1  # the small file whole, the big one not at all
        assert list((instance.settings.home / "blobs").rglob("*.tmp")) == [] if (
            instance.settings.home / "blobs").exists() else True
    finally:
        harness.client.close()  # type: ignore[attr-defined]
        instance.close()


def test_incident_forms_show_the_problem_next_to_the_field_and_store_nothing(
        web: Api) -> None:
    client = _browser(web)
    csrf = login(client, "investigator")
    before = incidents.list_incidents(web.instance).total
    missing = client.post("/incidents/new", data={
        "csrf": csrf, "title": "", "start": "2020-08-10T22:40", "place_name": "Minsk"})
    assert missing.status_code == 422
    assert 'id="title" name="title" value="" maxlength="500" aria-invalid="true"' in \
        missing.text
    assert 'id="title-error"' in missing.text
    coords = client.post("/incidents/new", data={
        "csrf": csrf, "title": "Night detentions", "start": "2020-08-10T22:40",
        "place_name": "Minsk", "lat": "53.9"})
    assert coords.status_code == 422
    assert 'id="lat-error"' in coords.text
    assert "Night detentions" in coords.text  # what was typed is kept
    not_a_number = client.post("/incidents/new", data={
        "csrf": csrf, "title": "Night detentions", "start": "2020-08-10T22:40",
        "place_name": "Minsk", "lat": "north", "lon": "27.5", "precision_m": "100"})
    assert not_a_number.status_code == 422
    assert 'id="lat-error"' in not_a_number.text
    no_start = client.post("/incidents/new", data={
        "csrf": csrf, "title": "Night detentions", "place_name": "Minsk"})
    assert no_start.status_code == 422
    assert 'id="start-error"' in no_start.text
    assert incidents.list_incidents(web.instance).total == before

    made = client.post("/incidents/new", data={
        "csrf": csrf, "title": "Night detentions at Pushkinskaya",
        "start": "2020-08-10T22:40", "place_name": "Minsk", "lat": "53.9", "lon": "27.5",
        "precision_m": "250", "violation_types": ["arbitrary-detention", "beating"]})
    assert made.status_code == 303
    page = client.get(made.headers["location"])
    assert "Night detentions at Pushkinskaya" in page.text
    assert "Arbitrary detention" in page.text
    incident_id = made.headers["location"].rsplit("/", 1)[-1]
    edited = client.post(f"/incidents/{incident_id}/edit", data={
        "csrf": csrf, "title": "Night detentions near Pushkinskaya",
        "start": "2020-08-11T22:40", "end": "2020-08-10T23:00", "place_name": "Minsk"})
    assert edited.status_code == 422
    assert 'id="end-error"' in edited.text
    assert incidents.get_incident(web.instance, incident_id).title == (
        "Night detentions at Pushkinskaya")
    listed = client.get("/incidents?violation_type=beating")
    assert "Night detentions at Pushkinskaya" in listed.text
    assert "Night detentions" not in client.get("/incidents?status=verified").text


def _unit(web: Api) -> str:
    return units.create_unit(web.instance, {"names": {"en": "Minsk OMON",
                                                      "ru": "ОМОН Минска",
                                                      "be": "АМАП Мінска"},
                                            "type": "riot police"}, actor="local:test").id


def test_a_claim_is_reviewed_by_a_second_person_only(web: Api) -> None:
    unit_id = _unit(web)
    author = _browser(web)
    csrf = login(author, "reviewer")  # an investigator with review rights
    sha = next(iter(_shas(_upload(author, csrf, ("d.jpg", _photo((5, 90, 5)))).text)))  # type: ignore[attr-defined]
    made = author.post("/incidents/new", data={
        "csrf": csrf, "title": "Dispersal on Nemiga", "start": "2020-08-09T23:10",
        "place_name": "Minsk"})
    incident_id = made.headers["location"].rsplit("/", 1)[-1]
    no_source = author.post(f"/incidents/{incident_id}/claims", data={
        "csrf": csrf, "unit_id": unit_id, "confidence": "medium"})
    assert no_source.status_code == 422
    assert 'id="sources-error"' in no_source.text
    assert claims.list_claims(web.instance).total == 0
    act = author.post(f"/incidents/{incident_id}/acts", data={
        "csrf": csrf, "type": "beating", "pseudonym": "Witness-12", "age_band": "adult",
        "evidence": sha, "publish_anonymised": "yes"})
    assert act.status_code == 303, act.text
    claimed = author.post(f"/incidents/{incident_id}/claims", data={
        "csrf": csrf, "unit_id": unit_id, "confidence": "high", "sources": sha})
    assert claimed.status_code == 303
    page = author.get(f"/incidents/{incident_id}")
    assert "Witness-12" in page.text
    assert "Minsk OMON" in page.text
    [claim] = claims.list_claims(web.instance, status="pending_review").items

    own = author.post(f"/review/{claim.id}", data={"csrf": csrf, "decision": "approve"})
    assert own.status_code == 409
    assert "another person must review it" in own.text

    plain = _browser(web)
    login(plain, "investigator")  # no review rights
    assert plain.get("/review").status_code == 403

    second = _browser(web)
    csrf2 = login(second, "coordinator")
    queue = second.get("/review")
    assert "Minsk OMON" in queue.text
    no_reason = second.post(f"/review/{claim.id}", data={"csrf": csrf2, "decision": "reject"})
    assert no_reason.status_code == 422
    assert "A rejection needs a reason." in no_reason.text
    approved = second.post(f"/review/{claim.id}", data={
        "csrf": csrf2, "decision": "approve", "reason": "The badge is visible in d.jpg."})
    assert approved.headers["location"] == "/review?done=approve"
    assert claims.get_claim(web.instance, claim.id).status == "approved"
    assert claims.get_claim(web.instance, claim.id).reviewer == "user:coordinator"


def test_search_finds_cyrillic_and_latin_spellings_grouped_by_kind(web: Api) -> None:
    _unit(web)
    incidents.create_incident(web.instance, {
        "title": "Затрыманні каля метро Пушкінская", "start": "2020-08-10T22:40:00+03:00",
        "place": {"name": "Мінск"}}, actor="local:test")
    client = _browser(web)
    login(client, "investigator")
    latin = client.get("/search?q=Pushkinskaya")
    assert "Затрыманні каля метро Пушкінская" in latin.text
    assert 'id="kind-incident"' in latin.text
    cyrillic = client.get("/search", params={"q": "ОМОН"})
    assert 'id="kind-unit"' in cyrillic.text
    assert re.search(r'href="/units/[0-9a-f-]{36}">Minsk OMON<', cyrillic.text)
    uploader = _browser(web)
    login(uploader, "uploader")
    assert "Затрыманні" not in uploader.get("/search?q=Pushkinskaya").text


def test_pages_follow_the_language_switch_then_the_browser(web: Api) -> None:
    client = _browser(web)
    assert "Увайсці" in client.get("/login", headers={"Accept-Language": "be,en;q=0.5"}).text
    switched = client.get("/login?lang=uk")
    assert "Увійти" in switched.text
    assert switched.headers["content-language"] == "uk"
    assert "sprava_lang=uk" in switched.headers["set-cookie"]
    assert "Войти" in client.get("/login?lang=ru").text
    login(client, "investigator")
    incidents.create_incident(web.instance, {
        "title": "Dispersal", "start": "2020-08-10T22:40:00+00:00", "place": {"name": "Minsk"}},
        actor="local:test")
    listed = client.get("/incidents")
    assert "Инциденты" in listed.text
    assert "10 авг. 2020" in listed.text  # the date in the reader's language


def _item(web: Api, name: bytes = b"e.jpg", colour: tuple[int, int, int] = (1, 2, 3)) -> str:
    from sprava.store.ingest import Ingestor

    result = Ingestor(web.instance, actor="user:investigator").ingest_chunks(
        name, iter([_photo(colour)]))
    assert result.sha256 is not None
    return result.sha256


def test_a_redacted_copy_is_queued_from_the_item_page_by_roles_that_see_originals(
        web: Api) -> None:
    from sprava.jobs.kinds import REDACT

    sha = _item(web)
    client = _browser(web)
    csrf = login(client, "investigator")
    page = client.get(f"/items/{sha}")
    assert 'action="/items/' + sha + '/redact"' in page.text
    bad = client.post(f"/items/{sha}/redact", data={"csrf": csrf, "mode": "pixelate",
                                                    "threshold": "2"})
    assert bad.status_code == 422
    assert "The threshold is a number from 0.01 to 0.99." in bad.text
    queued = client.post(f"/items/{sha}/redact", data={"csrf": csrf, "mode": "pixelate",
                                                       "threshold": "0.3"})
    assert queued.headers["location"] == f"/items/{sha}?redaction=queued"
    with read_transaction(web.instance.engine) as conn:
        from sqlalchemy import select

        from sprava.backends.db.tables import job
        kinds = conn.execute(select(job.c.kind, job.c.params)
                             .where(job.c.item_sha256 == sha)).all()
    assert [k for k, _p in kinds if k == REDACT] == [REDACT]
    assert "pixelate" in next(p for k, p in kinds if k == REDACT)
    uploader = _browser(web)
    up_csrf = login(uploader, "uploader")
    assert uploader.post(f"/items/{sha}/redact", data={"csrf": up_csrf}).status_code == 403


def test_the_timeline_and_the_plot_of_coordinates_need_no_other_site(web: Api) -> None:
    incidents.create_incident(web.instance, {
        "title": "Placed", "start": "2020-08-10T22:40:00+00:00",
        "place": {"name": "Minsk", "lat": 53.9, "lon": 27.56, "precision_m": 100}},
        actor="local:test")
    incidents.create_incident(web.instance, {
        "title": "Unplaced", "start": "2020-09-06T15:00:00+00:00",
        "place": {"name": "Hrodna"}}, actor="local:test")
    client = _browser(web)
    login(client, "viewer")
    timeline = client.get("/incidents/timeline?lang=ru")
    assert timeline.status_code == 200
    assert "август 2020" in timeline.text
    assert "сентябрь 2020" in timeline.text
    assert timeline.text.index("Placed") < timeline.text.index("Unplaced")  # oldest first
    plotted = client.get("/incidents/map")
    assert "53.90000" in plotted.text
    svg = client.get("/incidents/map.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count("<circle") == 1
    assert "http" not in svg.text.replace(
        "http://www.w3.org/2000/svg", "")
    uploader = _browser(web)
    login(uploader, "uploader")
    assert uploader.get("/incidents/map.svg").status_code == 403


def test_unit_pages_show_attributions_and_commanders_only_to_roles_that_see_persons(
        web: Api) -> None:
    from sprava.catalogue import persons

    parent = units.create_unit(web.instance, {"names": {"en": "Interior Ministry troops"},
                                              "type": "troops"}, actor="local:test").id
    child = units.create_unit(web.instance, {"names": {"en": "Minsk OMON"},
                                             "type": "riot police", "parent_id": parent},
                              actor="local:test").id
    sha = _item(web)
    found = incidents.create_incident(web.instance, {
        "title": "Dispersal", "start": "2020-08-10T22:40:00+00:00",
        "place": {"name": "Minsk"}}, actor="local:test")
    claims.create_claim(web.instance, {
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": child},
        "object": {"kind": "incident", "id": found.id}, "sources": [sha],
        "confidence": "high"}, actor="user:investigator", submit=True)
    person = persons.create_person(web.instance, {"name": "Officer Example",
                                                  "rank": "major"}, actor="local:test")
    claims.create_claim(web.instance, {
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "unit", "id": child}, "sources": [sha], "confidence": "medium",
        "valid_from": "2019", "valid_to": "2021"}, actor="user:investigator", submit=True)

    viewer = _browser(web)
    login(viewer, "viewer")
    tree = viewer.get("/units")
    assert tree.text.index("Interior Ministry troops") < tree.text.index("Minsk OMON")
    page = viewer.get(f"/units/{child}")
    assert f'href="/incidents/{found.id}"' in page.text
    assert "Officer Example" not in page.text
    assert "Commanders over time" not in page.text
    assert viewer.get(f"/persons/{person.id}").status_code == 403

    investigator = _browser(web)
    login(investigator, "investigator")
    size = _ledger_size(web.instance)
    page = investigator.get(f"/units/{child}")
    assert "Officer Example" in page.text
    assert _ledger_size(web.instance) == size + 1  # naming the commander is a recorded read
    person_page = investigator.get(f"/persons/{person.id}")
    assert person_page.status_code == 200
    assert "major" in person_page.text
    assert _ledger_size(web.instance) == size + 2
    assert "Minsk OMON" in person_page.text


def test_search_takes_the_filters_of_the_api(web: Api) -> None:
    incidents.create_incident(web.instance, {
        "title": "Detentions near the stele", "start": "2020-08-10T22:40:00+00:00",
        "place": {"name": "Minsk"}, "violation_types": ["beating"]}, actor="local:test")
    incidents.create_incident(web.instance, {
        "title": "Detentions in Hrodna", "start": "2020-09-06T15:00:00+00:00",
        "place": {"name": "Hrodna"}}, actor="local:test")
    client = _browser(web)
    login(client, "investigator")
    both = client.get("/search?q=detentions")
    assert "near the stele" in both.text
    assert "in Hrodna" in both.text
    beaten = client.get("/search?q=detentions&violation_type=beating")
    assert "near the stele" in beaten.text
    assert "in Hrodna" not in beaten.text
    later = client.get("/search?q=detentions&since=2020-09-01")
    assert "near the stele" not in later.text
    assert "in Hrodna" in later.text
    assert client.get("/search?q=x&since=soon").status_code == 422


def test_the_dashboard_counts_what_the_role_may_see_and_charts_incidents_by_week(
        web: Api) -> None:
    for start in ("2020-08-09T20:00:00+00:00", "2020-08-10T22:40:00+00:00",
                  "2020-08-30T12:00:00+00:00"):
        incidents.create_incident(web.instance, {
            "title": "Protest", "start": start, "place": {"name": "Minsk"}},
            actor="local:test")
    uploader = _browser(web)
    csrf = login(uploader, "uploader")
    _upload(uploader, csrf, ("a.jpg", _photo((3, 3, 3))))
    mine = uploader.get("/")
    assert "analysis · queued" in mine.text  # background jobs are off in these tests
    assert "charts/incidents-per-week.svg" not in mine.text  # no catalogue for uploaders
    assert uploader.get("/charts/incidents-per-week.svg").status_code == 403

    investigator = _browser(web)
    login(investigator, "investigator")
    page = investigator.get("/")
    assert re.search(r"<strong>3</strong> incidents", page.text)
    svg = investigator.get("/charts/incidents-per-week.svg").text
    totals = [int(n) for n in re.findall(r'data-total="(\d+)"', svg)]
    assert len(totals) == 12
    assert totals[-1] == 1
    assert sum(totals) == 3
    assert 'data-label="Aug 3, 2020"' in svg
    assert 'data-label="Aug 24, 2020"' in svg


def test_a_coordinator_manages_the_team_and_a_new_account_starts_with_a_password_change(
        web: Api) -> None:
    coordinator = _browser(web)
    csrf = login(coordinator, "coordinator")
    listed = coordinator.get("/team")
    assert listed.status_code == 200
    assert "uploader2" in listed.text
    bad = coordinator.post("/team", data={"csrf": csrf, "username": "Ivan Petrov",
                                          "role": "uploader"})
    assert bad.status_code == 422
    assert "Pick a pseudonym, not a real name." in bad.text
    assert 'value="Ivan Petrov"' in bad.text
    taken = coordinator.post("/team", data={"csrf": csrf, "username": "viewer",
                                            "role": "viewer"})
    assert taken.status_code == 409
    made = coordinator.post("/team", data={"csrf": csrf, "username": "field-7",
                                           "role": "uploader"})
    password = re.search(r'id="one-time-password" class="code">([^<]+)<', made.text)
    assert password is not None
    newcomer = _browser(web)
    page = newcomer.get("/login")
    first = newcomer.post("/login", data={"csrf": _csrf(page.text), "username": "field-7",
                                          "password": password.group(1)})
    assert first.headers["location"] == "/account/password"

    investigator = _browser(web)
    login(investigator, "investigator")
    assert investigator.get("/team").status_code == 403
    target = web.accounts["investigator"].id  # type: ignore[attr-defined]
    off = coordinator.post(f"/team/{target}/active", data={"csrf": csrf, "active": "no"})
    assert off.headers["location"] == "/team?done=changed"
    assert investigator.get("/").headers["location"].startswith("/login")  # access ended
    me = web.accounts["coordinator"].id  # type: ignore[attr-defined]
    assert f"/team/{me}/active" not in coordinator.get("/team").text  # not oneself
    reset = coordinator.post(f"/team/{target}/reset", data={"csrf": csrf})
    assert 'id="one-time-password"' in reset.text


def test_an_incident_moves_one_status_step_at_a_time_and_back_only_with_a_note(
        web: Api) -> None:
    found = incidents.create_incident(web.instance, {
        "title": "Dispersal", "start": "2020-08-10T22:40:00+00:00",
        "place": {"name": "Minsk"}}, actor="local:test")
    client = _browser(web)
    csrf = login(client, "investigator")
    skip = client.post(f"/incidents/{found.id}/status", data={"csrf": csrf,
                                                            "status": "verified"})
    assert skip.status_code == 409
    assert "not possible from the current state" in skip.text
    step = client.post(f"/incidents/{found.id}/status", data={"csrf": csrf,
                                                            "status": "corroborated"})
    assert step.status_code == 303
    back = client.post(f"/incidents/{found.id}/status", data={"csrf": csrf,
                                                            "status": "reported"})
    assert back.status_code == 422
    assert 'id="status-note-error"' in back.text
    assert incidents.get_incident(web.instance, found.id).status == "corroborated"
    noted = client.post(f"/incidents/{found.id}/status", data={
        "csrf": csrf, "status": "reported", "note": "The only witness withdrew."})
    assert noted.status_code == 303
    assert incidents.get_incident(web.instance, found.id).status == "reported"


def test_the_grid_shows_one_group_of_near_duplicates(web: Api) -> None:
    from sqlalchemy import insert

    from sprava.backends.db.engine import write_transaction
    from sprava.backends.db.tables import item_cluster

    first, second, other = (_item(web, name, colour) for name, colour in (
        (b"a.jpg", (1, 1, 1)), (b"a-repost.jpg", (2, 2, 2)), (b"b.jpg", (3, 3, 3))))
    with write_transaction(web.instance.engine) as conn:
        conn.execute(insert(item_cluster), [{"item_sha256": first, "cluster": first},
                                            {"item_sha256": second, "cluster": first}])
    client = _browser(web)
    login(client, "investigator")
    page = client.get(f"/items/{first}")
    assert f'href="/items/{second}"' in page.text
    assert f"/items?cluster={first}" in page.text
    assert _shas(client.get(f"/items?cluster={first}").text) == {first, second}
    assert other in _shas(client.get("/items").text)


def test_markup_in_stored_text_is_shown_as_text(web: Api) -> None:
    markup = '<script>alert(1)</script><img src=x onerror=alert(2)>"'
    unit_id = units.create_unit(web.instance, {"names": {"en": markup}, "type": markup},
                                actor="local:test").id
    found = incidents.create_incident(web.instance, {
        "title": markup, "start": "2020-08-10T22:40:00+00:00", "description": markup,
        "place": {"name": markup}}, actor="local:test")
    client = _browser(web)
    login(client, "investigator")
    for path in (f"/incidents/{found.id}", "/incidents", "/incidents/timeline",
                 f"/units/{unit_id}", "/units", "/search?q=alert", "/search?q=" + markup):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "<img src=x" not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path


def test_saving_an_incident_unchanged_changes_nothing(web: Api) -> None:
    found = incidents.create_incident(web.instance, {
        "title": "Dispersal", "start": "2020-08-10T22:40:17+03:00",
        "end": "2020-08-11T01:00:00+03:00", "description": "Two buses of riot police.",
        "violation_types": ["beating"], "place": {
            "name": "Minsk", "admin_area": "Minsk city", "lat": 53.9, "lon": 27.56,
            "precision_m": 50}}, actor="local:test")
    client = _browser(web)
    csrf = login(client, "investigator")
    form = client.get(f"/incidents/{found.id}/edit").text
    values = {name: html.unescape(value) for name, value in re.findall(
        r'<input id="\w+" name="(\w+)"[^>]*? value="([^"]*)"', form)}
    assert values["start"] == "2020-08-10T19:40:17"  # shown in UTC, seconds kept
    description = re.search(r'name="description"[^>]*>([^<]*)</textarea>', form)
    assert description is not None
    size = _ledger_size(web.instance)
    saved = client.post(f"/incidents/{found.id}/edit", data={
        **values, "csrf": csrf, "description": html.unescape(description.group(1)),
        "violation_types": ["beating"]})
    assert saved.status_code == 303
    assert _ledger_size(web.instance) == size  # nothing changed, nothing recorded
    assert incidents.get_incident(web.instance, found.id) == found


def test_a_unit_is_created_from_its_names_in_any_of_the_languages(web: Api) -> None:
    client = _browser(web)
    csrf = login(client, "investigator")
    nameless = client.post("/units", data={"csrf": csrf, "type": "riot police"})
    assert nameless.status_code == 422
    assert 'id="names-error"' in nameless.text
    assert units.list_units(web.instance).total == 0
    parent = client.post("/units", data={"csrf": csrf, "name_en": "Interior troops",
                                         "type": "troops"})
    assert parent.status_code == 303
    parent_id = parent.headers["location"].rsplit("/", 1)[-1]
    child = client.post("/units", data={
        "csrf": csrf, "name_be": "АМАП Мінска", "name_ru": "ОМОН Минска",
        "type": "riot police", "parent_id": parent_id, "area_of_operation": "Minsk"})
    made = units.get_unit(web.instance, child.headers["location"].rsplit("/", 1)[-1])
    assert dict(made.names) == {"be": "АМАП Мінска", "ru": "ОМОН Минска"}
    assert made.parent_id == parent_id
    assert "АМАП Мінска" in client.get(f"/units/{made.id}?lang=be").text
    viewer = _browser(web)
    viewer_csrf = login(viewer, "viewer")
    assert 'action="/units"' not in viewer.get("/units").text
    assert viewer.post("/units", data={"csrf": viewer_csrf, "name_en": "X",
                                       "type": "y"}).status_code == 403


def test_a_coordinator_exports_a_case_file_that_verifies_offline(web: Api,
                                                                 tmp_path: Path) -> None:
    """Only coordinators see cases; the recipient must be the case's own (else the page
    says why and nothing is sent or recorded); the download is a case file that
    ``sprava verify`` accepts, and its export is a custody event."""
    from sprava.casefile.sprava_verify import verify
    from sprava.catalogue import cases

    sha = _item(web)
    incident = incidents.create_incident(web.instance, {
        "title": "Dispersal", "start": "2020-08-10T22:40:00+00:00",
        "place": {"name": "Minsk"}}, actor="local:test")
    case = cases.create_case(web.instance, {
        "title": "Pushkinskaya, 10 August", "recipient": "Office of the Prosecutor",
        "incidents": [incident.id], "items": [sha]}, actor="local:test")
    investigator = _browser(web)
    login(investigator, "investigator")
    assert investigator.get("/cases").status_code == 403
    assert 'href="/cases"' not in investigator.get("/").text

    client = _browser(web)
    csrf = login(client, "coordinator")
    assert 'href="/cases"' in client.get("/").text
    assert "Pushkinskaya, 10 August" in client.get("/cases").text
    before = _ledger_size(web.instance)
    wrong = client.post(f"/cases/{case.id}/export",
                        data={"csrf": csrf, "recipient": "Someone else"})
    assert wrong.status_code == 409
    assert 'aria-invalid="true"' in wrong.text
    assert "Office of the Prosecutor" in wrong.text  # the page says whom it is for
    assert _ledger_size(web.instance) == before
    assert client.post(f"/cases/{case.id}/export",
                       data={"recipient": "Office of the Prosecutor"}).status_code == 403

    sent = client.post(f"/cases/{case.id}/export",
                       data={"csrf": csrf, "recipient": "Office of the Prosecutor"})
    assert sent.status_code == 200, sent.text[:500]
    assert sent.headers["content-type"] == "application/zip"
    assert "attachment" in sent.headers["content-disposition"]
    assert _ledger_size(web.instance) > before  # the export is on the record
    bag = tmp_path / "case.zip"
    bag.write_bytes(sent.content)
    report = verify(bag, key=str(web.instance.verifier))
    assert report.findings == []
    assert report.ok
    assert report.key_trusted
    assert report.payload_files == 1
    assert not list(web.instance.settings.home.glob("case-export-*"))  # nothing left behind


def _taken(colour: tuple[int, int, int], when: str | None, offset: str | None = None
           ) -> bytes:
    """A photo whose EXIF says when it was taken (DateTimeOriginal, OffsetTimeOriginal)."""
    exif = Image.Exif()
    if when is not None:
        taken = exif.get_ifd(0x8769)
        taken[0x9003] = when
        if offset is not None:
            taken[0x9011] = offset
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_the_grid_filters_by_the_day_taken_from_the_metadata_the_analysis_found(
        web: Api) -> None:
    """The capture time comes from the real analysis of each photo (EXIF, with or without
    its offset), is compared in UTC, and an item without one is left out of a filtered
    grid; a range that ends before it starts is refused."""
    from sprava.media.pipeline import analyse
    from sprava.store.ingest import Ingestor

    photos = {"late.jpg": _taken((200, 20, 20), "2020:08:09 23:30:00", "+03:00"),
              "camera.jpg": _taken((20, 200, 20), "2020:08:11 10:00:00"),
              "screenshot.jpg": _taken((20, 20, 200), None)}
    shas = {}
    for name, data in photos.items():
        result = Ingestor(web.instance, actor="user:uploader").ingest_chunks(
            name.encode(), iter([data]))
        assert result.sha256 is not None
        shas[name] = result.sha256
        assert analyse(web.instance, result.sha256)["metadata"]
    client = _browser(web)
    login(client, "investigator")
    page = client.get("/items")
    assert 'id="taken_from" name="taken_from" type="date"' in page.text
    assert _shas(page.text) == set(shas.values())

    def taken(query: str) -> set[str]:
        found = client.get(f"/items?{query}")
        assert found.status_code == 200, found.text
        return {name for name, sha in shas.items() if sha in _shas(found.text)}

    # 23:30 at +03:00 is 20:30 UTC on the 9th
    assert taken("taken_from=2020-08-09&taken_to=2020-08-09") == {"late.jpg"}
    assert taken("taken_from=2020-08-10") == {"camera.jpg"}
    assert taken("taken_to=2020-08-11") == {"late.jpg", "camera.jpg"}
    assert taken("taken_to=2020-08-10") == {"late.jpg"}
    assert taken("taken_from=2020-08-12") == set()
    assert taken("taken_from=2020-08-01&kind=image") == {"late.jpg", "camera.jpg"}
    assert taken("taken_from=2020-08-01&kind=video") == set()
    kept = client.get("/items?taken_from=2020-08-01")
    assert 'id="taken_from" name="taken_from" type="date" value="2020-08-01"' in kept.text
    assert "2 items" in kept.text
    assert "taken Aug 9, 2020" in kept.text
    backwards = client.get("/items?taken_from=2020-08-12&taken_to=2020-08-10")
    assert backwards.status_code == 422
    assert "The end is before the start." in backwards.text
    assert client.get("/items?taken_from=August").status_code == 422

    own = _browser(web)
    login(own, "uploader")
    assert {n for n, s in shas.items() if s in _shas(
        own.get("/items?taken_from=2020-08-10").text)} == {"camera.jpg"}
    viewer = _browser(web)
    login(viewer, "viewer")  # redacted copies carry no capture time: no such filter
    assert 'name="taken_from"' not in viewer.get("/items").text
