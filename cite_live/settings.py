"""Settings: declared once, as data, loaded from storage.yaml and the environment.

Every key of storage.yaml is a :class:`Key` in :data:`KEYS`; a test fails when one of them is not
documented in storage.yaml and the README. The environment overrides a key with
``CITE_LIVE_<SECTION>_<NAME>``; three names of the outside contract stand apart:
``CITE_LIVE_DATA_DIR``, ``CITE_LIVE_CONFIG`` and ``CITE_LIVE_DATABASE_URL``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "storage.yaml"
WEB_DIR = ROOT / "web"
# Where URLs made outside a request point when site.url is not set: the address
# `cite-live serve` binds by default.
UNSET_SITE_URL = "http://127.0.0.1:8000"
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names it."""


def host_name(value: str) -> str:
    """``value`` as a host name or IP address, lower-cased; ValueError when it is neither."""
    name = value.strip().lower().removesuffix(".")
    try:
        return str(ipaddress.ip_address(name.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError("a host name or IP address, without scheme or port")
    return name


def network(value: str) -> Network:
    """An address or a CIDR network; ValueError otherwise."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError("an IP address or a network such as 10.0.0.0/8") from None


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    kind: type
    default: Any
    choices: tuple[str, ...] = ()
    # For a list (kind tuple): what each item is turned into; it raises ValueError, saying what
    # an item must be, when it cannot be.
    item: Callable[[str], Any] = str

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
    Key("site", "url", str, ""),
    Key("site", "allowed_hosts", tuple, ("localhost", "127.0.0.1", "::1"), item=host_name),
    Key("site", "trusted_proxies", tuple, (), item=network),
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
    # As configured, without a trailing slash; "" when not set (see ``stable_url``).
    site_url: str
    # Host names answered besides site_url's (cite_live.site); the proxies whose X-Forwarded-*
    # headers are believed.
    allowed_hosts: tuple[str, ...]
    trusted_proxies: tuple[Network, ...]
    page_cache_seconds: float
    storage: StorageSettings
    limits: LimitSettings
    auth: AuthSettings
    uploads: UploadSettings
    jobs: JobSettings
    signed_url_seconds: float
    web_dir: Path = WEB_DIR

    @property
    def stable_url(self) -> str:
        """The site's address where it cannot depend on a request: URLs printed by commands,
        invitation links, feed ids. ``site.url``, else http://127.0.0.1:8000."""
        return self.site_url or UNSET_SITE_URL

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def uploads_dir(self) -> Path:
        """Where tus uploads are received, until complete."""
        return self.data_dir / "uploads"


def _coerce(key: Key, raw: Any, origin: str) -> Any:
    if raw is None:
        raw = key.default
        if key.kind is not tuple:
            return raw
    if key.kind is tuple:
        return _coerce_list(key, raw, origin)
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


def _coerce_list(key: Key, raw: Any, origin: str) -> tuple[Any, ...]:
    """A YAML list, or a comma-separated string (as the environment gives)."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list | tuple):
        raise SettingsError(f"{origin}: {key.section}.{key.name} must be a list, not {raw!r}.")
    items = []
    for entry in raw:
        text = str(entry).strip()
        if not text:
            continue
        try:
            items.append(key.item(text))
        except ValueError as exc:
            raise SettingsError(
                f"{origin}: {key.section}.{key.name} holds {text!r}, which is not {exc}."
            ) from None
    return tuple(items)


def _site_url(raw: str, origin: str) -> str:
    url = raw.strip().rstrip("/")
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host_name(parts.hostname or "")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise SettingsError(
            f"{origin}: site.url must be the site's public address, such as "
            f"https://live.example.org, not {raw!r}."
        )
    return url


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
    origins: dict[tuple[str, str], str] = {}
    for key in KEYS:
        raw = document.get(key.section, {}).get(key.name)
        origin = str(config_path)
        if key.env in env:
            raw, origin = env[key.env], key.env
        values[(key.section, key.name)] = _coerce(key, raw, origin)
        origins[(key.section, key.name)] = origin

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
        site_url=_site_url(values[("site", "url")], origins[("site", "url")]),
        allowed_hosts=values[("site", "allowed_hosts")],
        trusted_proxies=values[("site", "trusted_proxies")],
        page_cache_seconds=values[("site", "page_cache_seconds")],
        storage=storage,
        limits=limits,
        auth=section("auth", AuthSettings),
        uploads=section("uploads", UploadSettings),
        jobs=section("jobs", JobSettings),
        signed_url_seconds=values[("media", "signed_url_seconds")],
    )
