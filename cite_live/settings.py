"""Settings: declared once, with pydantic-settings, loaded from storage.yaml and the environment.

Every key of storage.yaml is a field of one of the sections below: its type, its default and, in
its docstring, what it means (the README's table says the same words; a test holds them
together, and checks that storage.yaml comments every key). :class:`Declared` gathers the
sections and names the environment variables: ``CITE_LIVE_<SECTION>_<NAME>`` overrides a key,
lists are comma-separated there; three names of the outside contract stand apart,
``CITE_LIVE_DATA_DIR``, ``CITE_LIVE_CONFIG`` and ``CITE_LIVE_DATABASE_URL``.

What the rest of the code reads is :class:`Settings`, made from the declaration by
:func:`load_settings`. pydantic's errors stop at that boundary, as one-sentence SettingsError.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.dataclasses import dataclass as section
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cite_live import podcast_art
from cite_live.mail import SITE_NAME, parse_sender, parse_smtp_url
from transcoder import Limits

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "storage.yaml"
WEB_DIR = ROOT / "web"
ENV_PREFIX = "CITE_LIVE_"
# Where URLs made outside a request point when site.url is not set: the address
# `cite-live serve` binds by default.
UNSET_SITE_URL = "http://127.0.0.1:8000"
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# The transcoder's own defaults: limits.* start from them, and the transcoder stays unaware of us.
_TRANSCODER_LIMITS = Limits()

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


def _list_of(item: Callable[[str], Any]) -> PlainValidator:
    """A YAML list, or a comma-separated string (as the environment gives), each item turned
    into ``item``; the ValueErrors say the rest of the sentence after the key's name."""

    def validate(raw: Any) -> tuple[Any, ...]:
        if isinstance(raw, str):
            raw = raw.split(",")
        if not isinstance(raw, list | tuple):
            raise ValueError(f"must be a list, not {raw!r}")
        items = []
        for entry in raw:
            text = str(entry).strip()
            if not text:
                continue
            try:
                items.append(item(text))
            except ValueError as exc:
                raise ValueError(f"holds {text!r}, which is not {exc}") from None
        return tuple(items)

    return PlainValidator(validate)


def _site_url(raw: str) -> str:
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
        raise ValueError(
            f"must be the site's public address, such as https://live.example.org, not {raw!r}"
        )
    return url


def _smtp_url(raw: Any) -> str:
    url = str(raw).strip()
    if url:
        parse_smtp_url(url)
    return url


def _sender(raw: Any) -> str:
    text = str(raw).strip()
    return parse_sender(text) if text else ""


# --- the declaration: one section per section of storage.yaml ------------------------------------

# Unknown keys are refused; a number given where text is expected (a bucket named 2024) is text.
_SECTION = ConfigDict(extra="forbid", coerce_numbers_to_str=True, use_attribute_docstrings=True)


@section(frozen=True, config=_SECTION)
class StorageSection:
    backend: Literal["local", "s3"] = "local"
    """`local` (default) or `s3`"""


@section(frozen=True, config=_SECTION)
class LocalSection:
    path: str = "media"
    """media folder, relative to the data dir"""
    accel_redirect: str = ""
    """nginx internal location serving the media folder (X-Accel-Redirect); empty: the app sends the bytes"""  # noqa: E501


@section(frozen=True, config=_SECTION)
class S3Section:
    bucket: str = "cite-live"
    """bucket for originals and HLS"""
    prefix: str = ""
    """key prefix inside the bucket"""
    endpoint_url: str = ""
    """S3-compatible endpoint (SeaweedFS, MinIO, Ceph); empty for AWS"""
    region: str = "us-east-1"
    """region given to the client"""
    addressing_style: Literal["path", "virtual"] = "path"
    """`path` or `virtual`"""
    public_base_url: str = ""
    """public or CDN base URL players use"""
    browser_endpoint_url: str = ""
    """the S3 endpoint as browsers reach it, which private media's signed links point at (empty: `s3.endpoint_url`)"""  # noqa: E501


@section(frozen=True, config=_SECTION)
class LimitSettings:
    max_bytes: int = _TRANSCODER_LIMITS.max_bytes
    """largest capture accepted"""
    max_duration: float = _TRANSCODER_LIMITS.max_duration
    """longest capture accepted, in seconds"""
    max_pixels: int = _TRANSCODER_LIMITS.max_pixels
    """largest frame accepted, width × height"""
    timeout_factor: float = _TRANSCODER_LIMITS.timeout_factor
    """ffmpeg wall-clock limit, × the capture's duration"""


@section(frozen=True, config=_SECTION)
class SiteSection:
    url: Annotated[str, PlainValidator(_site_url)] = ""
    """public address every absolute URL starts with, and Atom ids are made from (empty: the address a request arrived at; outside a request, `http://127.0.0.1:8000`)"""  # noqa: E501
    allowed_hosts: Annotated[tuple[str, ...], _list_of(host_name)] = (
        "localhost",
        "127.0.0.1",
        "::1",
    )
    """host names answered besides `site.url`'s and the bind address, comma-separated (default `localhost,127.0.0.1,::1`)"""  # noqa: E501
    trusted_proxies: Annotated[tuple[Network, ...], _list_of(network)] = ()
    """addresses or networks of the proxies whose `X-Forwarded-*` headers are believed, comma-separated (default: none)"""  # noqa: E501
    metrics_allow: Annotated[tuple[Network, ...], _list_of(network)] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    """addresses or networks that may read `/metrics`, comma-separated (default `127.0.0.0/8,::1`: this machine only)"""  # noqa: E501
    page_cache_seconds: float = 10.0
    """how long anonymous pages and API answers are reused (0: off)"""
    contact: Annotated[str, PlainValidator(_sender)] = ""
    """email address partner sites write to, to be listed or for help, shown on the partners' guide (empty: none shown)"""  # noqa: E501


@section(frozen=True, config=_SECTION)
class AuthSettings:
    # Empty: a random key is made once and kept in the data dir (see ``secret_key_for``).
    secret_key: str = ""
    """key signing sessions and private media links, the same in every web process (empty: generated into the data dir; `cite-live serve` refuses to start without one when `jobs.broker` is not `embedded`)"""  # noqa: E501
    session_days: float = 14.0
    """how long a login lasts"""
    login_attempts: int = 10
    """failed logins allowed per address and account in 15 minutes"""
    argon2_memory_kib: int = 65536
    """argon2id memory cost"""
    argon2_time_cost: int = 3
    """argon2id passes"""


@section(frozen=True, config=_SECTION)
class UploadSettings:
    quota_bytes: int = 50 * 1024**3
    """bytes of originals each account may keep"""
    expire_hours: float = 24.0
    """when an unfinished upload is removed"""


def _chunk_seconds(value: int) -> int:
    # Chunks join on segment boundaries (6 s, the transcoder's segment_seconds).
    if value < 0 or value % 6:
        raise ValueError("must be 0 (videos in one pass) or a positive multiple of 6 seconds")
    return value


@section(frozen=True, config=_SECTION)
class JobSettings:
    broker: Literal["embedded", "redis", "rabbitmq"] = "embedded"
    """`embedded` (workers inside `serve`), `redis` or `rabbitmq`"""
    url: str = ""
    """broker address, e.g. `redis://127.0.0.1:6379/0`"""
    threads: int = 1
    """transcodes run at once per process"""
    lease_seconds: float = 60.0
    """a running job's lease, renewed by heartbeat"""
    max_attempts: int = 3
    """runs before a job is marked failed"""
    sweep_seconds: float = 15.0
    """how often expired leases are looked for"""
    chunk_seconds: Annotated[int, AfterValidator(_chunk_seconds)] = 60
    """long videos are cut into chunks of this many seconds (a multiple of 6) that any worker encodes; 0: never"""  # noqa: E501


@section(frozen=True, config=_SECTION)
class MediaSection:
    signed_url_seconds: float = 900.0
    """lifetime of private media links"""


@section(frozen=True, config=_SECTION)
class MailSection:
    smtp_url: Annotated[str, PlainValidator(_smtp_url)] = ""
    """mail server, `smtp://[user:password@]host[:port][?starttls=yes]` or `smtps://…` (empty: messages are written to the server's log)"""  # noqa: E501
    # `from` is the key's name in storage.yaml and the environment; a keyword in Python.
    sender: Annotated[str, PlainValidator(_sender)] = Field(default="", alias="from")
    """sender of the site's messages, e.g. `Cité Live <live@example.org>` (empty: `no-reply@` the host of `site.url`)"""  # noqa: E501


def _email(raw: Any) -> str:
    text = str(raw).strip()
    if text and not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", text):
        raise ValueError(f"must be an email address such as podcast@example.org, not {raw!r}")
    return text


@section(frozen=True, config=_SECTION)
class PodcastSection:
    artwork: str = ""
    """the podcasts' artwork: a square JPEG or PNG of 1400 to 3000 pixels a side, relative to the data dir unless absolute (empty: one made by the site)"""  # noqa: E501
    owner_email: Annotated[str, PlainValidator(_email)] = ""
    """address podcast directories write to the podcasts' owner at (`itunes:email`, `podcast:locked`) (empty: `site.contact`'s)"""  # noqa: E501
    locked: bool = True
    """whether other podcast hosts must refuse to import the podcasts (`podcast:locked`)"""


class Declared(BaseSettings):
    """storage.yaml's sections, and the three names only the environment gives."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # CITE_LIVE_S3_ENDPOINT_URL is s3.endpoint_url: split once, after the section's name.
        env_nested_delimiter="_",
        env_nested_max_split=1,
        # Lists are comma-separated in the environment, not JSON.
        enable_decoding=False,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    data_dir: Path = Path("var")
    """folder holding the SQLite file and the local media folder"""
    config: Path = DEFAULT_CONFIG
    """the storage.yaml to read"""
    database_url: str = ""
    """SQLAlchemy URL, e.g. `postgresql://user@host/db` (empty: SQLite under the data dir)"""

    storage: StorageSection = StorageSection()
    local: LocalSection = LocalSection()
    s3: S3Section = S3Section()
    limits: LimitSettings = LimitSettings()
    site: SiteSection = SiteSection()
    auth: AuthSettings = AuthSettings()
    uploads: UploadSettings = UploadSettings()
    jobs: JobSettings = JobSettings()
    media: MediaSection = MediaSection()
    mail: MailSection = MailSection()
    podcast: PodcastSection = PodcastSection()

    @field_validator("data_dir", "config", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # CITE_LIVE_DATA_DIR= (set, empty) means the default, as an unset variable does.
        if value == "" and info.field_name is not None:
            return cls.model_fields[info.field_name].default
        return value


SECTIONS: dict[str, Any] = {
    name: field.annotation
    for name, field in Declared.model_fields.items()
    if field.annotation is not None and hasattr(field.annotation, "__pydantic_fields__")
}


class Key(NamedTuple):
    """One key of storage.yaml, as the declaration states it."""

    section: str
    name: str
    field: FieldInfo

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.name}".upper()

    @property
    def default(self) -> Any:
        return self.field.default

    @property
    def description(self) -> str:
        return self.field.description or ""


def _key_names(section: Any) -> dict[str, FieldInfo]:
    """A section's keys as storage.yaml and the environment name them (a field's alias, when it
    has one), with their fields."""
    return {field.alias or name: field for name, field in section.__pydantic_fields__.items()}


def _keys() -> Iterator[Key]:
    for name, cls in SECTIONS.items():
        for key, field in _key_names(cls).items():
            yield Key(name, key, field)


KEYS: tuple[Key, ...] = tuple(_keys())


# --- the sources ---------------------------------------------------------------------------------


class _Environment(EnvSettingsSource):
    """The environment given to :func:`load_settings` (os.environ unless a test gives another).
    A variable that names no key (another program's, a typo) is not a setting and is passed over."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Declared)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names are matched regardless of case, as pydantic-settings does with os.environ.
        return {name.lower(): value for name, value in self._environ.items()}

    def explode_env_vars(
        self, field_name: str, field: FieldInfo, env_vars: Mapping[str, str | None]
    ) -> dict[str, Any]:
        values = super().explode_env_vars(field_name, field, env_vars)
        known = _key_names(SECTIONS[field_name]) if field_name in SECTIONS else {}
        return {name: value for name, value in values.items() if name in known}


class _ConfigFile(YamlConfigSettingsSource):
    """storage.yaml: sections of keys, nothing else; a key left empty keeps its default."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(Declared, yaml_file=path)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        # The file named is read even when missing, to say so (the base class passes over it).
        return self._read_file(self.path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        path = self.path
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(
                f"Cannot read the configuration file {path}: {exc.strerror}."
            ) from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path} is not valid YAML: {exc}.") from exc
        if loaded is None:
            return {}
        if not isinstance(loaded, dict):
            raise SettingsError(
                f"{path} must hold sections of keys, not a {type(loaded).__name__}."
            )
        document: dict[str, Any] = {}
        for name, values in loaded.items():
            if not isinstance(values, dict):
                raise SettingsError(f"{path}: section {name!r} must hold keys.")
            if name not in SECTIONS:
                raise SettingsError(f"{path}: unknown key {name}.{next(iter(values), '')}.")
            document[name] = {key: value for key, value in values.items() if value is not None}
        return document


def _refusal(error: ErrorDetails, config_path: Path, environ: Mapping[str, str]) -> SettingsError:
    """pydantic's first complaint as one sentence naming the key and where its value came from."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc[:2])
    env = f"{ENV_PREFIX}{'_'.join(loc[:2])}".upper()
    origin = env if env in {name.upper() for name in environ} else str(config_path)
    kind = error["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return SettingsError(f"{config_path}: unknown key {key}.")
    if kind == "value_error":
        return SettingsError(f"{origin}: {key} {error.get('ctx', {}).get('error')}.")
    if kind == "literal_error" and len(loc) == 2 and loc[0] in SECTIONS:
        choices = get_args(_key_names(SECTIONS[loc[0]])[loc[1]].annotation)
        return SettingsError(
            f"{origin}: {key} must be one of {', '.join(choices)}, not {error['input']!r}."
        )
    expected = next(
        (word for prefix, word in _EXPECTED if kind.startswith(prefix)), "something else"
    )
    return SettingsError(f"{origin}: {key} must be {expected}, not {error['input']!r}.")


_EXPECTED = (("int", "an integer"), ("float", "a number"), ("string", "text"), ("path", "a path"))


# --- what the code reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageSettings:
    """storage, local and s3 together: what makes the store."""

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
    # The endpoint signed links are made for, when browsers reach S3 at another address.
    s3_browser_endpoint_url: str | None = None


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
    metrics_allow: tuple[Network, ...]
    # The address partner sites write to (the partners' guide); "" when not set.
    contact: str
    storage: StorageSettings
    limits: LimitSettings
    auth: AuthSettings
    uploads: UploadSettings
    jobs: JobSettings
    signed_url_seconds: float
    mail: MailSection
    # The podcasts' artwork file, checked (cite_live.podcast_art); None: the one made by the site.
    podcast_artwork: Path | None = None
    # itunes:email and podcast:locked's owner; "" when neither it nor site.contact is set.
    podcast_owner_email: str = ""
    podcast_locked: bool = True
    web_dir: Path = WEB_DIR

    @property
    def stable_url(self) -> str:
        """The site's address where it cannot depend on a request: URLs printed by commands,
        invitation links, feed ids. ``site.url``, else http://127.0.0.1:8000."""
        return self.site_url or UNSET_SITE_URL

    @property
    def site_host(self) -> str:
        """The host name of ``site.url``, else localhost."""
        return urlsplit(self.site_url).hostname or "localhost"

    @property
    def mail_sender(self) -> str:
        """The From of the site's messages: ``mail.from``, else no-reply at the site's host."""
        return self.mail.sender or f"{SITE_NAME} <no-reply@{self.site_host}>"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def uploads_dir(self) -> Path:
        """Where tus uploads are received, until complete."""
        return self.data_dir / "uploads"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read storage.yaml (or ``CITE_LIVE_CONFIG``) and let the environment override it."""
    env = os.environ if environ is None else environ
    environment = _Environment(env)
    config_path = Path(environment().get("config") or DEFAULT_CONFIG).resolve()
    try:
        # The environment first: it overrides the file. (mypy sees only the fields as arguments.)
        declared = Declared(  # type: ignore[call-arg]
            _build_sources=((environment, _ConfigFile(config_path)), {})
        )
    except ValidationError as exc:
        raise _refusal(exc.errors()[0], config_path, env) from None

    data_dir = declared.data_dir.resolve()
    database_url = declared.database_url or f"sqlite:///{data_dir / 'cite-live.db'}"
    local_root = Path(declared.local.path)
    if not local_root.is_absolute():
        local_root = data_dir / local_root
    s3 = declared.s3
    storage = StorageSettings(
        backend=declared.storage.backend,
        local_root=local_root,
        local_accel_redirect=declared.local.accel_redirect or None,
        s3_bucket=s3.bucket,
        s3_prefix=s3.prefix,
        s3_endpoint_url=s3.endpoint_url or None,
        s3_region=s3.region or None,
        s3_addressing_style=s3.addressing_style,
        s3_public_base_url=s3.public_base_url or None,
        s3_browser_endpoint_url=s3.browser_endpoint_url or None,
    )
    artwork = None
    if declared.podcast.artwork:
        artwork = Path(declared.podcast.artwork)
        if not artwork.is_absolute():
            artwork = data_dir / artwork
        if (problem := podcast_art.refusal(artwork)) is not None:
            origin = (
                "CITE_LIVE_PODCAST_ARTWORK"
                if "CITE_LIVE_PODCAST_ARTWORK" in {name.upper() for name in env}
                else str(config_path)
            )
            raise SettingsError(f"{origin}: podcast.artwork {problem}.")
    return Settings(
        data_dir=data_dir,
        config_path=config_path,
        database_url=database_url,
        site_url=declared.site.url,
        allowed_hosts=declared.site.allowed_hosts,
        trusted_proxies=declared.site.trusted_proxies,
        page_cache_seconds=declared.site.page_cache_seconds,
        metrics_allow=declared.site.metrics_allow,
        contact=declared.site.contact,
        storage=storage,
        limits=declared.limits,
        auth=declared.auth,
        uploads=declared.uploads,
        jobs=declared.jobs,
        signed_url_seconds=declared.media.signed_url_seconds,
        mail=declared.mail,
        podcast_artwork=artwork,
        podcast_owner_email=declared.podcast.owner_email or parseaddr(declared.site.contact)[1],
        podcast_locked=declared.podcast.locked,
    )
