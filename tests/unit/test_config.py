from __future__ import annotations

from pathlib import Path

import pytest

from auditlake.config import load_settings
from auditlake.errors import ConfigError


def test_layers_apply_in_order(tmp_path: Path) -> None:
    config = tmp_path / "auditlake.toml"
    config.write_text('port = 9000\ndata_dir = "/srv/a"\n[limits]\nmax_batch_events = 10\n')
    env = {
        "AUDITLAKE_PORT": "9100",
        "AUDITLAKE_LIMITS__MAX_METADATA_KEYS": "7",
        "AUDITLAKE_URL": "http://client-only",  # not a setting: ignored
        "HOME": "/root",
    }
    settings = load_settings(config, env, {"data_dir": "/srv/b", "host": None})
    assert settings.port == 9100
    assert settings.data_dir == "/srv/b"
    assert settings.host == "127.0.0.1"
    assert (settings.limits.max_batch_events, settings.limits.max_metadata_keys) == (10, 7)
    assert settings.journal_path == Path("/srv/b/journal.db")
    assert settings.store_path == Path("/srv/b/store.db")


@pytest.mark.parametrize(
    ("text", "env", "match"),
    [
        ("port = [", {}, "not valid TOML"),
        ("colour = 1", {}, "unknown field"),
        ('port = "x"', {}, "invalid configuration"),
        ("", {"AUDITLAKE_LIMITS__MAX_BATCH_EVENTS": "many"}, "invalid configuration"),
    ],
)
def test_bad_configuration_is_one_clear_error(
    tmp_path: Path, text: str, env: dict[str, str], match: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_settings(config, env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml")


def test_the_readme_config_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "auditlake.toml").write_text(example)
    settings = load_settings(tmp_path / "auditlake.toml")
    assert settings.max_index_lag_seconds == 0.3
    assert settings.data_dir == "/var/lib/auditlake"
