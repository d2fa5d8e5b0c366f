"""The catalogue site's HTML pages, the setlist as WebVTT and the language switch.

Handlers read what a page shows into plain dicts while their session is open, then render: a
template never touches the database. Lists, search and "other productions" only ever show ready,
public productions; an unlisted production is reachable by its own URL only (which holds a
secret: see cite_live.catalogue), a private, processing or failed one is 404 to everyone but its
owner and the admins; but a processing one whose artist publishes it as soon as playable plays its
preview for everyone who may see it (cite_live.catalogue.may_play_preview).
"""

from __future__ import annotations

import os
import string
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.orm import Session, selectinload
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from cite_live import filesend, i18n, params, search
from cite_live.access import viewer_link
from cite_live.artist_profile import may_edit
from cite_live.auth import can_manage, can_view
from cite_live.catalogue import (
    download_key,
    has_listed_production,
    is_listed,
    playable_preview,
    preview_is_public,
    production_at,
    production_query,
)
from cite_live.collection_view import title_lang_of as collection_title_lang
from cite_live.collection_view import title_of as collection_title
from cite_live.collections import holding as in_collections
from cite_live.i18n import DEFAULT_LANGUAGE, N_
from cite_live.listing import (
    artist_initials,
    artists_where,
    by_slug,
    newest_first,
    page_of_productions,
    recent_artists,
    search_productions,
    visible,
)
from cite_live.metadata import artist_metadata, page_metadata
from cite_live.models import (
    Artist,
    Credit,
    MediaVersion,
    Production,
    Tag,
    Venue,
    production_tags,
)
from cite_live.player import player_data
from cite_live.presenter import (
    artist_card,
    artist_details,
    artists_of,
    card,
    cards,
    discipline_names,
    download_filename,
    paragraphs,
    production_details,
    tag_view,
)
from cite_live.search import search_artists
from cite_live.storage import StorageError
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    KIND_LABELS,
    SESSION_TYPE_LABELS,
    SESSION_TYPES,
    discipline_language,
    label,
)
from cite_live.web.context import ACCOUNT_CACHE, CORS, PRIVATE_HEADERS, Context, Pager, page
from cite_live.web.urls import Urls

PER_PAGE = 24
ARTISTS_PER_PAGE = 48
INDEX_PER_PAGE = 100
HOME_LATEST = 12
HOME_FEATURED = 8
RELATED = 6
SEARCH_ARTISTS = 12
# What an empty search proposes.
SUGGESTED = 8
SUGGESTED_ARTISTS = 8
MAX_QUERY = 200
LETTERS = tuple(string.ascii_lowercase)
OTHER_LETTER = "#"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600

# --- helpers -------------------------------------------------------------------------------------


def _cards(ctx: Context, productions: Sequence[Production]) -> list[dict[str, Any]]:
    return cards(productions, ctx.store, ctx.urls, ctx.lang)


def _page_of_productions(
    ctx: Context, session: Session, *where: Any
) -> tuple[list[dict[str, Any]], Pager]:
    page = ctx.page_number()
    rows, total = page_of_productions(
        session, [visible(), *where], offset=(page - 1) * PER_PAGE, limit=PER_PAGE
    )
    return _cards(ctx, rows), ctx.pager(page, PER_PAGE, total)


# --- pages ---------------------------------------------------------------------------------------


@page
def home(ctx: Context) -> Response:
    lang, urls = ctx.lang, ctx.urls
    with ctx.services.sessions() as session:
        latest, total = page_of_productions(session, [visible()], offset=0, limit=HOME_LATEST)
        featured = session.scalars(
            select(Artist)
            .where(Artist.featured.is_(True), has_listed_production())
            .order_by(Artist.search_text, Artist.id)
            .limit(HOME_FEATURED)
        ).all()
        per_venue = (
            select(Production.venue_id, func.count().label("n"))
            .where(visible(), Production.venue_id.is_not(None))
            .group_by(Production.venue_id)
            .subquery()
        )
        venue_rows = session.execute(
            select(Venue, per_venue.c.n)
            .join(per_venue, per_venue.c.venue_id == Venue.id)
            .order_by(per_venue.c.n.desc(), Venue.name)
        ).all()
        type_rows = session.execute(
            select(Production.session_type, func.count())
            .where(visible(), Production.session_type.is_not(None))
            .group_by(Production.session_type)
        ).all()
        page_context = {
            "latest": _cards(ctx, latest),
            "total": total,
            "featured": [artist_card(a, ctx.store, urls, ctx.lang) for a in featured],
            "venues": [
                {"url": urls.venue(v.slug), "name": v.name, "count": n} for v, n in venue_rows
            ],
            "session_types": [
                {
                    "url": urls.search(type=code),
                    "label": label(SESSION_TYPE_LABELS, code, lang),
                    "count": n,
                }
                for code, n in sorted(type_rows, key=_session_type_order)
            ],
        }
    return ctx.render("home.html", {"nav": "home", **page_context})


def _session_type_order(row: Any) -> tuple[int, str]:
    code = row[0]
    return (SESSION_TYPES.index(code) if code in SESSION_TYPES else len(SESSION_TYPES), code)


def _letter_of(artist: Artist) -> str:
    first = artist.search_text[:1]
    return first.upper() if first in LETTERS else OTHER_LETTER


def _letter_links(ctx: Context, initials: set[str]) -> list[dict[str, str | None]]:
    """The A–Z index: each letter, and "#" for the other initials, with the address of its
    artists when a listed artist's name starts with it, None when none does (no link)."""
    others = any(initial not in LETTERS for initial in initials)
    return [
        {"letter": c.upper(), "url": ctx.urls.artists(letter=c) if c in initials else None}
        for c in LETTERS
    ] + [{"letter": OTHER_LETTER, "url": ctx.urls.artists(letter=OTHER_LETTER) if others else None}]


@page
def artists_index(ctx: Context) -> Response:
    query = ctx.query
    letter = query.get("letter", "").strip().lower()
    # Without control characters: PostgreSQL refuses a NUL in a query, and nothing holds one.
    discipline = params.text(query.get("discipline")).strip()[:MAX_QUERY]
    commune = params.text(query.get("commune")).strip()[:MAX_QUERY]
    page = ctx.page_number()
    initial = func.substr(Artist.search_text, 1, 1)
    where: list[Any] = []
    if letter in LETTERS:
        where.append(initial == letter)
    elif letter == OTHER_LETTER:
        where.append(initial.not_in(LETTERS))
    else:
        letter = ""
    with ctx.services.sessions() as session:
        where += artists_where(session, discipline=discipline, commune=commune)
        total = session.scalar(select(func.count()).select_from(Artist).where(*where)) or 0
        pager = ctx.pager(page, ARTISTS_PER_PAGE, total)
        rows = session.scalars(
            select(Artist)
            .where(*where)
            .order_by(Artist.search_text, Artist.id)
            .offset(pager.offset)
            .limit(ARTISTS_PER_PAGE)
        ).all()
        # Only what leads somewhere: the letters, disciplines and towns of listed artists.
        initials = artist_initials(session)
        disciplines: set[str] = set()
        for values in session.scalars(select(Artist.disciplines).where(has_listed_production())):
            disciplines.update(discipline_names(values))
        communes = session.scalars(
            select(Artist.commune)
            .where(Artist.commune.is_not(None), has_listed_production())
            .distinct()
        ).all()
        groups: list[dict[str, Any]] = []
        for artist in rows:
            initial_letter = _letter_of(artist)
            if not groups or groups[-1]["letter"] != initial_letter:
                groups.append({"letter": initial_letter, "artists": []})
            groups[-1]["artists"].append(artist_card(artist, ctx.store, ctx.urls, ctx.lang))
    page_context = {
        "nav": "artists",
        "groups": groups,
        "total": total,
        "pager": pager,
        "letters": _letter_links(ctx, initials),
        "letter": letter.upper(),
        "disciplines": sorted(disciplines, key=str.casefold),
        # The filter lists them as typed: a known one typed in the other language says so.
        "discipline_langs": {
            d: written
            for d in disciplines
            if (written := discipline_language(d)) and written != ctx.lang
        },
        "discipline": discipline,
        "communes": sorted((c for c in communes if c), key=str.casefold),
        "commune": commune,
    }
    return ctx.render("artists.html", page_context)


_Sluggish = TypeVar("_Sluggish", Artist, Venue)


def _by_slug(ctx: Context, session: Session, model: type[_Sluggish], missing: str) -> _Sluggish:
    """The row of ``model`` named by the path's slug, or the 404 page saying ``missing``."""
    row = by_slug(session, model, ctx.path_name("slug"))
    if row is None:
        raise ctx.not_found(missing)
    return row


@page
def artist_page(ctx: Context) -> Response:
    lang = ctx.lang
    page = ctx.page_number()
    with ctx.services.sessions() as session:
        artist = _by_slug(ctx, session, Artist, N_("There is no artist at this address."))
        # Each production once, under the artist's first role on it (performer first, then the
        # others alphabetically): "0" for performer, "1" and the role's code for another.
        role_key = case(
            (Credit.role == "performer", literal("0")), else_=literal("1") + Credit.role
        )
        primary = (
            select(Credit.production_id, func.min(role_key).label("role_key"))
            .where(Credit.artist_id == artist.id)
            .group_by(Credit.production_id)
            .subquery()
        )
        # A prolific artist has hundreds of productions: a page of them at a time, by role,
        # newest first within a role.
        rows = session.execute(
            select(primary.c.role_key, Production)
            .join(Production, Production.id == primary.c.production_id)
            .where(visible())
            .order_by(primary.c.role_key, Production.published_at.desc(), Production.id)
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
            .options(
                selectinload(Production.credits).selectinload(Credit.artist),
                selectinload(Production.current_version),
                selectinload(Production.venue),
            )
        ).all()
        productions_count = (
            session.scalar(
                select(func.count())
                .select_from(primary)
                .join(Production, Production.id == primary.c.production_id)
                .where(visible())
            )
            or 0
        )
        roles: dict[str, list[dict[str, Any]]] = {}
        for key, production in rows:
            role = "performer" if key == "0" else key[1:]
            roles.setdefault(role, []).append(card(production, ctx.store, ctx.urls, lang))
        # Its own accounts and the admins get a link to its form; such a page is kept by no cache.
        editable = may_edit(ctx.user, artist.id)
        page_context = {
            "nav": "artists",
            "artist": artist_details(artist, ctx.store, ctx.urls, lang),
            "meta": artist_metadata(artist, ctx.store, ctx.site, lang),
            "edit_url": ctx.urls.studio_profile(artist.id) if editable else None,
            "roles": [
                {"role": role, "label": label(CREDIT_ROLE_LABELS, role, lang), "productions": shown}
                for role, shown in roles.items()
            ],
            "count": productions_count,
            "pager": ctx.pager(page, PER_PAGE, productions_count),
        }
    return ctx.render("artist.html", page_context, cache=ACCOUNT_CACHE if editable else None)


def _production_by_slug(
    ctx: Context, session: Session, at: Callable[[Urls, str], str] = Urls.production
) -> tuple[Production, MediaVersion | None]:
    """The production whose page (or its chapters, or its file: ``at`` names the address) the
    path names, and the preview it plays while processing when the viewer may play it
    (cite_live.catalogue.playable_preview); the 404 of a missing one for whoever may see
    neither, so that nobody learns it is there. Asked for at an address it held before (see
    cite_live.catalogue), a redirect to the same address made of its present slug."""
    slug = ctx.path_param("slug")
    production = production_at(
        session, slug, production_query().options(selectinload(Production.chapters))
    )
    preview = (
        playable_preview(session, ctx.user, production, by_address=True)
        if production is not None
        else None
    )
    if production is None or (
        not can_view(ctx.user, production, by_address=True) and preview is None
    ):
        raise ctx.not_found(N_("There is no production at this address."))
    if production.slug != slug:
        # For good: renamed or made public, its address is the new one. Should the old one
        # stop leading here (made unlisted anew), a browser that kept this answer lands on the
        # new address, which then leads nowhere either.
        location = at(ctx.urls, production.slug)
        query = ctx.request.url.query
        raise HTTPException(301, headers={"Location": f"{location}?{query}" if query else location})
    return production, preview


def for_managers_only(production: Production, preview: MediaVersion | None = None) -> bool:
    """Private, processing or failed: a page shown to its managers alone, shared with nobody;
    but the page of a processing production whose ``preview`` its artist publishes early is
    everyone's who may see it."""
    if preview is not None and preview_is_public(production):
        return False
    return production.visibility == "private" or production.status != "ready"


def related_query(production_id: str, artist_ids: set[int]) -> Select[Production]:
    """The newest visible productions of the same artists ("other sessions"), as cards."""
    others = select(Credit.production_id).where(Credit.artist_id.in_(artist_ids))
    where = [visible(), Production.id != production_id, Production.id.in_(others)]
    return newest_first(where).limit(RELATED)


@page
def production_page(ctx: Context) -> Response:
    lang, services, site = ctx.lang, ctx.services, ctx.site
    with services.sessions() as session:
        production, preview = _production_by_slug(ctx, session)
        private = for_managers_only(production, preview)
        # Its managers get a link to its edit page: a page of theirs, kept by nobody else.
        editable = can_manage(ctx.user, production)
        artist_ids = {credit.artist_id for credit in production.credits}
        related = session.scalars(related_query(production.id, artist_ids)).all()
        page_context = {
            "production": production_details(
                production, ctx.urls, lang, private=private, listed=is_listed(production)
            ),
            "artists": artists_of(production),
            "player_data": player_data(
                production,
                services.store,
                site,
                lang=lang,
                link=viewer_link(services, production, site, preview),
                preview=preview,
            ),
            # A page for its managers is shared with nobody: no previews, no structured data,
            # no oEmbed link (oEmbed answers only for what plays, to anyone).
            "meta": None if private else page_metadata(production, services.store, site, lang),
            "related": _cards(ctx, related),
            "edit_url": ctx.urls.studio_edit(production.id) if editable else None,
            # "In: Festival X": the public collections holding it.
            "collections": [
                {
                    "url": ctx.urls.collection(c.slug),
                    "title": collection_title(c, lang),
                    "title_lang": collection_title_lang(c, lang),
                }
                for c in in_collections(session, production.id)
            ],
        }
    headers = PRIVATE_HEADERS if private else None
    return ctx.render(
        "production.html", page_context, headers=headers, cache=ACCOUNT_CACHE if editable else None
    )


def vtt_text(text: str) -> str:
    """Cue text that WebVTT shows as written: no markup, no "-->", no blank line ending the cue."""
    one_line = " ".join(text.split())
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_time(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def chapters_webvtt(chapters: Sequence[tuple[str, float]], duration: float | None) -> str:
    """WebVTT chapters: each cue runs until the next one starts, the last until the end."""
    lines = ["WEBVTT", ""]
    ordered = sorted(chapters, key=lambda chapter: chapter[1])
    for index, (title, start) in enumerate(ordered):
        if index + 1 < len(ordered):
            end = ordered[index + 1][1]
        elif duration is not None and duration > start:
            end = duration
        else:
            end = start + 1
        end = max(end, start + 0.001)
        lines += [str(index + 1), f"{vtt_time(start)} --> {vtt_time(end)}", vtt_text(title), ""]
    return "\n".join(lines)


@page
def chapters_vtt(ctx: Context) -> Response:
    with ctx.services.sessions() as session:
        production, preview = _production_by_slug(ctx, session, Urls.chapters)
        chapters = [(chapter.title, chapter.start) for chapter in production.chapters]
        body = chapters_webvtt(chapters, production.duration)
        private = for_managers_only(production, preview)
    headers = (
        {"Cache-Control": "private, no-store"}
        if private
        else {**CORS, "Cache-Control": "public, max-age=60"}
    )
    return PlainTextResponse(body, media_type="text/vtt", headers=headers)


def attachment(filename: str) -> str:
    """A Content-Disposition that saves the file as ``filename`` (RFC 6266): an ASCII name for
    every client, and the exact one in ``filename*`` when it is not ASCII."""
    folded = unicodedata.normalize("NFKD", filename)
    ascii_name = "".join(ch for ch in folded if ch.isascii() and not unicodedata.combining(ch))
    ascii_name = " ".join(ascii_name.replace('"', "").replace("\\", "").split())
    stem, dot, extension = ascii_name.rpartition(".")
    if not any(ch.isalnum() for ch in (stem if dot else ascii_name)):
        # Nothing of the name is ASCII ("東京.m4a"): a plain name all the same, never ".m4a".
        ascii_name = f"production{dot}{extension}"
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="")
    return value


class StoredFile(Response):
    """The local store's file open at ``fd``, sent as the media route sends its files (Range,
    validators, HEAD; :mod:`cite_live.filesend`) with ``headers``; closed once sent."""

    def __init__(
        self, fd: int, info: filesend.FileInfo, content_type: str, headers: dict[str, str]
    ):
        super().__init__(status_code=200, headers=headers)
        self.fd, self.info, self.content_type = fd, info, content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = [(name, value) for name, value in self.raw_headers if name != b"content-length"]
        try:
            await filesend.send_file(
                scope, receive, send, self.fd, self.info, self.content_type, extra
            )
        finally:
            os.close(self.fd)


@page
def production_download(ctx: Context) -> Response:
    """The production's ``.m4a`` under the name "<artists> - <title>.m4a", when its artist
    allows downloads and its licence permits them (cite_live.catalogue.download_key): sent by
    the site from the local store, or a redirect to a signed address of the bucket that names
    it so. Otherwise the 404 of a missing file, whoever asks."""
    store = ctx.services.store
    with ctx.services.sessions() as session:
        production, _preview = _production_by_slug(ctx, session, Urls.production_download)
        key = download_key(production)
        filename = download_filename(production, ctx.lang)
    if key is None:
        raise ctx.not_found(N_("There is no file to save at this address."))
    disposition = attachment(filename)
    # Never kept by the site's page cache (a file is no page), nor by a shared cache: the
    # artist may stop allowing downloads.
    headers = {"Content-Disposition": disposition, "Cache-Control": "private, max-age=300"}
    if not store.serves_own_bytes:
        seconds = ctx.services.settings.signed_url_seconds
        try:
            url = store.presigned_url(key, seconds, content_disposition=disposition)
        except StorageError as exc:
            raise ctx.not_found(N_("There is no file to save at this address.")) from exc
        return RedirectResponse(
            url, status_code=302, headers={"Cache-Control": "private, no-store"}
        )
    try:
        fd = store.open_file(key)
    except StorageError as exc:
        raise ctx.not_found(N_("There is no file to save at this address.")) from exc
    info = filesend.regular_file(fd)
    if info is None:
        os.close(fd)
        raise ctx.not_found(N_("There is no file to save at this address."))
    return StoredFile(fd, info, "audio/mp4", headers)


@page
def venues_index(ctx: Context) -> Response:
    page = ctx.page_number()
    with ctx.services.sessions() as session:
        # Only venues with something to play: a venue page without one would be a dead end.
        counts = (
            select(Production.venue_id, func.count(Production.id).label("n"))
            .where(visible(), Production.venue_id.is_not(None))
            .group_by(Production.venue_id)
            .subquery()
        )
        total = session.scalar(select(func.count()).select_from(counts)) or 0
        pager = ctx.pager(page, INDEX_PER_PAGE, total)
        rows = session.execute(
            select(Venue, counts.c.n)
            .join(counts, counts.c.venue_id == Venue.id)
            .order_by(Venue.name, Venue.id)
            .offset(pager.offset)
            .limit(INDEX_PER_PAGE)
        ).all()
        venues = [
            {"url": ctx.urls.venue(v.slug), "name": v.name, "commune": v.commune, "count": n}
            for v, n in rows
        ]
    return ctx.render("venues.html", {"nav": "venues", "venues": venues, "pager": pager})


@page
def venue_page(ctx: Context) -> Response:
    with ctx.services.sessions() as session:
        venue = _by_slug(ctx, session, Venue, N_("There is no venue at this address."))
        productions, pager = _page_of_productions(ctx, session, Production.venue_id == venue.id)
        page_context = {
            "nav": "venues",
            "venue": {
                "name": venue.name,
                "commune": venue.commune,
                "paragraphs": paragraphs(venue.description or ""),
                # Written in French only, the site's language: marked so on English pages.
                "description_lang": None if ctx.lang == DEFAULT_LANGUAGE else DEFAULT_LANGUAGE,
            },
            "productions": productions,
            "pager": pager,
        }
    return ctx.render("venue.html", page_context)


@page
def tags_index(ctx: Context) -> Response:
    page = ctx.page_number()
    with ctx.services.sessions() as session:
        # Only tags that a visitor can follow to something: a tag used by private productions
        # alone says nothing here.
        used = (
            select(production_tags.c.tag_id, func.count(Production.id).label("n"))
            .join(Production, Production.id == production_tags.c.production_id)
            .where(visible())
            .group_by(production_tags.c.tag_id)
            .subquery()
        )
        total = session.scalar(select(func.count()).select_from(used)) or 0
        pager = ctx.pager(page, INDEX_PER_PAGE, total)
        rows = session.execute(
            select(Tag, used.c.n)
            .join(used, used.c.tag_id == Tag.id)
            .order_by(Tag.name, Tag.id)
            .offset(pager.offset)
            .limit(INDEX_PER_PAGE)
        ).all()
        tags = [{**tag_view(t, ctx.urls, ctx.lang), "count": n} for t, n in rows]
    return ctx.render("tags.html", {"nav": "tags", "tags": tags, "pager": pager})


@page
def tag_page(ctx: Context) -> Response:
    with ctx.services.sessions() as session:
        tag = by_slug(session, Tag, ctx.path_name("slug"))
        tagged = select(production_tags.c.production_id).where(
            production_tags.c.tag_id == (tag.id if tag else -1)
        )
        productions, pager = _page_of_productions(ctx, session, Production.id.in_(tagged))
        if tag is None or pager.total == 0:
            raise ctx.not_found(N_("There is no tag at this address."))
        page_context = {
            "nav": "tags",
            "tag": tag_view(tag, ctx.urls, ctx.lang),
            "productions": productions,
        }
    return ctx.render("tag.html", {**page_context, "pager": pager})


@page
def search_page(ctx: Context) -> Response:
    query = ctx.query
    q = params.text(query.get("q")).strip()[:MAX_QUERY]
    session_type = query.get("type", "")
    kind = query.get("kind", "")
    session_type = session_type if session_type in SESSION_TYPE_LABELS else ""
    kind = kind if kind in KIND_LABELS else ""
    page = ctx.page_number()
    lang = ctx.lang
    searched = bool(q or session_type or kind)
    artists: list[dict[str, Any]] = []
    artist_total = 0
    productions: list[dict[str, Any]] = []
    pager: Pager | None = None
    if searched:
        with ctx.services.sessions() as session:
            if q and page == 1 and not (session_type or kind):
                found, artist_total = search_artists(session, q, offset=0, limit=SEARCH_ARTISTS)
                artists = [artist_card(a, ctx.store, ctx.urls, ctx.lang) for a in found]
            rows, total = search_productions(
                session,
                q,
                offset=(page - 1) * PER_PAGE,
                limit=PER_PAGE,
                kind=kind or None,
                session_type=session_type or None,
            )
            pager = ctx.pager(page, PER_PAGE, total)
            productions = _cards(ctx, rows)
    # Nothing asked, or nothing found: the newest productions and their artists, not a blank.
    suggested: list[dict[str, Any]] = []
    suggested_artists: list[dict[str, Any]] = []
    if not productions and not artists:
        with ctx.services.sessions() as session:
            # Without their count, which would read every listed production.
            recent = session.scalars(newest_first([visible()]).limit(SUGGESTED)).all()
            suggested = _cards(ctx, list(recent))
            suggested_artists = [
                artist_card(a, ctx.store, ctx.urls)
                for a in recent_artists(session, limit=SUGGESTED_ARTISTS)
            ]
    page_context = {
        "suggested": suggested,
        "suggested_artists": suggested_artists,
        "nav": "search",
        "q": q,
        "searched": searched,
        "artists": artists,
        "artist_total": artist_total,
        "count_limit": search.COUNT_LIMIT,
        "productions": productions,
        "pager": pager,
        "session_type": session_type,
        "kind": kind,
        "session_types": [
            {"code": code, "label": label(SESSION_TYPE_LABELS, code, lang)}
            for code in SESSION_TYPE_LABELS
        ],
        "kinds": [{"code": code, "label": label(KIND_LABELS, code, lang)} for code in KIND_LABELS],
    }
    return ctx.render("search.html", page_context)


@page
def set_language(ctx: Context) -> Response:
    code = ctx.path_param("code")
    if code not in i18n.LANGUAGES:
        raise ctx.not_found(N_("This language is not available."))
    response = RedirectResponse(ctx.safe_next(ctx.query.get("next")), status_code=303)
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_AGE,
        path="/",
        samesite="lax",
        httponly=True,
    )
    return response
