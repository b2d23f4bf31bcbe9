"""The last step of a move: ``sprava.toml`` rewritten to name the new stores, every other
setting kept, the old file kept beside it, and the result still a valid config."""

from __future__ import annotations

import os
from pathlib import Path

from sprava.move.config import store_changes, switch_config, switched_config
from sprava.settings import read_config_file

OLD = '''# written by hand
database_url = "sqlite:////srv/old/sprava.db"
actor = "local:\\"anna\\" — координатор"
workers = 4
background_jobs = false
s3_region = "eu-central-1"
'''


def test_the_new_stores_replace_the_old_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "sprava.toml"
    path.write_text(OLD, "utf-8")
    kept = switch_config(path, store_changes(
        "postgresql+psycopg://sprava@db/sprava", "s3://evidence/a", "http://s3:8333", ""))
    values = read_config_file(path)
    assert values == {"database_url": "postgresql+psycopg://sprava@db/sprava",
                      "actor": 'local:"anna" — координатор', "workers": 4,
                      "background_jobs": False, "blob_url": "s3://evidence/a",
                      "s3_endpoint_url": "http://s3:8333"}
    assert kept.read_text("utf-8") == OLD
    assert kept.name.startswith("sprava.toml.before-move-")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*tmp"))


def test_moving_back_to_a_folder_drops_the_object_store_settings(tmp_path: Path) -> None:
    path = tmp_path / "sprava.toml"
    path.write_text('blob_url = "s3://evidence"\ns3_endpoint_url = "http://s3:8333"\n')
    text = switched_config(path, store_changes("sqlite:////srv/new/sprava.db",
                                               "file:///srv/new/blobs", "http://s3:8333",
                                               "eu"))
    assert "s3_" not in text
    assert 'blob_url = "file:///srv/new/blobs"' in text


def test_an_instance_without_a_config_file_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "sprava.toml"
    switch_config(path, store_changes("sqlite:////x.db", "file:///blobs", "", ""))
    assert read_config_file(path) == {"database_url": "sqlite:////x.db",
                                      "blob_url": "file:///blobs"}
