"""The team's pages in a real browser with JavaScript off: Debian's Chromium, driven by
Playwright, against ``sprava serve`` on loopback (analysis running in the background as
it does for users). An investigator logs in with a second factor, uploads photos, waits
for their analysis, reads an item's metadata and custody history, records an incident
with an act and a claim; a coordinator reviews the claim; search finds Latin and
Cyrillic spellings; the language switch works; an uploader sees only their own uploads.
Every page asks nothing of any other site. Each test keeps a screenshot of its last page
in ``test-artifacts/webapp/``. Playwright only drives the installed browser: it never
downloads one."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from PIL import Image

from conftest import (
    API_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    Cli,
    _free_port,
    answers,
    new_instance,
    wait_for,
)
from sprava.accounts import service, sessions
from sprava.catalogue import claims, incidents, persons, units
from sprava.instance import Instance

ARTIFACTS = REPO / "test-artifacts" / "webapp"
ANALYSIS_TIMEOUT = 600
AXE = REPO / "build" / "test-deps" / "axe-core-4.10.3" / "axe.min.js"
_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact,
                                      nodes: v.nodes.map(n => n.target.join(" "))}));
}"""


@dataclass
class Served:
    base: str
    instance: Instance
    totp: pyotp.TOTP
    unit_id: str
    tmp: Path
    asked: list[str]



def _photo(path: Path, colour: tuple[int, int, int], gps: bool = False,
           taken: str | None = None) -> Path:
    image = Image.new("RGB", (320, 240), colour)
    for x in range(0, 320, 40):  # some structure, so that perceptual hashes differ
        image.paste((255 - colour[0], colour[1], 255 - colour[2]), (x, 0, x + 20, 240))
    exif = Image.Exif()
    exif[0x0132] = "2020:08:10 22:41:00"  # DateTime (the last save: not the capture time)
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    if gps:
        exif[0x8825] = {1: "N", 2: (53.0, 54.0, 12.0), 3: "E", 4: (27.0, 33.0, 36.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    path.write_bytes(out.getvalue())
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run scripts/install-test-deps.sh")
    tmp = tmp_path_factory.mktemp("webapp")
    instance = new_instance(tmp / "instance", f"sqlite:///{tmp / 'sprava.db'}")
    made = {}
    for name, role, reviewer in (("investigator", "investigator", False),
                                 ("coordinator", "coordinator", True),
                                 ("uploader", "uploader", False),
                                 ("uploader2", "uploader", False)):
        made[name], _ = service.create_account(instance, {
            "username": name, "role": role, "reviewer": reviewer,
            "password": API_PASSWORD}, actor="local:test")
    principal = sessions.Principal(made["investigator"], "token")
    secret, _uri = sessions.totp_begin(instance, principal)
    totp = pyotp.TOTP(secret)
    sessions.totp_enable(instance, principal, totp.at(time.time() - 30))
    unit_id = units.create_unit(instance, {
        "names": {"en": "Minsk OMON", "be": "АМАП Мінска", "ru": "ОМОН Минска"},
        "type": "riot police"}, actor="local:test").id
    cli = Cli(instance.settings.home)
    port = _free_port()
    env = dict(cli.env(), SPRAVA_BACKGROUND_JOBS="1")
    server = subprocess.Popen(cli.argv("serve", "--listen", f"127.0.0.1:{port}"), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: answers(port, server, "/login"), timeout=60)
        yield Served(f"http://127.0.0.1:{port}", instance, totp, unit_id, tmp, [])
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
        instance.close()


@pytest.fixture
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    elsewhere = [u for u in served.asked if not u.startswith(served.base + "/")]
    assert elsewhere == [], "the pages asked another site"


def _context(browser: Any, served: Served, locale: str = "en-US") -> Any:
    context = browser.new_context(java_script_enabled=False, locale=locale,
                                  viewport={"width": 1100, "height": 900})
    context.on("request", lambda request: served.asked.append(request.url))
    return context


def _login(page: Any, served: Served, username: str, code: str | None = None) -> None:
    page.goto(f"{served.base}/login")
    page.fill("#username", username)
    page.fill("#password", API_PASSWORD)
    if code:
        page.fill("#code", code)
    page.click("main button[type=submit]")


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_investigator_documents_an_incident_from_upload_to_claim(
        served: Served, browser: Any) -> None:
    context = _context(browser, served)
    page = context.new_page()
    _login(page, served, "investigator")
    assert "Wrong user name, password or code." in page.locator("main").inner_text()
    _login(page, served, "investigator", served.totp.now())
    assert page.locator("h1").inner_text() == "Dashboard"
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["sprava_session"]["httpOnly"]
    assert cookies["sprava_session"]["sameSite"] == "Strict"

    photos = [_photo(served.tmp / "pushkinskaya-1.jpg", (180, 40, 40), gps=True,
                     taken="2020:08:10 22:41:00"),
              _photo(served.tmp / "pushkinskaya-2.jpg", (40, 160, 40),
                     taken="2020:08:10 23:05:00"),
              _photo(served.tmp / "nemiga.jpg", (40, 40, 170), taken="2020:08:09 23:15:00")]
    page.get_by_role("link", name="Upload", exact=True).click()
    page.fill("#source", "volunteer-7")
    page.set_input_files("#files", [str(p) for p in photos])
    page.click("main button[type=submit]")
    stored = page.locator("#stored li")
    assert stored.count() == 3

    deadline = time.monotonic() + ANALYSIS_TIMEOUT
    while True:
        page.goto(f"{served.base}/items?state=done")
        if page.locator(".grid li").count() >= 3:
            break
        assert time.monotonic() < deadline, "the analysis did not finish in time"
        time.sleep(2)
    page.fill("#taken_from", "2020-08-10")  # the day taken, from each photo's EXIF
    page.fill("#taken_to", "2020-08-10")
    page.click("main form.filters button[type=submit]")
    assert "taken_from=2020-08-10" in page.url
    assert sorted(page.locator(".grid .name").all_inner_texts()) == [
        "pushkinskaya-1.jpg", "pushkinskaya-2.jpg"]
    assert page.locator("#taken_from").input_value() == "2020-08-10"
    page.get_by_role("link", name="pushkinskaya-1.jpg").click()
    assert "Metadata" in page.locator("main").inner_text()
    assert page.locator("#position .coords").inner_text() == "53.903333, 27.560000"
    custody = page.locator("#custody tbody tr")
    assert custody.count() >= 1
    assert "user:investigator" in page.locator("#custody").inner_text()
    item_address = page.url

    page.select_option("#mode", "solid")  # preview a redaction, then queue it
    page.fill("#threshold", "0.35")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert page.locator("h1").inner_text() == "Preview of the redacted copy"
    preview = page.locator("img.preview")
    assert "mode=solid&threshold=0.35" in (preview.get_attribute("src") or "")
    wait_for(lambda: preview.evaluate("img => img.complete") or time.sleep(0.2),
             timeout=60)  # drawn on request: about a second
    assert preview.evaluate("img => img.naturalWidth") == 320
    picture = context.request.get(served.base + (preview.get_attribute("src") or ""))
    assert picture.headers["content-type"] == "image/jpeg"
    assert picture.headers["cache-control"] == "no-store"
    page.get_by_role("button", name="Redact with these settings").click()
    assert page.url == item_address + "?redaction=queued"
    assert "A redacted copy is being made" in page.locator(".done").inner_text()

    page.get_by_role("link", name="Incidents", exact=True).click()
    page.get_by_role("link", name="New incident").click()
    page.fill("#start", "2020-08-10T22:40")
    page.fill("#place_name", "Minsk")
    page.click("main button[type=submit]")  # no title
    assert page.locator("#title[aria-invalid=true]").count() == 1
    assert page.locator("#title-error").is_visible()
    page.fill("#title", "Затрыманні каля метро Пушкінская")
    page.fill("#place_name", "Мінск")
    page.check("#v-arbitrary-detention")
    page.click("main button[type=submit]")
    assert page.locator("h1").inner_text() == "Затрыманні каля метро Пушкінская"

    page.select_option("#type", "beating")
    page.fill("#pseudonym", "Witness-12")
    page.check("main form[action$='/acts'] input[name=evidence] >> nth=0")
    page.click("main form[action$='/acts'] button[type=submit]")
    assert "Witness-12" in page.locator("#acts-section").inner_text()

    page.select_option("#claim-unit", served.unit_id)
    page.select_option("#claim-confidence", "high")
    page.check("main form[action$='/claims'] input[name=sources] >> nth=0")
    page.click("main form[action$='/claims'] button[type=submit]")
    assert "awaiting review" in page.locator("section[aria-labelledby=claims]").inner_text()

    page.fill("#q", "Pushkinskaya")
    page.click("form.search button")
    assert "Затрыманні каля метро Пушкінская" in page.locator("#kind-incident + ul").inner_text()
    page.fill("#q", "Мінск")
    page.click("form.search button")
    assert page.locator("#kind-incident").count() == 1
    page.fill("#q", "ОМОН")
    page.click("form.search button")
    assert "Minsk OMON" in page.locator("#kind-unit + ul").inner_text()

    page.get_by_role("link", name="Беларуская").click()
    assert page.locator("h1").inner_text() == "Пошук"
    page.get_by_role("link", name="Інцыдэнты").click()
    assert page.locator("h1").inner_text() == "Інцыдэнты"  # the choice is remembered
    _screenshot(page, "investigator")
    context.close()


def test_a_coordinator_reviews_a_claim_the_author_cannot(served: Served, browser: Any) -> None:
    from sprava.store.ingest import Ingestor

    source = Ingestor(served.instance, actor="user:investigator").ingest_chunks(
        b"nemiga-2.jpg", iter([_photo(served.tmp / "n2.jpg", (90, 90, 20)).read_bytes()]))
    found = incidents.create_incident(served.instance, {
        "title": "Dispersal on Nemiga", "start": "2020-08-09T23:10:00+03:00",
        "place": {"name": "Minsk"}}, actor="user:investigator")
    claim = claims.create_claim(served.instance, {
        "statement": "unit_present_at_incident",
        "subject": {"kind": "unit", "id": served.unit_id},
        "object": {"kind": "incident", "id": found.id},
        "sources": [source.sha256], "confidence": "medium"}, actor="user:coordinator",
        submit=True)
    other = claims.create_claim(served.instance, {
        "statement": "unit_present_at_incident",
        "subject": {"kind": "unit", "id": served.unit_id},
        "object": {"kind": "incident", "id": found.id},
        "sources": [source.sha256], "confidence": "high"}, actor="user:investigator",
        submit=True)
    context = _context(browser, served, locale="ru-RU")
    page = context.new_page()
    _login(page, served, "coordinator")
    assert page.locator("h1").inner_text() == "Обзор"  # Accept-Language: Russian
    page.get_by_role("link", name="Проверка", exact=True).click()
    own = page.locator(f"form[action='/review/{claim.id}']")
    own.locator("button[value=approve]").click()
    assert "другой человек" in page.locator(".problem").inner_text()
    form = page.locator(f"form[action='/review/{other.id}']")
    form.locator("button[value=reject]").click()
    assert "Для отклонения нужна причина." in page.locator(".problem").inner_text()
    form = page.locator(f"form[action='/review/{other.id}']")
    form.locator("textarea").fill("Значок виден на фото.")
    form.locator("button[value=approve]").click()
    assert "Утверждение одобрено." in page.locator(".done").inner_text()
    assert claims.get_claim(served.instance, other.id).status == "approved"
    _screenshot(page, "review")
    context.close()


def test_an_uploader_sees_only_their_own_uploads(served: Served, browser: Any) -> None:
    context = _context(browser, served, locale="uk-UA")
    page = context.new_page()
    _login(page, served, "uploader2")
    page.get_by_role("link", name="Завантажити", exact=True).click()
    page.set_input_files("#files", [str(_photo(served.tmp / "mine.jpg", (10, 120, 120)))])
    page.click("main button[type=submit]")
    assert page.locator("#stored li").count() == 1
    page.get_by_role("link", name="Докази", exact=True).click()
    names = page.locator(".grid .name").all_inner_texts()
    assert names == ["mine.jpg"]
    assert page.get_by_role("link", name="Інциденти").count() == 0  # no catalogue
    others = next(s for s in _all_items(served) if s != _own(served, "user:uploader2"))
    response = page.goto(f"{served.base}/items/{others}")
    assert response is not None
    assert response.status == 404
    page.goto(f"{served.base}/items")
    _screenshot(page, "uploader")
    context.close()


def test_the_main_pages_have_no_serious_accessibility_violations(
        served: Served, browser: Any) -> None:
    """axe-core, run in the page (the test lifts the page's CSP to inject it: the pages
    themselves run no script), finds nothing serious or critical on the main pages, in
    two languages and at phone width."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run scripts/install-test-deps.sh")
    from sprava.store.ingest import Ingestor

    sha = Ingestor(served.instance, actor="user:coordinator").ingest_chunks(
        b"square.jpg", iter([_photo(served.tmp / "sq.jpg", (200, 200, 30), gps=True)
                             .read_bytes()])).sha256
    found = incidents.create_incident(served.instance, {
        "title": "Kastryčnickaja square", "start": "2020-08-11T20:00:00+03:00",
        "place": {"name": "Minsk", "lat": 53.9, "lon": 27.56,
                  "precision_m": 200}}, actor="user:coordinator")
    person = persons.create_person(served.instance, {"name": "Officer Example"},
                                   actor="user:coordinator")
    script = AXE.read_text(encoding="utf-8")
    pages = ["/", "/items", "/items?taken_from=2020-08-01&taken_to=2020-08-31",
             f"/items/{sha}", "/upload", "/incidents", "/incidents/new",
             f"/incidents/{found.id}", "/incidents/timeline", "/incidents/map", "/units",
             f"/units/{served.unit_id}", f"/persons/{person.id}", "/review",
             "/search?q=Minsk", "/team", "/account", "/account/password"]
    problems: dict[str, list[Any]] = {}
    for locale, viewport in (("en-US", {"width": 1100, "height": 900}),
                             ("be-BY", {"width": 390, "height": 844})):
        context = browser.new_context(java_script_enabled=True, bypass_csp=True,
                                      locale=locale, viewport=viewport)
        context.on("request", lambda request: served.asked.append(request.url))
        page = context.new_page()
        page.goto(f"{served.base}/login")
        for path in ["/login", *pages]:
            if path != "/login":
                page.goto(served.base + path)
            if "/login" in page.url and path != "/login":
                _login(page, served, "coordinator")
                page.goto(served.base + path)
            assert page.url.split("?")[0] == served.base + path.split("?")[0], page.url
            found_here = _axe(page, script)
            if found_here:
                problems[f"{locale} {path}"] = found_here
        page.goto(f"{served.base}/items/{sha}")  # the preview is a form's answer
        page.locator("button[formaction$='/preview']").click()
        assert page.url == f"{served.base}/items/{sha}/preview"
        found_here = _axe(page, script)
        if found_here:
            problems[f"{locale} /items/{sha}/preview"] = found_here
        _screenshot(page, f"accessibility-{locale}")
        context.close()
    assert problems == {}


def _axe(page: Any, script: str) -> list[Any]:
    """The serious and critical findings of axe-core in the page as it is now."""
    page.add_script_tag(content=script)
    return [v for v in page.evaluate(_AXE_RUN) if v["impact"] in ("serious", "critical")]


def test_with_javascript_files_upload_one_by_one_with_their_progress(
        served: Served, browser: Any) -> None:
    """The upload page's only script (served by the app, allowed by the page's CSP and
    by no other page's) sends each file to the API with its progress shown."""
    context = browser.new_context(java_script_enabled=True, locale="en-US")
    context.on("request", lambda request: served.asked.append(request.url))
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("response", lambda response: errors.append(response.url)
            if response.status >= 400 else None)
    _login(page, served, "uploader")
    response = page.goto(f"{served.base}/upload")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.fill("#source", "volunteer-9")
    page.set_input_files("#files", [
        str(_photo(served.tmp / "js-1.jpg", (220, 220, 220))),
        str(_photo(served.tmp / "js-2.jpg", (20, 220, 120))),
        str(_photo(served.tmp / "js-1-again.jpg", (220, 220, 220)))])
    page.click("main button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('#progress li.ok').length === 3", timeout=60_000)
    states = page.locator("#progress .state").all_inner_texts()
    assert states == ["stored", "stored", "already held"]
    assert page.evaluate("() => Array.from(document.querySelectorAll('#progress progress'))"
                         ".every(p => p.value === p.max)")
    assert page.url == f"{served.base}/upload"  # no page load: the script did the work
    page.goto(f"{served.base}/items?source=volunteer-9")
    assert sorted(page.locator(".grid .name").all_inner_texts()) == ["js-1.jpg", "js-2.jpg"]
    assert errors == []
    _screenshot(page, "upload-with-javascript")
    context.close()


def _jobs_idle(served: Served) -> bool:
    from sprava.backends.db.engine import read_transaction
    from sprava.jobs import queue

    with read_transaction(served.instance.engine) as conn:
        return int(queue.pending(conn)) == 0


def test_with_javascript_the_analysis_state_changes_without_a_reload(
        served: Served, browser: Any) -> None:
    """The item page and the dashboard follow an item's analysis as it runs: the state
    shown at load (queued) becomes the outcome of each step in place, announced by a
    polite live region, with no page load in between."""
    from sprava.store.ingest import Ingestor

    # Let the earlier tests' background work end, so that nothing runs this item's job
    # until the test starts a worker itself (the in-process ingest below pokes none).
    wait_for(lambda: _jobs_idle(served) or time.sleep(0.5), timeout=ANALYSIS_TIMEOUT)
    time.sleep(3)
    sha = Ingestor(served.instance, actor="user:uploader").ingest_chunks(
        b"live.jpg", iter([_photo(served.tmp / "live.jpg", (30, 90, 200)).read_bytes()])
    ).sha256
    assert sha is not None
    context = browser.new_context(java_script_enabled=True, locale="en-US")
    context.on("request", lambda request: served.asked.append(request.url))
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    _login(page, served, "uploader")
    dashboard = context.new_page()
    dashboard.goto(f"{served.base}/")
    assert dashboard.locator(f"[data-state-of='{sha}']").inner_text() == "queued"
    assert "live.jpg" in dashboard.locator("main").inner_text()
    page.goto(f"{served.base}/items/{sha}")
    state = page.locator("#analysis-state")
    assert state.inner_text() == "queued"
    assert state.get_attribute("aria-live") == "polite"
    assert page.locator("#analysis-finished").is_hidden()
    page.evaluate("() => { window.stillTheSamePage = true; }")

    worker = Cli(served.instance.settings.home)("jobs", "run", "--quiet",
                                                 timeout=ANALYSIS_TIMEOUT)
    assert worker.code == 0, worker.stderr
    page.wait_for_function(
        "() => document.getElementById('analysis-state').textContent"
        ".includes('thumbnail: done')", timeout=30_000)
    assert state.inner_text() == "metadata: done; phash: done; thumbnail: done"
    assert page.locator("#analysis-finished").is_visible()
    assert page.evaluate("() => window.stillTheSamePage === true")  # no reload
    dashboard.wait_for_function(
        f"() => document.querySelector(\"[data-state-of='{sha}']\").textContent === 'done'",
        timeout=30_000)
    dashboard.wait_for_function(
        "() => document.getElementById('jobs-summary').textContent"
        " === 'No jobs are waiting or running.'", timeout=30_000)
    assert dashboard.locator("#job-total").inner_text() == "0"
    assert dashboard.locator("#jobs-list").is_hidden()
    page.locator("#analysis-finished a").click()
    assert page.locator("#meta-heading").is_visible()
    assert "live.jpg" in page.locator("main").inner_text()
    assert errors == []
    _screenshot(dashboard, "live-progress")
    context.close()


def _all_items(served: Served) -> list[str]:
    from sprava.backends.db.engine import read_transaction
    from sprava.store import items

    with read_transaction(served.instance.engine) as conn:
        return [r["sha256"] for r in items.list_items(conn)]


def _own(served: Served, actor: str) -> str:
    from sprava.backends.db.engine import read_transaction
    from sprava.store import items

    with read_transaction(served.instance.engine) as conn:
        [mine] = items.list_items(conn, uploaded_by=actor)
    return str(mine["sha256"])
