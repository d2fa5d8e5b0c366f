from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from cite_live.settings import DEFAULT_CONFIG, KEYS, LimitSettings, SettingsError, load_settings
from transcoder import Limits

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_storage_yaml_and_readme() -> None:
    yaml_text = DEFAULT_CONFIG.read_text(encoding="utf-8").splitlines()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in KEYS:
        lines = [i for i, line in enumerate(yaml_text) if line.strip().startswith(f"{key.name}:")]
        assert lines, f"{key.section}.{key.name} is missing from storage.yaml"
        above = yaml_text[lines[0] - 1].strip()
        assert above.startswith("#"), f"{key.section}.{key.name} has no comment in storage.yaml"
        assert key.description, f"{key.section}.{key.name} has no docstring in the declaration"
        row = f"| `{key.env}` | `{key.section}.{key.name}` | {key.description} |"
        assert row in readme, f"the README does not say of {key.env}: {key.description}"
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
        ("limits:\n  max_bytes: lots\n", "limits.max_bytes must be an integer, not 'lots'"),
        ("limits:\n  max_bytes: 1.5\n", "limits.max_bytes must be an integer"),
        ("jobs:\n  lease_seconds: [1]\n", "jobs.lease_seconds must be a number"),
        ("nowhere:\n  key: 1\n", "unknown key nowhere.key"),
        ("storage: local\n", "section 'storage' must hold keys"),
        ("site: [\n", "is not valid YAML"),
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
    with pytest.raises(SettingsError, match=r"site.trusted_proxies must be a list"):
        load_settings({"CITE_LIVE_CONFIG": str(config)})


def test_the_shipped_storage_yaml_says_what_the_declaration_defaults_to(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    shipped = load_settings({"CITE_LIVE_DATA_DIR": str(tmp_path)})
    declared = load_settings({"CITE_LIVE_DATA_DIR": str(tmp_path), "CITE_LIVE_CONFIG": str(empty)})
    assert shipped == replace(declared, config_path=DEFAULT_CONFIG)


def test_limits_default_to_the_transcoders_own() -> None:
    transcoder = Limits()
    limits = LimitSettings()
    assert (limits.max_bytes, limits.max_duration, limits.max_pixels, limits.timeout_factor) == (
        transcoder.max_bytes,
        transcoder.max_duration,
        transcoder.max_pixels,
        transcoder.timeout_factor,
    )


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"CITE_LIVE_AUTH_LOGIN_ATTEMPTS": "ten", "CITE_LIVE_DATA_DIR": "x"})
    assert str(refused.value) == (
        "CITE_LIVE_AUTH_LOGIN_ATTEMPTS: auth.login_attempts must be an integer, not 'ten'."
    )
    with pytest.raises(SettingsError, match=r"^CITE_LIVE_JOBS_BROKER: jobs.broker must be one of"):
        load_settings({"CITE_LIVE_JOBS_BROKER": "kafka"})


def test_the_environment_overrides_one_key_of_a_section_the_file_sets(tmp_path: Path) -> None:
    config = tmp_path / "s3.yaml"
    config.write_text("s3:\n  bucket: label\n  prefix: site-a\n", encoding="utf-8")
    settings = load_settings({"CITE_LIVE_CONFIG": str(config), "CITE_LIVE_S3_PREFIX": "site-b"})
    assert (settings.storage.s3_bucket, settings.storage.s3_prefix) == ("label", "site-b")


def test_variables_that_name_no_key_are_not_settings() -> None:
    settings = load_settings(
        {"CITE_LIVE_DEMO": "0", "CITE_LIVE_STORAGE_FOLDER": "x", "CITE_LIVE_NOWHERE_KEY": "1"}
    )
    assert settings.storage.backend == "local"


def test_an_empty_key_or_name_keeps_its_default(tmp_path: Path) -> None:
    config = tmp_path / "blank.yaml"
    config.write_text("s3:\n  bucket:\n  prefix: 2024\n", encoding="utf-8")
    settings = load_settings({"CITE_LIVE_CONFIG": str(config), "CITE_LIVE_DATA_DIR": ""})
    assert (settings.storage.s3_bucket, settings.storage.s3_prefix) == ("cite-live", "2024")
    assert settings.data_dir == Path("var").resolve()


def test_a_missing_configuration_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^Cannot read the configuration file .*missing"):
        load_settings({"CITE_LIVE_CONFIG": str(tmp_path / "missing.yaml")})


def test_the_podcasts_owner_is_written_to_at_their_own_address_else_the_contact() -> None:
    assert load_settings({}).podcast_owner_email == ""
    contact = {"CITE_LIVE_SITE_CONTACT": "Cité Live <contact@live.example>"}
    assert load_settings(contact).podcast_owner_email == "contact@live.example"
    own = {**contact, "CITE_LIVE_PODCAST_OWNER_EMAIL": "podcast@live.example"}
    assert load_settings(own).podcast_owner_email == "podcast@live.example"
    with pytest.raises(SettingsError, match=r"^CITE_LIVE_PODCAST_OWNER_EMAIL: podcast.owner_email"):
        load_settings({"CITE_LIVE_PODCAST_OWNER_EMAIL": "Cité <podcast@live.example>"})
    assert load_settings({}).podcast_locked is True
    assert load_settings({"CITE_LIVE_PODCAST_LOCKED": "false"}).podcast_locked is False


@pytest.mark.parametrize(
    ("size", "image_format", "message"),
    [
        ((1400, 1400), "GIF", "must be a JPEG or PNG image"),
        ((1000, 1000), "PNG", "must be square, 1400 to 3000 pixels a side; .* is 1000×1000"),
        ((3001, 3001), "JPEG", "must be square, .* is 3001×3001"),
        ((1600, 1400), "JPEG", "must be square, .* is 1600×1400"),
    ],
)
def test_podcast_artwork_that_apple_would_refuse_is_refused_at_start(
    tmp_path: Path, size: tuple[int, int], image_format: str, message: str
) -> None:
    """Apple Podcasts' artwork requirements: square, 1400 to 3000 pixels, JPEG or PNG."""
    path = tmp_path / f"art.{image_format.lower()}"
    Image.new("RGB", size, (10, 20, 30)).save(path, image_format)
    with pytest.raises(
        SettingsError, match=f"^CITE_LIVE_PODCAST_ARTWORK: podcast.artwork {message}"
    ):
        load_settings({"CITE_LIVE_PODCAST_ARTWORK": str(path)})


def test_podcast_artwork_is_found_in_the_data_dir_unless_absolute(tmp_path: Path) -> None:
    Image.new("RGB", (1400, 1400), (10, 20, 30)).save(tmp_path / "art.jpg", "JPEG")
    settings = load_settings(
        {"CITE_LIVE_DATA_DIR": str(tmp_path), "CITE_LIVE_PODCAST_ARTWORK": "art.jpg"}
    )
    assert settings.podcast_artwork == tmp_path / "art.jpg"
    with pytest.raises(SettingsError, match="which does not exist"):
        load_settings(
            {"CITE_LIVE_DATA_DIR": str(tmp_path / "x"), "CITE_LIVE_PODCAST_ARTWORK": "art.jpg"}
        )
