"""The catalogue's records: artists, venues, productions, their credits, media versions and jobs."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from cite_live.vocabulary import (
    COLLECTION_KINDS,
    COLLECTION_STATES,
    EMBED_POLICIES,
    JOB_STATES,
    KINDS,
    ROLES,
    STATUSES,
    UPLOAD_STATES,
    VERSION_STATES,
    VISIBILITIES,
)

# Public identifiers are random so that unlisted productions cannot be found by counting.
_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"


def new_public_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(11))


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with its time zone, for times that did not come through a
    :class:`UTCDateTime` column (those are always UTC already)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in time, always handed back in UTC.

    PostgreSQL stores ``timestamp with time zone`` as an instant but hands it back in the
    session's ``TimeZone`` (``Etc/UTC`` on a stock Debian, ``Europe/Paris`` on a French
    server), and SQLite stores the UTC text without a zone. Whatever the database says, the app
    sees UTC: code that formats a time for HTTP (``usegmt=True``) or compares it with
    :func:`utcnow` never meets another zone. A moment without a zone is refused when written:
    the app has no way to tell which zone it meant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a datetime without a time zone cannot be stored: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    # SQLAlchemy reads this class attribute once, when the mapping is built; nothing mutates it.
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    # Shown to English readers; None or empty: they read the French one.
    bio_en: Mapped[str | None] = mapped_column(Text)
    commune: Mapped[str | None] = mapped_column(String(120))
    disciplines: Mapped[list[Any]] = mapped_column(default=list)
    links: Mapped[list[Any]] = mapped_column(default=list)
    featured: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The photo the artist chose (re-encoded, see cite_live.covers): a large version for their
    # page, whose size is kept for its width and height, and a square crop for cards.
    photo_key: Mapped[str | None] = mapped_column(String(400))
    photo_width: Mapped[int | None] = mapped_column(Integer)
    photo_height: Mapped[int | None] = mapped_column(Integer)
    photo_square_key: Mapped[str | None] = mapped_column(String(400))
    # Lower-case, accent-free text that search matches against ("Fauré" → "faure").
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    credits: Mapped[list[Credit]] = relationship(back_populates="artist")


def _link_table(name: str, left: tuple[str, str], right: tuple[str, str]) -> Table:
    """A many-to-many link: each row joins a ``left`` and a ``right`` row (column, the key it
    refers to) and goes with either of them. The pair is the primary key, which serves lookups
    from the left; an index serves those from the right."""
    return Table(
        name,
        Base.metadata,
        *(
            Column(column, ForeignKey(target, ondelete="CASCADE"), primary_key=True)
            for column, target in (left, right)
        ),
        Index(f"ix_{name}_{right[0]}", right[0]),
    )


user_artists = _link_table("user_artists", ("user_id", "users.id"), ("artist_id", "artists.id"))


class User(Base):
    """An account: an admin, or an artist linked to one or more artist profiles."""

    __tablename__ = "users"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased; the login form lower-cases what it is given.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # None until the invited person chooses a password.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="artist")
    # Bytes of uploads this account may keep (originals of its productions); None: the default.
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    artists: Mapped[list[Artist]] = relationship(secondary=user_artists)


class ApiToken(Base):
    """A Bearer token for scripts and the CLI; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so that its owner can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class Invitation(Base):
    """A one-time link an admin hands to a new account holder to choose a password."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A one-time link to choose a new password, asked for by the account's holder and mailed
    to its address. Apart from invitations: it lives an hour, not a week, and one kind of link
    never opens the other's page."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A device signed in to an account. Its cookie holds a secret of which only the SHA-256 is
    kept; deleting the row signs the device out, whoever holds a copy of the cookie."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Written back at most every few minutes (accounts.SEEN_PRECISION), not on every request.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # "Firefox · Linux": what its owner sees to tell devices apart (never the whole header).
    device: Mapped[str] = mapped_column(String(100), default="")


class Venue(Base):
    __tablename__ = "venues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    commune: Mapped[str | None] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    # Shown on English pages when an admin gave one; else the name, marked as French.
    name_en: Mapped[str | None] = mapped_column(String(100), default=None)


production_tags = _link_table(
    "production_tags", ("production_id", "productions.id"), ("tag_id", "tags.id")
)


class Production(Base):
    __tablename__ = "productions"
    __table_args__ = (
        _one_of("kind", KINDS),
        _one_of("status", STATUSES),
        _one_of("visibility", VISIBILITIES),
        _one_of("publish_as", VISIBILITIES),
        _one_of("embed_policy", EMBED_POLICIES),
        # A draft is private until its artist publishes it (cite_live.catalogue.publish).
        CheckConstraint("publish_as IS NULL OR visibility = 'private'", name="drafts_are_private"),
        # Listings filter on what the public may see, then sort by date or group by venue/type.
        Index("ix_productions_listing", "status", "visibility", "published_at"),
        Index("ix_productions_venue_listing", "status", "visibility", "venue_id"),
        Index("ix_productions_session_listing", "status", "visibility", "session_type"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_public_id)
    # Plain ("good", "good-2") while listed, "good-<secret>" otherwise (see cite_live.catalogue);
    # the addresses it held before are in production_slugs.
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str | None] = mapped_column(String(300))
    # True while the title is only a stand-in (the file name) that the file's tags may replace.
    title_is_placeholder: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(8), default="video")
    status: Mapped[str] = mapped_column(String(12), default="processing")
    duration: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str | None] = mapped_column(Text)
    recorded_on: Mapped[date | None] = mapped_column(Date)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venues.id", ondelete="SET NULL"))
    session_type: Mapped[str | None] = mapped_column(String(20))
    licence: Mapped[str | None] = mapped_column(String(40))
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    # Set while it is a draft (uploaded, not yet published by its artist): the visibility it
    # takes once published. None for a production that was published.
    publish_as: Mapped[str | None] = mapped_column(String(10))
    # Where its player may be framed: any site, the partners' (Partner), or this site only.
    embed_policy: Mapped[str] = mapped_column(
        String(10), default="anywhere", server_default="anywhere"
    )
    original_key: Mapped[str | None] = mapped_column(String(500))
    original_filename: Mapped[str | None] = mapped_column(String(300))
    # Size of the original in the store, counted against its owner's quota; None while it is
    # not there (not stored yet, or removed).
    original_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # The artist lets listeners save its .m4a from its page (cite_live.catalogue.download_key:
    # only under a licence that permits it).
    allow_download: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The artist lets everyone who may see it play it while it is still processing, as soon as
    # its preview plays (cite_live.catalogue.may_play_preview); otherwise only its managers do.
    publish_early: Mapped[bool] = mapped_column(default=False, server_default=false())
    # What is spoken or sung (BCP 47): the LANGUAGE of a video's audio rendition in its master
    # playlist when the file's own stream does not say.
    language: Mapped[str] = mapped_column(String(35), default="fr", server_default="fr")
    # An image the artist chose (re-encoded), shown instead of the version's cover or poster.
    cover_key: Mapped[str | None] = mapped_column(String(400))
    # The account that uploaded it; None for the demo catalogue and `cite-live ingest`.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_versions.id", use_alter=True, ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Lower-case, accent-free titles, description, credits, venue and tags, for search.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    venue: Mapped[Venue | None] = relationship()
    owner: Mapped[User | None] = relationship()
    credits: Mapped[list[Credit]] = relationship(
        back_populates="production",
        cascade="all, delete-orphan",
        order_by="Credit.position",
    )
    tags: Mapped[list[Tag]] = relationship(secondary=production_tags)
    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="production",
        cascade="all, delete-orphan",
        order_by="Chapter.start",
    )
    current_version: Mapped[MediaVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True
    )
    versions: Mapped[list[MediaVersion]] = relationship(
        back_populates="production",
        foreign_keys="MediaVersion.production_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Partner(Base):
    """A site allowed to frame the players of productions kept for partners
    (``embed_policy = "partners"``): its name, and the origins it is served from."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # "scheme://host[:port]" each, normalised by cite_live.partners.
    origins: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProductionSlug(Base):
    """An address a production held before its present one (a rename, a change of visibility),
    which leads to it while cite_live.catalogue's rules allow."""

    __tablename__ = "production_slugs"

    slug: Mapped[str] = mapped_column(String(220), primary_key=True)
    production_id: Mapped[str] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    # Held while it was unlisted ("good-<secret>"); otherwise a plain slug held while listed.
    secret: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Credit(Base):
    __tablename__ = "credits"
    __table_args__ = (UniqueConstraint("production_id", "artist_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    production_id: Mapped[str] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(60), default="performer")
    position: Mapped[int] = mapped_column(Integer, default=0)

    production: Mapped[Production] = relationship(back_populates="credits")
    artist: Mapped[Artist] = relationship(back_populates="credits")


class Chapter(Base):
    """One entry of a production's setlist: a title and where it starts."""

    __tablename__ = "chapters"

    id: Mapped[int] = mapped_column(primary_key=True)
    production_id: Mapped[str] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    start: Mapped[float] = mapped_column(Float)

    production: Mapped[Production] = relationship(back_populates="chapters")


class MediaVersion(Base):
    """One published (or being published) set of HLS objects under its own key prefix."""

    __tablename__ = "media_versions"
    __table_args__ = (_one_of("state", VERSION_STATES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    production_id: Mapped[str] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(12), default="building")
    prefix: Mapped[str] = mapped_column(String(300))
    master_key: Mapped[str | None] = mapped_column(String(400))
    poster_key: Mapped[str | None] = mapped_column(String(400))
    cover_key: Mapped[str | None] = mapped_column(String(400))
    waveform_key: Mapped[str | None] = mapped_column(String(400))
    storyboard_image_key: Mapped[str | None] = mapped_column(String(400))
    storyboard_vtt_key: Mapped[str | None] = mapped_column(String(400))
    # A single AAC file listeners may download (podcast feed enclosure), audio only.
    download_key: Mapped[str | None] = mapped_column(String(400))
    ladder: Mapped[list[Any]] = mapped_column(default=list)
    loudness_lufs: Mapped[float | None] = mapped_column(Float)
    duration: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    production: Mapped[Production] = relationship(
        back_populates="versions", foreign_keys=[production_id]
    )


class Job(Base):
    """A unit of background work; this table, not the broker, is the source of truth."""

    __tablename__ = "jobs"
    __table_args__ = (_one_of("state", JOB_STATES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    production_id: Mapped[str | None] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(12), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Last sign of life from the worker running it (the heartbeat renews the lease).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who holds the lease: host, process and thread, for the operator reading the table.
    worker: Mapped[str | None] = mapped_column(String(200))
    # When a message for it was last handed to the broker; the sweeper re-sends lost ones.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The upload it came from, if any: one upload makes exactly one job.
    upload_id: Mapped[str | None] = mapped_column(
        ForeignKey("uploads.id", ondelete="SET NULL"), unique=True
    )
    # A replacement's original: kept apart from the production's (which plays on) until this
    # job publishes it. None when the job transcodes the production's own original.
    original_key: Mapped[str | None] = mapped_column(String(500))
    original_filename: Mapped[str | None] = mapped_column(String(300))
    # Its size while the job holds it in the store (counted against the owner's quota); None
    # once it became the production's original or was removed.
    original_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    # A chunk of a segmented transcode (type "chunk", see cite_live.jobs.segmented): the
    # transcode it belongs to, its place, what to encode and what it encoded so far. A chunk
    # has no production of its own, so no query about a production's jobs finds it.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    chunk: Mapped[int | None] = mapped_column(Integer)
    task: Mapped[dict[str, Any] | None] = mapped_column()
    output: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Upload(Base):
    """A tus upload: its bytes live in a partial file under the data dir, or (S3) in the
    parts of a multipart upload, until it is complete."""

    __tablename__ = "uploads"
    __table_args__ = (_one_of("state", UPLOAD_STATES),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # None while the client defers the length (Upload-Defer-Length).
    length: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    filename: Mapped[str] = mapped_column(String(300), default="")
    # Upload-Metadata as sent, decoded: filename, filetype, title…
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(12), default="receiving")
    # The production made from it once complete (or the one it replaces the recording of).
    production_id: Mapped[str | None] = mapped_column(
        ForeignKey("productions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who may write, complete, store or expire it right now (any web process may get any of
    # its requests): a token and when that lease ends (see cite_live.uploads).
    writer: Mapped[str | None] = mapped_column(String(32))
    writer_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # With a store that assembles parts (S3): the key its bytes go to (its production's
    # original), the store's id of that multipart upload, and the parts it holds, each
    # {"number", "etag", "size"}; bytes past them wait in ``key`` + ".part".
    key: Mapped[str | None] = mapped_column(String(1024))
    parts_id: Mapped[str | None] = mapped_column(String(1024))
    parts: Mapped[list[Any] | None] = mapped_column()
    # The highest part number a writer was given. A writer whose lease ran out may still be
    # sending its part, so that number is never given again: the next writer's part cannot be
    # overwritten by a late one (the store keeps the last part sent under a number).
    part_reserved: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User] = relationship()


class Collection(Base):
    """An ordered, bilingual set of productions with a cover: a festival's highlight, a season
    at the Cité, an album, a podcast series (``vocabulary.COLLECTION_KINDS``). Made by an artist
    (``owner_id``) or, with no owner, by an admin for the site; see cite_live.collections."""

    __tablename__ = "collections"
    __table_args__ = (
        _one_of("kind", COLLECTION_KINDS),
        _one_of("state", COLLECTION_STATES),
        Index("ix_collections_listing", "state", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_public_id)
    # Chosen from the title when it is made, then kept: the address shared stays good.
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="album")
    # "draft" until its maker makes it public: nobody else sees it meanwhile.
    state: Mapped[str] = mapped_column(String(10), default="draft")
    title: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str | None] = mapped_column(Text)
    # Re-encoded like a production's cover (cite_live.covers), under collections/{id}/covers/.
    cover_key: Mapped[str | None] = mapped_column(String(400))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship()
    items: Mapped[list[CollectionItem]] = relationship(
        back_populates="collection",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="CollectionItem.position",
    )


class CollectionItem(Base):
    """A production's place in a collection; a production may be in several collections, once
    in each."""

    __tablename__ = "collection_items"
    __table_args__ = (UniqueConstraint("collection_id", "production_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    production_id: Mapped[str] = mapped_column(
        ForeignKey("productions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)

    collection: Mapped[Collection] = relationship(back_populates="items")
    production: Mapped[Production] = relationship()


class PlaySalt(Base):
    """The day's secret mixed into visitor hashes (cite_live.plays); forgotten the next day, so
    that yesterday's hashes can no longer be linked to anyone."""

    __tablename__ = "play_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


class Play(Base):
    """One listen of a production: no cookie, no address, only a hash that tells visitors apart
    within one day (cite_live.plays)."""

    __tablename__ = "plays"
    __table_args__ = (
        CheckConstraint("source IN ('site', 'embed')", name="source_allowed"),
        Index("ix_plays_production_day", "production_id", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    production_id: Mapped[str] = mapped_column(ForeignKey("productions.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    visitor: Mapped[str] = mapped_column(String(64))
    # The same beacon twice (a replay, a double send) is one play: the hash of the production
    # and the playback id the page drew, unique.
    dedupe: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(8))
    # The embedding page's scheme://host[:port]; None for this site's own pages.
    origin: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
