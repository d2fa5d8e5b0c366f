"""Settings: declared once, as data, loaded from storage.yaml and the environment.

Every key of storage.yaml is a :class:`Key` in :data:`KEYS`; a test fails when one of them is not
documented in storage.yaml and the README. The environment overrides a key with
``CITE_LIVE_<SECTION>_<NAME>``; three names of the outside contract stand apart:
``CITE_LIVE_DATA_DIR``, ``CITE_LIVE_CONFIG`` and ``CITE_LIVE_DATABASE_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "storage.yaml"
WEB_DIR = ROOT / "web"


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    kind: type
    default: Any
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return f"CITE_LIVE_{self.section}_{self.name}".upper()


KEYS: tuple[Key, ...] = (
    Key("storage", "backend", str, "local", ("local", "s3")),
    Key("local", "path", str, "media"),
    Key("local", "accel_redirect", str, ""),
    Key("s3", "bucket", str, "cite-live"),
    Key("s3", "prefix", str, ""),
    Key("s3", "endpoint_url", str, ""),
    Key("s3", "region", str, "us-east-1"),
    Key("s3", "addressing_style", str, "path", ("path", "virtual")),
    Key("s3", "public_base_url", str, ""),
    Key("limits", "max_bytes", int, 8 * 1024**3),
    Key("limits", "max_duration", float, 6 * 3600.0),
    Key("limits", "max_pixels", int, 4096 * 2304),
    Key("limits", "timeout_factor", float, 8.0),
    Key("site", "url", str, "http://127.0.0.1:8000"),
    Key("site", "page_cache_seconds", float, 10.0),
    Key("auth", "secret_key", str, ""),
    Key("auth", "session_days", float, 14.0),
    Key("auth", "login_attempts", int, 10),
    Key("auth", "argon2_memory_kib", int, 65536),
    Key("auth", "argon2_time_cost", int, 3),
    Key("uploads", "quota_bytes", int, 50 * 1024**3),
    Key("uploads", "expire_hours", float, 24.0),
    Key("jobs", "broker", str, "embedded", ("embedded", "redis", "rabbitmq")),
    Key("jobs", "url", str, ""),
    Key("jobs", "threads", int, 1),
    Key("jobs", "lease_seconds", float, 60.0),
    Key("jobs", "max_attempts", int, 3),
    Key("jobs", "sweep_seconds", float, 15.0),
    Key("media", "signed_url_seconds", float, 900.0),
)


@dataclass(frozen=True)
class StorageSettings:
    backend: str
    local_root: Path
    # nginx's internal location for the local media folder; None: the app sends the bytes.
    local_accel_redirect: str | None
    s3_bucket: str
    s3_prefix: str
    s3_endpoint_url: str | None
    s3_region: str | None
    s3_addressing_style: str
    s3_public_base_url: str | None


@dataclass(frozen=True)
class LimitSettings:
    max_bytes: int
    max_duration: float
    max_pixels: int
    timeout_factor: float


@dataclass(frozen=True)
class AuthSettings:
    # Empty: a random key is made once and kept in the data dir (see ``secret_key_for``).
    secret_key: str
    session_days: float
    login_attempts: int
    argon2_memory_kib: int
    argon2_time_cost: int


@dataclass(frozen=True)
class UploadSettings:
    quota_bytes: int
    expire_hours: float


@dataclass(frozen=True)
class JobSettings:
    broker: str
    url: str
    threads: int
    lease_seconds: float
    max_attempts: int
    sweep_seconds: float


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    config_path: Path
    database_url: str
    site_url: str
    page_cache_seconds: float
    storage: StorageSettings
    limits: LimitSettings
    auth: AuthSettings
    uploads: UploadSettings
    jobs: JobSettings
    signed_url_seconds: float
    web_dir: Path = WEB_DIR

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def uploads_dir(self) -> Path:
        """Where tus uploads are received, until complete."""
        return self.data_dir / "uploads"


def _coerce(key: Key, raw: Any, origin: str) -> Any:
    if raw is None:
        return key.default
    try:
        value = key.kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(
            f"{origin}: {key.section}.{key.name} must be a {key.kind.__name__}, not {raw!r}."
        ) from None
    if key.choices and value not in key.choices:
        raise SettingsError(
            f"{origin}: {key.section}.{key.name} must be one of {', '.join(key.choices)}, "
            f"not {value!r}."
        )
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"Cannot read the configuration file {path}: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}.") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path} must hold sections of keys, not a {type(loaded).__name__}.")
    known = {(k.section, k.name) for k in KEYS}
    for section, values in loaded.items():
        if not isinstance(values, dict):
            raise SettingsError(f"{path}: section {section!r} must hold keys.")
        for name in values:
            if (section, name) not in known:
                raise SettingsError(f"{path}: unknown key {section}.{name}.")
    return loaded


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read storage.yaml (or ``CITE_LIVE_CONFIG``) and let the environment override it."""
    env = os.environ if environ is None else environ
    config_path = Path(env.get("CITE_LIVE_CONFIG") or DEFAULT_CONFIG).resolve()
    document = _read_yaml(config_path)
    values: dict[tuple[str, str], Any] = {}
    for key in KEYS:
        raw = document.get(key.section, {}).get(key.name)
        origin = str(config_path)
        if key.env in env:
            raw, origin = env[key.env], key.env
        values[(key.section, key.name)] = _coerce(key, raw, origin)

    data_dir = Path(env.get("CITE_LIVE_DATA_DIR") or "var").resolve()
    database_url = env.get("CITE_LIVE_DATABASE_URL") or f"sqlite:///{data_dir / 'cite-live.db'}"
    local_root = Path(values[("local", "path")])
    if not local_root.is_absolute():
        local_root = data_dir / local_root

    def optional(section: str, name: str) -> str | None:
        value = values[(section, name)]
        return str(value) if value else None

    storage = StorageSettings(
        backend=values[("storage", "backend")],
        local_root=local_root,
        local_accel_redirect=optional("local", "accel_redirect"),
        s3_bucket=values[("s3", "bucket")],
        s3_prefix=values[("s3", "prefix")],
        s3_endpoint_url=optional("s3", "endpoint_url"),
        s3_region=optional("s3", "region"),
        s3_addressing_style=values[("s3", "addressing_style")],
        s3_public_base_url=optional("s3", "public_base_url"),
    )
    limits = LimitSettings(
        max_bytes=values[("limits", "max_bytes")],
        max_duration=values[("limits", "max_duration")],
        max_pixels=values[("limits", "max_pixels")],
        timeout_factor=values[("limits", "timeout_factor")],
    )

    def section(name: str, cls: type[Any]) -> Any:
        return cls(**{k.name: values[(k.section, k.name)] for k in KEYS if k.section == name})

    return Settings(
        data_dir=data_dir,
        config_path=config_path,
        database_url=database_url,
        site_url=str(values[("site", "url")]).rstrip("/"),
        page_cache_seconds=values[("site", "page_cache_seconds")],
        storage=storage,
        limits=limits,
        auth=section("auth", AuthSettings),
        uploads=section("uploads", UploadSettings),
        jobs=section("jobs", JobSettings),
        signed_url_seconds=values[("media", "signed_url_seconds")],
    )
