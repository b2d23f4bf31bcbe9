"""Choosing the blob store by URL, and the S3 settings: from the environment, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from sprava.errors import ConfigurationError
from sprava.instance import blob_store
from sprava.settings import load_settings
from sprava.store.blobs import LocalBlobStore
from sprava.store.s3 import S3BlobStore, S3Location


def test_the_url_chooses_the_store(tmp_path: Path) -> None:
    local = load_settings(tmp_path / "a", environ={})
    assert isinstance(blob_store(local), LocalBlobStore)
    env = {"SPRAVA_BLOB_URL": "s3://evidence-bucket/team-a",
           "SPRAVA_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
           "SPRAVA_S3_ACCESS_KEY_ID": "key-id", "SPRAVA_S3_SECRET_ACCESS_KEY": "hush-hush"}
    remote = load_settings(tmp_path / "b", environ=env)
    store = blob_store(remote)  # no request is made until the store is used
    assert isinstance(store, S3BlobStore)
    assert store.location == S3Location("evidence-bucket", "team-a/")
    assert (store.options.endpoint_url, store.options.access_key_id,
            store.options.secret_access_key) == ("http://127.0.0.1:8333", "key-id", "hush-hush")
    assert "hush-hush" not in repr(remote)
    assert "hush-hush" not in repr(store.options)


def test_a_bad_blob_url_is_refused_clearly(tmp_path: Path) -> None:
    for url in ("s3://", "ftp://host/x", "s3://bucket/../up"):
        settings = load_settings(tmp_path, {"blob_url": url}, environ={})
        with pytest.raises(ConfigurationError) as caught:
            blob_store(settings)
        assert caught.value.code == "bad-blob-url"
