"""The catalogue site's HTML pages, the setlist as WebVTT and the language switch.

Handlers read what a page shows into plain dicts while their session is open, then render: a
template never touches the database. Lists, search and "other productions" only ever show ready,
public productions; an unlisted production is reachable by its own URL only (which holds a
secret: see cite_live.catalogue), a private, processing or failed one is 404 to everyone but its
owner and the admins.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from cite_live import i18n, params
from cite_live.access import media_link
from cite_live.auth import can_view, current_user
from cite_live.catalogue import is_listed, picture_key, production_at, production_query
from cite_live.i18n import N_, pick
from cite_live.listing import (
    artists_where,
    newest_first,
    page_of_productions,
    search_productions,
    visible,
)
from cite_live.metadata import page_metadata
from cite_live.models import Artist, Credit, Production, Tag, Venue, production_tags
from cite_live.player import player_data
from cite_live.presenter import artists_of, media_url
from cite_live.search import search_artists
from cite_live.services import Services
from cite_live.site import site_url
from cite_live.storage import ObjectStore
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    KIND_LABELS,
    SESSION_TYPE_LABELS,
    SESSION_TYPES,
    label,
    licence_of,
)

PER_PAGE = 24
ARTISTS_PER_PAGE = 48
INDEX_PER_PAGE = 100
HOME_LATEST = 12
HOME_FEATURED = 8
RELATED = 6
SEARCH_ARTISTS = 12
MAX_QUERY = 200
MAX_PAGE = 100_000
LETTERS = tuple(string.ascii_lowercase)
OTHER_LETTER = "#"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f\\]")
# A private production's page: for one viewer, with signed media links that must not leak
# through a shared cache or a Referer header.
PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}

# --- helpers -------------------------------------------------------------------------------------


def _lang(request: Request) -> str:
    lang = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def _site(request: Request) -> str:
    return site_url(request)


def _render(request: Request, template: str, context: dict[str, Any]) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, template, context)
    return response


def _not_found(request: Request, message: str) -> HTTPException:
    return HTTPException(404, i18n.gettext(message, _lang(request)))


def safe_link(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) address: a ``javascript:`` link is never an href."""
    if not isinstance(url, str) or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced "[" in the host, say
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    return None


def safe_next(target: str | None) -> str:
    """A path of this site to go back to, or "/": never another host (``//evil``,
    ``/\\evil``, ``https://evil``), and without a ``lang`` parameter that would undo the switch."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return "/"
    # Browsers read "/\\host" as "//host"; control characters could split a header.
    if target.startswith("//") or _UNSAFE_IN_PATH.search(target):
        return "/"
    try:
        parts = urlsplit(target)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    url = URL(target).remove_query_params("lang")
    path = url.path or "/"
    return f"{path}?{url.query}" if url.query else path


@dataclass(frozen=True)
class Pager:
    page: int
    per_page: int
    total: int
    prev_url: str | None
    next_url: str | None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def page_number(request: Request) -> int:
    raw = request.query_params.get("page")
    return params.whole_number(raw, "page", high=MAX_PAGE, lang=_lang(request)) or 1


def make_pager(request: Request, page: int, per_page: int, total: int) -> Pager:
    """Links to the neighbouring pages, keeping the other query parameters; a page past the end
    is a 404 rather than an empty list."""
    pages = max(1, math.ceil(total / per_page))
    if page > pages:
        raise _not_found(request, N_("There is no such page."))

    def link(number: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        if number > 1:
            params.append(("page", str(number)))
        query = urlencode(params)
        return request.url.path + (f"?{query}" if query else "")

    return Pager(
        page=page,
        per_page=per_page,
        total=total,
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
    )


def card(production: Production, store: ObjectStore, site: str, lang: str) -> dict[str, Any]:
    """What a list shows of a production."""
    return {
        "url": f"/productions/{production.slug}",
        "title": pick(production.title, production.title_en, lang),
        "kind": production.kind,
        "kind_label": label(KIND_LABELS, production.kind, lang),
        "duration": production.duration,
        "image": media_url(store, site)(picture_key(production)),
        "artists": artists_of(production),
        "venue": production.venue.name if production.venue else None,
        "recorded_on": production.recorded_on,
        "session_type": label(SESSION_TYPE_LABELS, production.session_type, lang),
    }


def _cards(request: Request, productions: Sequence[Production]) -> list[dict[str, Any]]:
    store = request.app.state.services.store
    site, lang = _site(request), _lang(request)
    return [card(p, store, site, lang) for p in productions]


def artist_card(artist: Artist) -> dict[str, Any]:
    return {
        "url": f"/artists/{artist.slug}",
        "name": artist.name,
        "commune": artist.commune,
        "disciplines": [d for d in artist.disciplines or [] if isinstance(d, str)],
    }


def _page_of_productions(
    request: Request, session: Session, *where: Any
) -> tuple[list[dict[str, Any]], Pager]:
    page = page_number(request)
    rows, total = page_of_productions(
        session, [visible(), *where], offset=(page - 1) * PER_PAGE, limit=PER_PAGE
    )
    return _cards(request, rows), make_pager(request, page, PER_PAGE, total)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# --- pages ---------------------------------------------------------------------------------------


def home(request: Request) -> Response:
    lang = _lang(request)
    with _services(request).sessions() as session:
        latest, total = page_of_productions(session, [visible()], offset=0, limit=HOME_LATEST)
        featured = session.scalars(
            select(Artist)
            .where(Artist.featured.is_(True))
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
        context = {
            "latest": _cards(request, latest),
            "total": total,
            "featured": [artist_card(a) for a in featured],
            "venues": [
                {"url": f"/venues/{v.slug}", "name": v.name, "count": n} for v, n in venue_rows
            ],
            "session_types": [
                {
                    "url": "/search?" + urlencode({"type": code}),
                    "label": label(SESSION_TYPE_LABELS, code, lang),
                    "count": n,
                }
                for code, n in sorted(type_rows, key=_session_type_order)
            ],
        }
    return _render(request, "home.html", {"nav": "home", **context})


def _session_type_order(row: Any) -> tuple[int, str]:
    code = row[0]
    return (SESSION_TYPES.index(code) if code in SESSION_TYPES else len(SESSION_TYPES), code)


def _letter_of(artist: Artist) -> str:
    first = artist.search_text[:1]
    return first.upper() if first in LETTERS else OTHER_LETTER


def artists_index(request: Request) -> Response:
    query = request.query_params
    letter = query.get("letter", "").strip().lower()
    # Without control characters: PostgreSQL refuses a NUL in a query, and nothing holds one.
    discipline = params.text(query.get("discipline")).strip()[:MAX_QUERY]
    commune = params.text(query.get("commune")).strip()[:MAX_QUERY]
    page = page_number(request)
    initial = func.substr(Artist.search_text, 1, 1)
    where: list[Any] = []
    if letter in LETTERS:
        where.append(initial == letter)
    elif letter == OTHER_LETTER:
        where.append(initial.not_in(LETTERS))
    else:
        letter = ""
    with _services(request).sessions() as session:
        where += artists_where(session, discipline=discipline, commune=commune)
        total = session.scalar(select(func.count()).select_from(Artist).where(*where)) or 0
        pager = make_pager(request, page, ARTISTS_PER_PAGE, total)
        rows = session.scalars(
            select(Artist)
            .where(*where)
            .order_by(Artist.search_text, Artist.id)
            .offset(pager.offset)
            .limit(ARTISTS_PER_PAGE)
        ).all()
        disciplines: set[str] = set()
        for values in session.scalars(select(Artist.disciplines)):
            disciplines.update(d for d in values or [] if isinstance(d, str))
        communes = session.scalars(
            select(Artist.commune).where(Artist.commune.is_not(None)).distinct()
        ).all()
        groups: list[dict[str, Any]] = []
        for artist in rows:
            initial_letter = _letter_of(artist)
            if not groups or groups[-1]["letter"] != initial_letter:
                groups.append({"letter": initial_letter, "artists": []})
            groups[-1]["artists"].append(artist_card(artist))
    context = {
        "nav": "artists",
        "groups": groups,
        "total": total,
        "pager": pager,
        "letters": [c.upper() for c in LETTERS] + [OTHER_LETTER],
        "letter": letter.upper(),
        "disciplines": sorted(disciplines, key=str.casefold),
        "discipline": discipline,
        "communes": sorted((c for c in communes if c), key=str.casefold),
        "commune": commune,
    }
    return _render(request, "artists.html", context)


_Sluggish = TypeVar("_Sluggish", Artist, Venue)


def _by_slug(request: Request, session: Session, model: type[_Sluggish], missing: str) -> _Sluggish:
    """The row of ``model`` named by the path's slug, or the 404 page saying ``missing``."""
    slug = params.path_name(request.path_params["slug"])
    row = session.scalars(select(model).where(model.slug == slug)).first() if slug else None
    if row is None:
        raise _not_found(request, missing)
    return row


def artist_page(request: Request) -> Response:
    lang = _lang(request)
    page = page_number(request)
    with _services(request).sessions() as session:
        artist = _by_slug(request, session, Artist, N_("There is no artist at this address."))
        where = (Credit.artist_id == artist.id, visible())
        credited = select(Credit.role, Production).join(
            Production, Credit.production_id == Production.id
        )
        # A prolific artist has hundreds of sessions: a page of them at a time, performer
        # credits first, then each other role, newest first within a role.
        credits = session.execute(
            credited.where(*where)
            .order_by(
                case((Credit.role == "performer", 0), else_=1),
                Credit.role,
                Production.published_at.desc(),
                Production.id,
            )
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
            .options(
                selectinload(Production.credits).selectinload(Credit.artist),
                selectinload(Production.current_version),
                selectinload(Production.venue),
            )
        ).all()
        listed = session.scalar(
            select(func.count()).select_from(Credit).join(Production).where(*where)
        )
        sessions_count = session.scalar(
            select(func.count(func.distinct(Credit.production_id)))
            .select_from(Credit)
            .join(Production)
            .where(*where)
        )
        store, site = _services(request).store, _site(request)
        roles: dict[str, list[dict[str, Any]]] = {}
        for role, production in credits:
            roles.setdefault(role, []).append(card(production, store, site, lang))
        context = {
            "nav": "artists",
            "artist": {
                **artist_card(artist),
                "slug": artist.slug,
                "bio": artist.bio or "",
                "links": _links(artist.links),
            },
            "roles": [
                {"role": role, "label": label(CREDIT_ROLE_LABELS, role, lang), "productions": cards}
                for role, cards in roles.items()
            ],
            "count": sessions_count or 0,
            "pager": make_pager(request, page, PER_PAGE, listed or 0),
        }
    return _render(request, "artist.html", context)


def _links(links: Any) -> list[dict[str, str]]:
    """An artist's links, as ``{"url", "label"}``; anything that is not an http(s) URL is left
    out. Entries may be plain URLs or objects with a url and a label."""
    shown: list[dict[str, str]] = []
    for entry in links if isinstance(links, list) else []:
        if isinstance(entry, dict):
            url = safe_link(entry.get("url") or entry.get("href"))
            text = entry.get("label") or entry.get("title") or entry.get("name")
        else:
            url, text = safe_link(entry), None
        if url:
            shown.append({"url": url, "label": str(text) if text else urlsplit(url).netloc})
    return shown


def _production_by_slug(
    request: Request, session: Session, slug: str, *, then: str = ""
) -> Production:
    """The production at ``/productions/{slug}{then}``; the 404 of a missing one for whoever may
    not see it, so that nobody learns it is there. Asked for at the secret address it had while
    unlisted, a redirect to the same path at its address."""
    production = production_at(
        session, slug, production_query().options(selectinload(Production.chapters))
    )
    if production is None or not can_view(current_user(request), production, by_address=True):
        raise _not_found(request, N_("There is no production at this address."))
    if production.slug != slug:
        # Temporary: should it be unlisted again, this address leads nowhere.
        query = f"?{request.url.query}" if request.url.query else ""
        location = f"/productions/{quote(production.slug)}{then}{query}"
        raise HTTPException(302, headers={"Location": location})
    return production


def for_managers_only(production: Production) -> bool:
    """Private, processing or failed: a page shown to its managers alone, shared with nobody."""
    return production.visibility == "private" or production.status != "ready"


def _paragraphs(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]


def related_query(production_id: str, artist_ids: set[int]) -> Select[Production]:
    """The newest visible productions of the same artists ("other sessions"), as cards."""
    others = select(Credit.production_id).where(Credit.artist_id.in_(artist_ids))
    where = [visible(), Production.id != production_id, Production.id.in_(others)]
    return newest_first(where).limit(RELATED)


def production_page(request: Request) -> Response:
    lang = _lang(request)
    services = _services(request)
    site = _site(request)
    with services.sessions() as session:
        production = _production_by_slug(request, session, request.path_params["slug"])
        private = for_managers_only(production)
        artist_ids = {credit.artist_id for credit in production.credits}
        related = session.scalars(related_query(production.id, artist_ids)).all()
        context = {
            "production": {
                "id": production.id,
                "slug": production.slug,
                "title": pick(production.title, production.title_en, lang),
                "kind": production.kind,
                "kind_label": label(KIND_LABELS, production.kind, lang),
                "status": production.status,
                "unlisted": production.visibility == "unlisted",
                "private": private,
                # Only listed productions belong in search engines.
                "noindex": not is_listed(production),
                "paragraphs": _paragraphs(
                    pick(production.description, production.description_en, lang)
                ),
                "duration": production.duration,
                "recorded_on": production.recorded_on,
                "session_type": label(SESSION_TYPE_LABELS, production.session_type, lang),
                "session_type_url": (
                    "/search?" + urlencode({"type": production.session_type})
                    if production.session_type
                    else None
                ),
                "venue": (
                    {
                        "name": production.venue.name,
                        "url": f"/venues/{production.venue.slug}",
                        "commune": production.venue.commune,
                    }
                    if production.venue
                    else None
                ),
                "licence": licence_of(production.licence, lang),
                "tags": [{"name": t.name, "url": f"/tags/{t.slug}"} for t in production.tags],
                "credits": [
                    {
                        "name": c.artist.name,
                        "url": f"/artists/{c.artist.slug}",
                        "role": label(CREDIT_ROLE_LABELS, c.role, lang),
                    }
                    for c in production.credits
                ],
                "chapters": [
                    {
                        "title": chapter.title,
                        "seconds": max(0, int(chapter.start)),
                        "url": f"/productions/{production.slug}?t={max(0, int(chapter.start))}",
                    }
                    for chapter in production.chapters
                ],
            },
            "artists": artists_of(production),
            "player_data": player_data(
                production,
                services.store,
                site,
                lang=lang,
                link=media_link(services, production, site),
            ),
            # A page for its managers is shared with nobody: no previews, no structured data,
            # no oEmbed link (oEmbed answers only for what plays, to anyone).
            "meta": None if private else page_metadata(production, services.store, site, lang),
            "related": _cards(request, related),
        }
    response = _render(request, "production.html", context)
    if private:
        response.headers.update(PRIVATE_HEADERS)
    return response


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


def chapters_vtt(request: Request) -> Response:
    with _services(request).sessions() as session:
        production = _production_by_slug(
            request, session, request.path_params["slug"], then="/chapters.vtt"
        )
        chapters = [(chapter.title, chapter.start) for chapter in production.chapters]
        body = chapters_webvtt(chapters, production.duration)
        private = for_managers_only(production)
    headers = (
        {"Cache-Control": "private, no-store"}
        if private
        else {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}
    )
    return PlainTextResponse(body, media_type="text/vtt", headers=headers)


def venues_index(request: Request) -> Response:
    page = page_number(request)
    with _services(request).sessions() as session:
        total = session.scalar(select(func.count()).select_from(Venue)) or 0
        pager = make_pager(request, page, INDEX_PER_PAGE, total)
        counts = (
            select(Production.venue_id, func.count(Production.id).label("n"))
            .where(visible())
            .group_by(Production.venue_id)
            .subquery()
        )
        rows = session.execute(
            select(Venue, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.venue_id == Venue.id)
            .order_by(Venue.name, Venue.id)
            .offset(pager.offset)
            .limit(INDEX_PER_PAGE)
        ).all()
        venues = [
            {"url": f"/venues/{v.slug}", "name": v.name, "commune": v.commune, "count": n}
            for v, n in rows
        ]
    return _render(request, "venues.html", {"nav": "venues", "venues": venues, "pager": pager})


def venue_page(request: Request) -> Response:
    with _services(request).sessions() as session:
        venue = _by_slug(request, session, Venue, N_("There is no venue at this address."))
        productions, pager = _page_of_productions(request, session, Production.venue_id == venue.id)
        context = {
            "nav": "venues",
            "venue": {
                "name": venue.name,
                "commune": venue.commune,
                "paragraphs": _paragraphs(venue.description or ""),
            },
            "productions": productions,
            "pager": pager,
        }
    return _render(request, "venue.html", context)


def tags_index(request: Request) -> Response:
    page = page_number(request)
    with _services(request).sessions() as session:
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
        pager = make_pager(request, page, INDEX_PER_PAGE, total)
        rows = session.execute(
            select(Tag, used.c.n)
            .join(used, used.c.tag_id == Tag.id)
            .order_by(Tag.name, Tag.id)
            .offset(pager.offset)
            .limit(INDEX_PER_PAGE)
        ).all()
        tags = [{"url": f"/tags/{t.slug}", "name": t.name, "count": n} for t, n in rows]
    return _render(request, "tags.html", {"nav": "tags", "tags": tags, "pager": pager})


def tag_page(request: Request) -> Response:
    with _services(request).sessions() as session:
        slug = params.path_name(request.path_params["slug"])
        tag = session.scalars(select(Tag).where(Tag.slug == slug)).first() if slug else None
        tagged = select(production_tags.c.production_id).where(
            production_tags.c.tag_id == (tag.id if tag else -1)
        )
        productions, pager = _page_of_productions(request, session, Production.id.in_(tagged))
        if tag is None or pager.total == 0:
            raise _not_found(request, N_("There is no tag at this address."))
        context = {"nav": "tags", "tag": {"name": tag.name}, "productions": productions}
    return _render(request, "tag.html", {**context, "pager": pager})


def search_page(request: Request) -> Response:
    query = request.query_params
    q = params.text(query.get("q")).strip()[:MAX_QUERY]
    session_type = query.get("type", "")
    kind = query.get("kind", "")
    session_type = session_type if session_type in SESSION_TYPE_LABELS else ""
    kind = kind if kind in KIND_LABELS else ""
    page = page_number(request)
    lang = _lang(request)
    searched = bool(q or session_type or kind)
    artists: list[dict[str, Any]] = []
    artist_total = 0
    productions: list[dict[str, Any]] = []
    pager: Pager | None = None
    if searched:
        with _services(request).sessions() as session:
            if q and page == 1 and not (session_type or kind):
                found, artist_total = search_artists(session, q, offset=0, limit=SEARCH_ARTISTS)
                artists = [artist_card(a) for a in found]
            rows, total = search_productions(
                session,
                q,
                offset=(page - 1) * PER_PAGE,
                limit=PER_PAGE,
                kind=kind or None,
                session_type=session_type or None,
            )
            pager = make_pager(request, page, PER_PAGE, total)
            productions = _cards(request, rows)
    context = {
        "nav": "search",
        "q": q,
        "searched": searched,
        "artists": artists,
        "artist_total": artist_total,
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
    return _render(request, "search.html", context)


def set_language(request: Request) -> Response:
    code = request.path_params["code"]
    if code not in i18n.LANGUAGES:
        raise _not_found(request, N_("This language is not available."))
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        i18n.COOKIE, code, max_age=LANGUAGE_COOKIE_AGE, path="/", samesite="lax", httponly=True
    )
    return response
