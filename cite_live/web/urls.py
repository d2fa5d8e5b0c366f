"""Every address of the site, written once.

:data:`PATHS` names each path; the route table (:mod:`cite_live.web.app`) is built from it, and
:class:`Urls` builds links from it for handlers, feeds, the API, the command line and templates
(``{{ urls.artist(slug) }}``). A value put into a path is percent-encoded here, once; a query
is encoded from keyword arguments, leaving out those that are None. ``Urls(site)`` also makes
absolute addresses on the site's public URL (:func:`cite_live.site.site_url`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cite_live.settings import WEB_DIR

PATHS: Mapping[str, str] = {
    # The catalogue.
    "home": "/",
    "artists": "/artists",
    "artist": "/artists/{slug}",
    "artist_feed": "/artists/{slug}/feed.atom",
    "artist_podcast": "/artists/{slug}/podcast.rss",
    "production": "/productions/{slug}",
    "chapters": "/productions/{slug}/chapters.vtt",
    "chapters_json": "/productions/{slug}/chapters.json",
    "production_download": "/productions/{slug}/download",
    "player_config": "/productions/{slug}/player.json",
    "venues": "/venues",
    "venue": "/venues/{slug}",
    "tags": "/tags",
    "tag": "/tags/{slug}",
    "search": "/search",
    "collections": "/collections",
    "collection_page": "/collections/{slug}",
    "collection_feed": "/collections/{slug}/feed.atom",
    "collection_podcast": "/collections/{slug}/podcast.rss",
    "set_language": "/lang/{code}",
    # Accounts.
    "login": "/login",
    "logout": "/logout",
    "account": "/account",
    "invite": "/invite/{token}",
    "password_forgot": "/login/forgot",
    "password_reset": "/login/reset/{token}",
    # The artist's studio and the admin page.
    "studio": "/studio",
    "studio_edit": "/studio/productions/{production_id}",
    "studio_replace": "/studio/productions/{production_id}/replace",
    "studio_delete": "/studio/productions/{production_id}/delete",
    "studio_retry": "/studio/productions/{production_id}/retry",
    "studio_profiles": "/studio/profiles",
    "studio_collections": "/studio/collections",
    "studio_collection": "/studio/collections/{collection_id}",
    "studio_profile": "/studio/profiles/{artist_id}",
    "studio_stats": "/studio/stats",
    "admin": "/admin",
    "admin_stats": "/admin/stats",
    "admin_publish": "/admin/productions/{production_id}/publish",
    "admin_unpublish": "/admin/productions/{production_id}/unpublish",
    "admin_user": "/admin/users/{user_id}",
    "admin_invitations": "/admin/invitations",
    "admin_artist_link": "/admin/artists/{artist_id}/accounts",
    "admin_artist_unlink": "/admin/artists/{artist_id}/accounts/{user_id}/unlink",
    "admin_partners": "/admin/partners",
    "admin_partner": "/admin/partners/{partner_id}",
    "admin_partner_delete": "/admin/partners/{partner_id}/delete",
    "admin_tags": "/admin/tags",
    "admin_tag": "/admin/tags/{tag_id}",
    # Partners: feeds, embeds, oEmbed.
    "site_feed": "/feed.atom",
    "podcast_feed": "/podcast.rss",
    "podcast_artwork": "/podcast.jpg",
    "embed": "/embed/{production_id}",
    "embed_collection": "/embed/collections/{collection_id}",
    "oembed": "/oembed",
    "partners_guide": "/partners",
    # The JSON API and tus uploads.
    "api_openapi": "/api/v1/openapi.json",
    "api_productions": "/api/v1/productions",
    "api_production": "/api/v1/productions/{production_id}",
    "api_artists": "/api/v1/artists",
    "api_artist": "/api/v1/artists/{slug}",
    "api_collection": "/api/v1/collections/{collection_id}",
    "api_my_productions": "/api/v1/me/productions",
    "api_my_stats": "/api/v1/me/stats",
    "api_plays": "/api/v1/plays",
    "api_uploads": "/api/v1/uploads/",
    "api_upload": "/api/v1/uploads/{upload_id}",
    # Media from the local store (cite_live.web.media), and the site's own files.
    "private_media": "/media/private/{token}/{key:path}",
    "media": "/media/{key:path}",
    "static": "/static",
    # For the operator's machines: load balancers, orchestrators, Prometheus.
    "healthz": "/healthz",
    "readyz": "/readyz",
    "metrics": "/metrics",
}

#: Where the paths of an area start: answered in JSON, or never cached, by prefix.
API_PREFIX = "/api/"
MEDIA_PREFIX = "/media/"
PRIVATE_MEDIA_PREFIX = "/media/private/"
STATIC_PREFIX = "/static/"
LANGUAGE_PREFIX = "/lang/"
UPLOADS_PREFIX = PATHS["api_uploads"].rstrip("/")

_PARAM = re.compile(r"{(\w+)(:\w+)?}")

#: What scripts/build writes beside the built files: each source file of ``web/static``
#: (``js/player.js``) to its built, fingerprinted file (``dist/js/player-HASH.js``) and, for a
#: script, the chunks it imports (``imports``).
MANIFEST = "dist/manifest.json"


@functools.cache
def manifest(static_dir: Path = WEB_DIR / "static") -> Mapping[str, Mapping[str, Any]]:
    """The build's manifest, read once per process; empty without a build (a development tree
    serves the source files)."""
    try:
        data = json.loads((static_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def path(name: str, /, **values: Any) -> str:
    """The path named ``name`` with ``values`` put into it, each percent-encoded (a ``path``
    value keeps its slashes); a missing or unknown value is a programming error."""
    template = PATHS[name]
    names = set()

    def fill(match: re.Match[str]) -> str:
        key, kind = match.group(1), match.group(2)
        names.add(key)
        return quote(str(values[key]), safe="/" if kind == ":path" else "")

    built = _PARAM.sub(fill, template)
    extra = set(values) - names
    if extra:
        raise TypeError(f"{name} takes no {', '.join(sorted(extra))}")
    return built


def with_query(
    url: str, query: Mapping[str, Any] | None = None, fragment: str | None = None
) -> str:
    """``url`` with ``query`` (None values left out) and a ``#fragment``."""
    pairs = [(key, str(value)) for key, value in (query or {}).items() if value is not None]
    if pairs:
        url += ("&" if "?" in url else "?") + urlencode(pairs)
    if fragment:
        url += "#" + quote(fragment, safe="-_.~")
    return url


class Urls:
    """The site's links: paths for pages and forms, absolute URLs through :meth:`absolute`."""

    def __init__(self, site: str = "") -> None:
        self.site = site.rstrip("/")

    def absolute(self, url: str) -> str:
        """``url`` (a path of this site) as an absolute URL on the site's public address."""
        return self.site + url

    # --- the catalogue ---------------------------------------------------------------------------

    def home(self) -> str:
        return path("home")

    def artists(self, **query: Any) -> str:
        return with_query(path("artists"), query)

    def artist(self, slug: str, **query: Any) -> str:
        return with_query(path("artist", slug=slug), query)

    def artist_feed(self, slug: str) -> str:
        return path("artist_feed", slug=slug)

    def artist_podcast(self, slug: str) -> str:
        """The podcast of an artist's audio productions."""
        return path("artist_podcast", slug=slug)

    def production(self, slug: str, **query: Any) -> str:
        """A production's page (``t=`` starts the player there)."""
        return with_query(path("production", slug=slug), query)

    def chapters(self, slug: str) -> str:
        return path("chapters", slug=slug)

    def chapters_json(self, slug: str) -> str:
        """The setlist as the podcasts' JSON chapters (cite_live.web.feeds)."""
        return path("chapters_json", slug=slug)

    def production_download(self, slug: str) -> str:
        """The production's file, as an attachment (when its artist allows downloads)."""
        return path("production_download", slug=slug)

    def player_config(self, slug: str) -> str:
        """What the lasting player needs to play a production (cite_live.web.player_config)."""
        return path("player_config", slug=slug)

    def venues(self, **query: Any) -> str:
        return with_query(path("venues"), query)

    def venue(self, slug: str, **query: Any) -> str:
        return with_query(path("venue", slug=slug), query)

    def tags(self, **query: Any) -> str:
        return with_query(path("tags"), query)

    def tag(self, slug: str, **query: Any) -> str:
        return with_query(path("tag", slug=slug), query)

    def search(self, **query: Any) -> str:
        return with_query(path("search"), query)

    def collections(self, **query: Any) -> str:
        return with_query(path("collections"), query)

    def collection(self, slug: str, **query: Any) -> str:
        return with_query(path("collection_page", slug=slug), query)

    def collection_feed(self, slug: str) -> str:
        return path("collection_feed", slug=slug)

    def collection_podcast(self, slug: str) -> str:
        """The podcast of a collection of kind podcast."""
        return path("collection_podcast", slug=slug)

    def set_language(self, code: str, next: str | None = None) -> str:
        return with_query(path("set_language", code=code), {"next": next})

    # --- accounts --------------------------------------------------------------------------------

    def login(self, next: str | None = None) -> str:
        return with_query(path("login"), {"next": next})

    def logout(self) -> str:
        return path("logout")

    def account(self) -> str:
        return path("account")

    def invite(self, token: str) -> str:
        return path("invite", token=token)

    def password_forgot(self) -> str:
        """Where a forgotten password is asked for: an email address, then a message."""
        return path("password_forgot")

    def password_reset(self, token: str) -> str:
        return path("password_reset", token=token)

    # --- the studio and the admin page -----------------------------------------------------------

    def studio(self, **query: Any) -> str:
        return with_query(path("studio"), query)

    def studio_edit(self, production_id: str, **query: Any) -> str:
        return with_query(path("studio_edit", production_id=production_id), query)

    def studio_replace(self, production_id: str) -> str:
        return path("studio_replace", production_id=production_id)

    def studio_delete(self, production_id: str, **query: Any) -> str:
        return with_query(path("studio_delete", production_id=production_id), query)

    def studio_retry(self, production_id: str) -> str:
        return path("studio_retry", production_id=production_id)

    def studio_profiles(self) -> str:
        """The artist profiles the signed-in account speaks for (or the only one's form)."""
        return path("studio_profiles")

    def studio_profile(self, artist_id: int, **query: Any) -> str:
        return with_query(path("studio_profile", artist_id=artist_id), query)

    def studio_collections(self, **query: Any) -> str:
        """The collections the signed-in account may edit, and the form making a new one."""
        return with_query(path("studio_collections"), query)

    def studio_collection(self, collection_id: str, **query: Any) -> str:
        return with_query(path("studio_collection", collection_id=collection_id), query)

    def studio_stats(self, **query: Any) -> str:
        """The plays of the signed-in account's productions (``days=``, ``production=``)."""
        return with_query(path("studio_stats"), query)

    def admin(self, fragment: str | None = None, **query: Any) -> str:
        return with_query(path("admin"), query, fragment)

    def admin_stats(self, **query: Any) -> str:
        return with_query(path("admin_stats"), query)

    def admin_publish(self, production_id: str) -> str:
        return path("admin_publish", production_id=production_id)

    def admin_unpublish(self, production_id: str) -> str:
        return path("admin_unpublish", production_id=production_id)

    def admin_user(self, user_id: int) -> str:
        return path("admin_user", user_id=user_id)

    def admin_invitations(self) -> str:
        return path("admin_invitations")

    def admin_artist_link(self, artist_id: int) -> str:
        return path("admin_artist_link", artist_id=artist_id)

    def admin_artist_unlink(self, artist_id: int, user_id: int) -> str:
        return path("admin_artist_unlink", artist_id=artist_id, user_id=user_id)

    def admin_partners(self, fragment: str | None = None, **query: Any) -> str:
        return with_query(path("admin_partners"), query, fragment)

    def admin_partner(self, partner_id: int, **query: Any) -> str:
        return with_query(path("admin_partner", partner_id=partner_id), query)

    def admin_partner_delete(self, partner_id: int) -> str:
        return path("admin_partner_delete", partner_id=partner_id)

    def admin_tags(self, fragment: str | None = None, **query: Any) -> str:
        return with_query(path("admin_tags"), query, fragment)

    def admin_tag(self, tag_id: int) -> str:
        return path("admin_tag", tag_id=tag_id)

    # --- partners --------------------------------------------------------------------------------

    def site_feed(self) -> str:
        return path("site_feed")

    def podcast_feed(self) -> str:
        return path("podcast_feed")

    def podcast_artwork(self) -> str:
        return path("podcast_artwork")

    def embed(self, address: str, **query: Any) -> str:
        """The iframe player of the production at ``address`` (its id, or its secret name)."""
        return with_query(path("embed", production_id=address), query)

    def embed_collection(self, collection_id: str, **query: Any) -> str:
        """The playlist player of a collection (its public id)."""
        return with_query(path("embed_collection", collection_id=collection_id), query)

    def partners_guide(self, fragment: str | None = None) -> str:
        return with_query(path("partners_guide"), {}, fragment)

    def oembed(self, **query: Any) -> str:
        return with_query(path("oembed"), query)

    # --- the API ---------------------------------------------------------------------------------

    def api_openapi(self) -> str:
        return path("api_openapi")

    def api_productions(self, **query: Any) -> str:
        return with_query(path("api_productions"), query)

    def api_production(self, production_id: str) -> str:
        return path("api_production", production_id=production_id)

    def api_artists(self, **query: Any) -> str:
        return with_query(path("api_artists"), query)

    def api_artist(self, slug: str) -> str:
        return path("api_artist", slug=slug)

    def api_collection(self, collection_id: str) -> str:
        return path("api_collection", collection_id=collection_id)

    def api_my_productions(self, **query: Any) -> str:
        return with_query(path("api_my_productions"), query)

    def api_my_stats(self, **query: Any) -> str:
        return with_query(path("api_my_stats"), query)

    def api_plays(self) -> str:
        """Where the player's beacon goes (web/static/js/plays.js)."""
        return path("api_plays")

    def api_uploads(self) -> str:
        return path("api_uploads")

    def api_upload(self, upload_id: str) -> str:
        return path("api_upload", upload_id=upload_id)

    # --- files -----------------------------------------------------------------------------------

    def media(self, key: str) -> str:
        return path("media", key=key)

    def private_media(self, token: str, key: str) -> str:
        return path("private_media", token=token, key=key)

    def static(self, name: str) -> str:
        """A file of ``web/static`` (``css/site.css``): its built, fingerprinted file when the
        build has one, the file itself otherwise."""
        name = name.lstrip("/")
        built = manifest().get(name)
        if built is not None:
            name = built["file"]
        return path("static") + "/" + quote(name, safe="/")

    def static_preloads(self, name: str) -> list[str]:
        """The chunks the built script ``name`` imports, for ``<link rel="modulepreload">``:
        none without a build (the browser follows the source files' imports)."""
        built = manifest().get(name.lstrip("/")) or {}
        return [path("static") + "/" + quote(chunk, safe="/") for chunk in built.get("imports", ())]
