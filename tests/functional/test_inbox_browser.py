"""An insider in a real browser with JavaScript off: Debian's Chromium, driven by Playwright,
against ``sprava serve --inbox-only`` on loopback. Submit a message and a file, get the
receipt code, come back with it, read the team's reply. No cookie exists until the code
is entered, and the browser asks nothing of any other site. The last page is kept as a
screenshot in ``test-artifacts/``. Playwright only drives the installed browser: it never
downloads one."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

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
from sprava.api.app import create_app
from sprava.inbox.service import Inbox

ARTIFACTS = REPO / "test-artifacts"
API = "/api/v1/inbox"



def test_an_insider_submits_comes_back_and_reads_a_reply_without_javascript(
        tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: run scripts/install-test-deps.sh")
    from playwright.sync_api import sync_playwright

    database_url = f"sqlite:///{tmp_path / 'sprava.db'}"
    instance = new_instance(tmp_path / "instance", database_url, inbox_kdf_memory_mb=8,
                            inbox_kdf_passes=1)
    account, _ = service.create_account(instance, {
        "username": "coordinator", "role": "coordinator", "password": API_PASSWORD},
        actor="local:test")
    _, token = sessions.create_token(instance, sessions.Principal(account, "token"),
                                     {"name": "test"})
    staff = {"Authorization": f"Bearer {token}"}
    app = create_app(instance, background_jobs=False)
    app.state.inbox = Inbox(instance)
    team = TestClient(app)
    for path, body in (("/recipients", {"account_id": account.id}),
                       ("/key", {"password": API_PASSWORD}),
                       ("/unlock", {"password": API_PASSWORD})):
        assert team.post(API + path, headers=staff, json=body).status_code < 300
    evidence = tmp_path / "orders-0812.txt"
    evidence.write_text("Order 0812: clear the square by 23:00.\n")

    cli = Cli(instance.settings.home)
    port = _free_port()
    env = dict(cli.env(), SPRAVA_INBOX_KDF_MEMORY_MB="8", SPRAVA_INBOX_KDF_PASSES="1")
    server = subprocess.Popen(cli.argv("serve", "--inbox-only", "--listen",
                                       f"127.0.0.1:{port}"), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(port, server, "/inbox/"), timeout=60)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, java_script_enabled=False, locale="en-US")
            try:
                page = context.new_page()
                asked: list[str] = []
                context.on("request", lambda request: asked.append(request.url))
                page.goto(f"{base}/inbox/")
                assert page.locator("h1").inner_text() == "Send us information safely"
                page.get_by_role("link", name="Українська").click()
                assert page.locator("h1").inner_text() == "Передайте нам інформацію безпечно"
                page.get_by_role("link", name="English").click()
                page.fill("#message", "The unit came from Pushkinskaya at 22:40.")
                page.set_input_files("#files", str(evidence))
                page.click("button[type=submit]")
                code = page.locator("#receipt-code").inner_text().strip()
                assert re.fullmatch(r"[a-z-]+( [a-z-]+){6}", code), code
                assert context.cookies() == []  # nothing is set before the code is entered

                [summary] = team.get(f"{API}/submissions", headers=staff).json()["items"]
                read = team.get(f"{API}/submissions/{summary['id']}", headers=staff).json()
                assert read["posts"][0]["message"] == (
                    "The unit came from Pushkinskaya at 22:40.")
                assert [f["name"] for f in read["posts"][0]["files"]] == ["orders-0812.txt"]
                assert team.post(f"{API}/submissions/{summary['id']}/replies",
                                 headers=staff, json={"text": "Thank you. Which unit was it?"}
                                 ).status_code == 201

                page.get_by_role("link", name="Come back with your receipt code").click()
                page.fill("#code", code)
                page.click("button[type=submit]")
                assert "Thank you. Which unit was it?" in page.locator("main").inner_text()
                cookies = context.cookies()
                assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
                    ("sprava_inbox", True, "Strict")]
                # every request the pages made went to this server alone
                assert asked
                assert [u for u in asked if not u.startswith(f"{base}/inbox/")] == []
                assert any(u.startswith(f"{base}/inbox/style.css") for u in asked)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "inbox-browser.png"), full_page=True)
            finally:
                context.close()
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=30)
        team.close()
        instance.close()
    # the server wrote nothing about its requests
    assert "/inbox" not in err.decode().split("Ctrl-C stops)", 1)[-1]
