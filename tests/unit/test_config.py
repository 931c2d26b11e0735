from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from auditlake.config import load_settings
from auditlake.errors import ConfigError
from auditlake.source_settings import CloudEventsSource


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


def test_the_backends_are_chosen_in_their_blocks(tmp_path: Path) -> None:
    default = load_settings(overrides={"data_dir": "/srv/al"})
    assert (default.journal.backend, default.store.backend) == ("sqlite", "sqlite")
    assert default.journal_path == Path("/srv/al/journal.db")
    assert default.store_path == Path("/srv/al/store.db")
    config = tmp_path / "c.toml"
    config.write_text('[journal]\nbackend = "sqlite"\npath = "/fast/journal.db"\n')
    moved = load_settings(config, {"AUDITLAKE_STORE__PATH": "/big/store.db"})
    assert moved.journal_path == Path("/fast/journal.db")
    assert moved.store_path == Path("/big/store.db")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[journal]\nbackend = "kafka"', "journal.backend`; accepted: 'sqlite'"),
        ('[store]\nbackend = "mysql"', "store.backend`; accepted: 'sqlite'"),
        ("[store]\nbackend = 1", "store.backend"),
        ('log_level = "loud"', "log_level`; accepted: 'critical', 'debug', 'error', 'info'"),
        (
            '[[sources.cloudevents]]\nname = "a"\ntenant = "t"\npreset = "github"',
            "unknown preset 'github'; accepted: 'chainguard'",
        ),
        (
            '[[sources.cloudflare]]\nname = "a"\naccount_id = "x"\napi = "v9"',
            "cloudflare[0].api`; accepted: 'v1', 'v2'",
        ),
    ],
)
def test_a_value_outside_a_fixed_set_is_named_with_the_accepted_ones(
    tmp_path: Path, text: str, field: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(field)):
        load_settings(config, {})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml")


def test_the_readme_config_examples_are_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    examples = [block.split("```", 1)[0] for block in readme.split("```toml\n")[1:]]
    loaded = []
    for index, example in enumerate(examples):
        (tmp_path / f"{index}.toml").write_text(example)
        # The variables an example names for its secrets are set, as an operator would.
        names = re.findall(r'_env = "([A-Z_]+)"', example)
        env = dict.fromkeys(names, "whsec_" + "A" * 43)
        loaded.append(load_settings(tmp_path / f"{index}.toml", env=env))
    # The settings reference is the example that sets the data folder.
    [settings] = [s for s in loaded if s.data_dir != "data"]
    assert settings.max_index_lag_seconds == 0.3
    assert settings.data_dir == "/var/lib/auditlake"


# --- [[sources.cloudevents]] -------------------------------------------------


def sources(*blocks: dict[str, Any], env: dict[str, str] | None = None) -> list[CloudEventsSource]:
    """The resolved CloudEvents sources of `blocks` (with `env` for secrets)."""
    settings = load_settings(env=env or {}, overrides={"sources": {"cloudevents": list(blocks)}})
    return list(settings.sources.cloudevents)


def chainguard_block(**fields: Any) -> dict[str, Any]:
    return {"name": "cg", "tenant": "acme", "preset": "chainguard", "group": "g1", **fields}


def test_no_sources_by_default() -> None:
    assert load_settings(env={}).sources.cloudevents == ()


def test_chainguard_preset_expands_to_issuer_audience_subjects_and_pull_type() -> None:
    [source] = sources(chainguard_block())
    assert source.auth == "oidc"
    assert source.oidc is not None
    assert (source.oidc.issuer, source.oidc.audience) == ("https://issuer.enforce.dev", "customer")
    assert source.oidc.subjects == ("webhook:g1", "webhook:g1/*")
    assert source.types == ("dev.chainguard.registry.pull.v1",)
    assert source.path == "/v1/cloudevents"


def test_chainguard_preset_with_push_events_and_explicit_types() -> None:
    [pushes] = sources(chainguard_block(include_push_events=True))
    assert pushes.types == ("dev.chainguard.registry.pull.v1", "dev.chainguard.registry.push.v1")
    [chosen] = sources(chainguard_block(types=["dev.chainguard.*"]))
    assert chosen.types == ("dev.chainguard.*",)


def test_chainguard_preset_keeps_an_explicit_oidc_block_but_adds_the_subject_rule() -> None:
    oidc = {"issuer": "https://issuer.example", "audience": "mine"}
    [source] = sources(chainguard_block(group="parent/child", oidc=oidc))
    assert source.oidc is not None
    assert (source.oidc.issuer, source.oidc.audience) == ("https://issuer.example", "mine")
    assert source.oidc.subjects == ("webhook:parent/child", "webhook:parent/child/*")
    [given] = sources(chainguard_block(oidc={**oidc, "subjects": ["webhook:other"]}))
    assert given.oidc is not None and given.oidc.subjects == ("webhook:other",)


@pytest.mark.parametrize("group", [None, ""])
def test_chainguard_preset_needs_a_group(group: str | None) -> None:
    with pytest.raises(ConfigError, match=r"'cg'.*preset 'chainguard' needs 'group'"):
        sources(chainguard_block(group=group))


def test_auth_is_inferred_from_the_blocks() -> None:
    oidc = {"issuer": "https://issuer.example", "audience": "a"}
    inferred = sources(
        {"name": "hooks", "tenant": "acme", "path": "/hooks", "webhook": {"secret_env": "S"}},
        {"name": "keys", "tenant": "acme", "path": "/keys"},
        {"name": "tokens", "tenant": "acme", "path": "/tokens", "oidc": oidc},
        env={"S": "whsec_c2VjcmV0"},
    )
    assert [s.auth for s in inferred] == ["webhook", "api_key", "oidc"]


def test_auth_oidc_needs_an_oidc_block() -> None:
    with pytest.raises(ConfigError, match=r"auth 'oidc' needs an \[oidc\] block"):
        sources({"name": "x", "tenant": "acme", "auth": "oidc"})


def test_auth_webhook_needs_a_webhook_block() -> None:
    with pytest.raises(ConfigError, match=r"auth 'webhook' needs a \[webhook\] block"):
        sources({"name": "x", "tenant": "acme", "auth": "webhook"})


def test_webhook_secret_from_the_environment() -> None:
    block = {"name": "hooks", "tenant": "acme", "webhook": {"secret_env": "HOOK_SECRET"}}
    [source] = sources(block, env={"HOOK_SECRET": " whsec_c2VjcmV0\n"})
    assert source.webhook is not None
    assert source.webhook.secret == "whsec_c2VjcmV0"  # trimmed
    assert source.webhook.secret_env == "HOOK_SECRET"


def test_webhook_secret_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text("whsec_ZmlsZQ==\n")
    block = {"name": "hooks", "tenant": "acme", "webhook": {"secret_file": str(secret_file)}}
    [source] = sources(block)
    assert source.webhook is not None and source.webhook.secret == "whsec_ZmlsZQ=="


@pytest.mark.parametrize(
    ("webhook", "env", "match"),
    [
        ({"secret_env": "HOOK_SECRET"}, {}, "the variable HOOK_SECRET is not set"),
        ({"secret_env": "HOOK_SECRET"}, {"HOOK_SECRET": "  "}, "HOOK_SECRET is not set"),
        ({"secret_file": "/nonexistent/hook.secret"}, {}, "cannot read /nonexistent/hook.secret"),
        ({}, {}, "needs secret_env or secret_file"),
        ({"tolerance_seconds": 60}, {}, "needs secret_env or secret_file"),
    ],
)
def test_a_webhook_secret_that_cannot_be_read_is_a_clear_error(
    webhook: dict[str, Any], env: dict[str, str], match: str
) -> None:
    block = {"name": "hooks", "tenant": "acme", "webhook": webhook}
    with pytest.raises(ConfigError, match=rf"\[\[sources.cloudevents\]\] 'hooks'.*{match}"):
        sources(block, env=env)


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    block = {"name": "hooks", "tenant": "acme", "webhook": {"secret_file": str(tmp_path)}}
    with pytest.raises(ConfigError, match="cannot read"):  # a folder, not a file
        sources(block)


@pytest.mark.parametrize(
    ("second", "label"),
    [
        ({"name": "b", "tenant": "acme", "path": "/same"}, "path '/same'"),
        ({"name": "a", "tenant": "acme", "path": "/other"}, "name 'a'"),
    ],
)
def test_repeated_paths_or_names_are_rejected(second: dict[str, Any], label: str) -> None:
    with pytest.raises(ConfigError, match=f"two .* blocks have the {label}"):
        sources({"name": "a", "tenant": "acme", "path": "/same"}, second)


def test_two_sources_on_the_default_path_collide() -> None:
    with pytest.raises(ConfigError, match="path '/v1/cloudevents'"):
        sources({"name": "a", "tenant": "acme"}, {"name": "b", "tenant": "acme"})


@pytest.mark.parametrize(
    "path",
    ["/v1/events", "/v1/events/batch", "/healthz", "/readyz", "/metrics", "/openapi.json",
     "hooks", "", "v1/cloudevents"],
)  # fmt: skip
def test_a_taken_or_relative_path_is_rejected(path: str) -> None:
    with pytest.raises(ConfigError, match=f"path '{re.escape(path)}' (must start|is one of)"):
        sources({"name": "a", "tenant": "acme", "path": path})


def test_a_path_that_only_shares_a_prefix_with_a_route_is_free() -> None:
    assert sources({"name": "a", "tenant": "acme", "path": "/v1/eventstream"})[0].path


def test_an_empty_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("\n")
    webhook = {"secret_file": str(tmp_path / "secret")}
    with pytest.raises(ConfigError, match="is empty"):
        sources({"name": "a", "tenant": "acme", "webhook": webhook})


@pytest.mark.parametrize("tenant", ["", "bad tenant", "-leading", "x" * 129, "a/b"])
def test_an_invalid_tenant_is_rejected(tenant: str) -> None:
    with pytest.raises(ConfigError, match="is not a tenant name; a tenant name is 1-128") as raised:
        sources({"name": "a", "tenant": tenant})
    assert repr(tenant) in raised.value.message


def test_an_unknown_source_field_is_rejected() -> None:
    with pytest.raises(ConfigError, match="invalid configuration"):
        sources({"name": "a", "tenant": "acme", "colour": "blue"})


def test_sources_load_from_a_toml_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text("whsec_ZmlsZQ==")
    config = tmp_path / "auditlake.toml"
    config.write_text(
        f"""
[[sources.cloudevents]]
name = "chainguard"
tenant = "acme"
path = "/v1/cloudevents/chainguard"
preset = "chainguard"
group = "g1"
include_push_events = true

[[sources.cloudevents]]
name = "hooks"
tenant = "acme"
path = "/hooks"
types = ["com.example.order.*"]
allowed_origins = ["events.example.com"]

[sources.cloudevents.webhook]
secret_file = "{secret_file}"
tolerance_seconds = 60

[[sources.cloudevents]]
name = "tokens"
tenant = "other"
path = "/tokens"

[sources.cloudevents.oidc]
issuer = "https://issuer.example"
audience = "auditlake"
subjects = ["repo:acme/*"]
"""
    )
    chainguard, hooks, tokens = load_settings(config, env={}).sources.cloudevents
    assert chainguard.auth == "oidc" and chainguard.oidc is not None
    assert chainguard.oidc.subjects == ("webhook:g1", "webhook:g1/*")
    assert len(chainguard.types) == 2
    assert (hooks.auth, hooks.types, hooks.allowed_origins) == (
        "webhook",
        ("com.example.order.*",),
        ("events.example.com",),
    )
    assert hooks.webhook is not None
    assert (hooks.webhook.secret, hooks.webhook.tolerance_seconds) == ("whsec_ZmlsZQ==", 60.0)
    assert (tokens.auth, tokens.tenant) == ("oidc", "other")
    assert tokens.oidc is not None and tokens.oidc.subjects == ("repo:acme/*",)


def test_cloudflare_initial_checkpoint_without_offset_is_utc_and_not_in_the_future() -> None:
    block = {"name": "cf", "account_id": "abc", "token_env": "T"}
    [source] = load_settings(
        env={"T": "tok"},
        overrides={
            "sources": {"cloudflare": [{**block, "initial_checkpoint": "2026-01-01T00:00:00"}]}
        },
    ).sources.cloudflare
    assert (
        source.initial_checkpoint is not None and source.initial_checkpoint.utcoffset() is not None
    )
    future = {**block, "initial_checkpoint": "2999-01-01T00:00:00Z"}
    with pytest.raises(ConfigError, match="in the future"):
        load_settings(env={"T": "tok"}, overrides={"sources": {"cloudflare": [future]}})
    with pytest.raises(ConfigError, match="characters a token cannot have"):
        load_settings(env={"T": "tok\u201d"}, overrides={"sources": {"cloudflare": [block]}})
