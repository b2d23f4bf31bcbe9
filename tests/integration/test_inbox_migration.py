"""Migration 0006 (the inbox), down with submissions in it and up again, on each database."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select

from conftest import API_PASSWORD, make_api, new_instance
from sprava.backends.db.engine import head_revision, migrate, schema_revision
from sprava.backends.db.inbox_tables import inbox_object, inbox_submission
from sprava.inbox.service import Inbox

TABLES = {"inbox_recipient", "inbox_unlock", "inbox_submission", "inbox_post", "inbox_object"}


def test_down_with_submissions_and_up_again(database_url: str, tmp_path: Path) -> None:
    instance = new_instance(tmp_path / "instance", database_url, inbox_kdf_memory_mb=1,
                            inbox_kdf_passes=1)
    api = make_api(instance)
    try:
        api.client.app.state.inbox = Inbox(instance)  # type: ignore[attr-defined]
        account = api.accounts["coordinator"].id  # type: ignore[attr-defined]
        for path, body in (("/recipients", {"account_id": account}),
                           ("/key", {"password": API_PASSWORD}),
                           ("/unlock", {"password": API_PASSWORD})):
            assert api.call("POST", f"/api/v1/inbox{path}", "coordinator",
                            json=body).status_code < 300
        insider = TestClient(api.client.app)  # type: ignore[attr-defined]
        assert insider.post("/inbox/submit", files=[("message", (None, "kept"))]
                            ).status_code == 200
        with instance.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(inbox_object)
                                ).scalar_one() == 2  # the message and its manifest
        migrate(instance.engine, "0005_search")
        assert schema_revision(instance.engine) == "0005_search"
        with instance.engine.connect() as conn:
            assert TABLES.isdisjoint(inspect(conn).get_table_names())
        migrate(instance.engine, "head")
        assert schema_revision(instance.engine) == head_revision()
        with instance.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            assert conn.execute(select(func.count()).select_from(inbox_submission)
                                ).scalar_one() == 0
    finally:
        api.client.close()  # type: ignore[attr-defined]
        instance.close()
