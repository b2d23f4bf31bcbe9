"""The published site in a real browser: ``sprava publish`` run as a command, then every
page opened in Debian's Chromium (driven by Playwright, never a browser of its own), both
straight from disk (file://) and from a plain static server on loopback. Every page
renders in its language, every link and picture resolves, and no request leaves the
site's folder or the local server. Screenshots are kept in ``test-artifacts/publish/``."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, REPO, Cli, new_instance
from publish_world import PUBLIC_SOURCES, World, build_world
from sprava.publish.site import CATALOGUES
from sprava.web.i18n import LANGUAGES

ARTIFACTS = REPO / "test-artifacts" / "publish"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    instance = new_instance(tmp_path / "instance", f"sqlite:///{tmp_path / 'sprava.db'}",
                            publish_public_sources=PUBLIC_SOURCES)
    with instance.settings.config_file.open("a", encoding="utf-8") as config:
        config.write(f'publish_public_sources = "{PUBLIC_SOURCES}"\n')  # for the command
    try:
        yield build_world(instance, tmp_path)
    finally:
        instance.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder for the site and a static server of it on loopback."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(_Quiet, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _target(url: str, base: str, site: Path) -> Path:
    assert url.startswith(base), f"{url} leaves the site"
    return site / unquote(urlsplit(url).path)[len(unquote(urlsplit(base).path)):]


def _check_site(context: Any, site: Path, base: str, shots: Path, every: bool) -> int:
    """Open every page; screenshots of every language's pages (``every``) or of the home
    pages only."""
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    pages = sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))
    english = CATALOGUES.language("en")
    for path in pages:
        response = page.goto(base + path)
        assert response is not None, path
        assert response.ok, path
        lang = path.split("/", 1)[0] if "/" in path else "en"
        assert page.locator("html").get_attribute("lang") == lang, path
        heading = page.locator("h1").first.inner_text().strip()
        assert heading, f"{path} has no heading"
        if "/" in path:  # a page of one language: its chrome is in that language
            say = CATALOGUES.language(lang).gettext
            assert page.locator(".brand").inner_text() == say("Sprava transparency site")
            sections = page.locator("nav .sections a").all_inner_texts()
            assert sections == [say(s) for s in ("Overview", "Verified incidents",
                                                 "Units implicated", "How this is checked")]
            if lang != "en":
                assert sections != [english.gettext(s) for s in (
                    "Overview", "Verified incidents", "Units implicated",
                    "How this is checked")]
        links = page.eval_on_selector_all(
            "a[href], link[href]", "els => els.map(e => e.href)")
        for url in links:
            if url.split("#", 1)[0] == page.url.split("#", 1)[0]:
                continue  # an anchor on the same page (#main)
            assert _target(url.split("#", 1)[0], base, site).is_file(), f"{path}: {url}"
        images = page.evaluate(
            "[...document.images].map(i => [i.src, i.complete && i.naturalWidth > 0])")
        for src, loaded in images:
            assert loaded, f"{path}: {src} did not load"
            assert _target(src, base, site).is_file()
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "960px", path
        name = path.replace("/", "_").removesuffix(".html")
        if path.endswith("index.html") or (every and (path.count("/") == 1
                                                      or path.startswith("en/"))):
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert errors == []  # CSP violations and failed loads are console errors
    outside = [u for u in requests if not u.startswith(base)]
    assert outside == []
    page.close()
    return len(pages)


def test_the_site_renders_in_every_language_with_every_link_resolving(
        world: World, served: tuple[Path, str], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run scripts/install-test-deps.sh")
    from playwright.sync_api import sync_playwright

    site, http_base = served
    cli = Cli(world.instance.settings.home)
    done = cli("publish", "--out", str(site), "--json")
    assert done.code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["verified"], summary["units"], summary["commanders"]) == (2, 2, 1)
    assert summary["languages"] == list(LANGUAGES)

    shots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            for base, kind in ((site.as_uri() + "/", "file"), (http_base, "http")):
                context = browser.new_context(viewport={"width": 1100, "height": 900})
                # Anything off the site is refused before it leaves, and counted as a failure.
                context.route(lambda url, base=base: not url.startswith(base),
                              lambda route: route.abort())
                (shots / kind).mkdir(parents=True)
                try:
                    count = _check_site(context, site, base, shots / kind, kind == "file")
                finally:
                    context.close()
                assert count == 1 + 4 * 8  # languages page; 8 pages in each language
        finally:
            browser.close()
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    shutil.copytree(shots, ARTIFACTS)
    assert len(list((ARTIFACTS / "file").glob("*.png"))) == 1 + 4 * 4 + 4  # + en details
    assert len(list((ARTIFACTS / "http").glob("*.png"))) == 1 + 4


def test_the_command_refuses_a_folder_it_did_not_write(world: World, tmp_path: Path) -> None:
    target = tmp_path / "my-files"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    done = Cli(world.instance.settings.home)("publish", "--out", str(target))
    assert done.code == 2
    assert "[output-not-a-site]" in done.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    again = Cli(world.instance.settings.home)("publish", "--out", str(tmp_path / "new"))
    assert again.code == 0, again.stderr
    assert "commander(s) named" in again.stdout
