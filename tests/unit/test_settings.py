"""Settings: one documented precedence, clear errors, every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from sprava.errors import ConfigurationError
from sprava.settings import load_settings, setting_help

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    home = tmp_path / "inst"
    home.mkdir()
    assert load_settings(home, environ={}).batch_files == 64
    (home / "sprava.toml").write_text('batch_files = 10\nactor = "file"\n')
    assert load_settings(home, environ={}).batch_files == 10
    env = {"SPRAVA_BATCH_FILES": "20", "SPRAVA_ACTOR": "env"}
    from_env = load_settings(home, environ=env)
    assert (from_env.batch_files, from_env.actor) == (20, "env")
    from_flag = load_settings(home, {"batch_files": 30}, environ=env)
    assert (from_flag.batch_files, from_flag.actor) == (30, "env")


def test_home_from_environment_and_defaults_inside_it(tmp_path: Path) -> None:
    settings = load_settings(environ={"SPRAVA_HOME": str(tmp_path / "h")})
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.database_url == f"sqlite:///{settings.home / 'sprava.db'}"
    assert settings.blob_url == (settings.home / "blobs").as_uri()


@pytest.mark.parametrize(
    ("text", "code"),
    [("nonsense = 1\n", "config-invalid"), ("batch_files = [\n", "config-invalid"),
     ("batch_files = 0\n", "bad-setting"), ('database_url = 5\n', "bad-setting"),
     ('jobs = "kubernetes"\n', "bad-setting")],
    ids=["unknown-key", "bad-toml", "out-of-range", "wrong-type", "not-a-choice"],
)
def test_bad_config_file_is_refused_clearly(tmp_path: Path, text: str, code: str) -> None:
    (tmp_path / "sprava.toml").write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(tmp_path, environ={})
    assert caught.value.code == code


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in setting_help():
        assert f"`{name}`" in text, f"docs/configuration.md does not describe {name}"
        if name != "home":
            assert f"SPRAVA_{name.upper()}" in text


def test_schema_head_constant_matches_the_migration_scripts() -> None:
    from sprava.backends.db.engine import alembic_head, head_revision

    assert head_revision() == alembic_head()
