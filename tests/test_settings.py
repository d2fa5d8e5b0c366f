from pathlib import Path

import pytest

from cite_live.settings import DEFAULT_CONFIG, KEYS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_storage_yaml_and_readme() -> None:
    yaml_text = DEFAULT_CONFIG.read_text(encoding="utf-8").splitlines()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in KEYS:
        lines = [i for i, line in enumerate(yaml_text) if line.strip().startswith(f"{key.name}:")]
        assert lines, f"{key.section}.{key.name} is missing from storage.yaml"
        above = yaml_text[lines[0] - 1].strip()
        assert above.startswith("#"), f"{key.section}.{key.name} has no comment in storage.yaml"
        assert key.env in readme, f"{key.env} is not documented in the README"
    for name in ("CITE_LIVE_DATA_DIR", "CITE_LIVE_CONFIG", "CITE_LIVE_DATABASE_URL"):
        assert name in readme


def test_defaults_put_sqlite_and_media_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"CITE_LIVE_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'cite-live.db'}"
    assert settings.storage.backend == "local"
    assert settings.storage.local_root == tmp_path / "media"


def test_environment_overrides_storage_keys(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CITE_LIVE_DATA_DIR": str(tmp_path),
            "CITE_LIVE_STORAGE_BACKEND": "s3",
            "CITE_LIVE_S3_BUCKET": "festival",
            "CITE_LIVE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "CITE_LIVE_LIMITS_MAX_DURATION": "60",
            "CITE_LIVE_DATABASE_URL": "postgresql://db.example/cite",
        }
    )
    assert settings.storage.backend == "s3"
    assert settings.storage.s3_bucket == "festival"
    assert settings.storage.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.limits.max_duration == 60.0
    assert settings.database_url == "postgresql://db.example/cite"


def test_config_names_another_storage_yaml(tmp_path: Path) -> None:
    config = tmp_path / "other.yaml"
    config.write_text("storage:\n  backend: s3\ns3:\n  bucket: label\n", encoding="utf-8")
    settings = load_settings({"CITE_LIVE_CONFIG": str(config), "CITE_LIVE_DATA_DIR": "x"})
    assert settings.config_path == config
    assert (settings.storage.backend, settings.storage.s3_bucket) == ("s3", "label")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("storage:\n  backend: ftp\n", "must be one of local, s3"),
        ("storage:\n  backends: local\n", "unknown key storage.backends"),
        ("limits:\n  max_bytes: lots\n", "must be a int"),
        ("- a list\n", "must hold sections"),
    ],
)
def test_bad_configuration_is_refused_with_a_sentence(
    tmp_path: Path, document: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(document, encoding="utf-8")
    with pytest.raises(SettingsError, match=message):
        load_settings({"CITE_LIVE_CONFIG": str(config)})


def test_lists_come_from_yaml_lists_or_comma_separated_environment(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(
        'site:\n  allowed_hosts: [Live.Example., "[::1]", 192.0.2.7]\n'
        "  trusted_proxies: [10.0.0.0/8]\n",
        encoding="utf-8",
    )
    settings = load_settings({"CITE_LIVE_CONFIG": str(config)})
    assert settings.allowed_hosts == ("live.example", "::1", "192.0.2.7")
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8"]
    settings = load_settings(
        {
            "CITE_LIVE_CONFIG": str(config),
            "CITE_LIVE_SITE_ALLOWED_HOSTS": " web-1 , ,backend_2",
            "CITE_LIVE_SITE_TRUSTED_PROXIES": "192.0.2.1,2001:db8::/32",
        }
    )
    assert settings.allowed_hosts == ("web-1", "backend_2")
    assert [str(n) for n in settings.trusted_proxies] == ["192.0.2.1/32", "2001:db8::/32"]
    assert load_settings({"CITE_LIVE_SITE_ALLOWED_HOSTS": ""}).allowed_hosts == ()


def test_without_site_url_urls_outside_requests_name_the_default_address() -> None:
    settings = load_settings({})
    assert (settings.site_url, settings.trusted_proxies) == ("", ())
    assert settings.stable_url == "http://127.0.0.1:8000"
    configured = load_settings({"CITE_LIVE_SITE_URL": "https://live.example/"})
    assert configured.site_url == configured.stable_url == "https://live.example"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "CITE_LIVE_SITE_TRUSTED_PROXIES",
            "10.0.0.0/8,proxy.lan",
            "'proxy.lan', which is not an IP",
        ),
        ("CITE_LIVE_SITE_TRUSTED_PROXIES", "10.0.0.0/33", "which is not an IP"),
        ("CITE_LIVE_SITE_ALLOWED_HOSTS", "live.example:443", "without scheme or port"),
        ("CITE_LIVE_SITE_ALLOWED_HOSTS", "https://live.example", "without scheme or port"),
        ("CITE_LIVE_SITE_ALLOWED_HOSTS", "*", "without scheme or port"),
        ("CITE_LIVE_SITE_URL", "live.example", "site.url must be the site's public address"),
        ("CITE_LIVE_SITE_URL", "ftp://live.example", "site.url must be"),
        ("CITE_LIVE_SITE_URL", "https://live.example:99999", "site.url must be"),
        ("CITE_LIVE_SITE_URL", "https://user@/x", "site.url must be"),
        ("CITE_LIVE_SITE_URL", "https://live.example@attacker.example", "site.url must be"),
    ],
)
def test_bad_addresses_are_refused_with_a_sentence(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        load_settings({name: value})
    assert str(refused.value).startswith(name)


def test_a_list_setting_must_be_a_list(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("site:\n  trusted_proxies: {a: 1}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="site.trusted_proxies must be a list"):
        load_settings({"CITE_LIVE_CONFIG": str(config)})
