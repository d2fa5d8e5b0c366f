"""Every route × every role: who gets what (reliability.md T7, T8, T10).

The table below is the contract. Each row is one request — a route, and for routes whose answer
depends on the production, which production (private, unlisted, public) — with the status each
role gets: an anonymous visitor, another artist, the owner, an admin. The owner owns every
production and upload of the test world; "other" is an artist with productions of their own.

A route of the app that no row exercises fails `test_every_route_is_in_the_matrix`: a new route
is added here, with its expected answers, in the same change.

Conventions the table shows: an unsafe request (POST, PATCH, DELETE) from a browser without a
session carries no CSRF token and is refused with 403 before any handler runs, whatever it
targets, so it tells nothing either; the API and tus, which scripts reach with a Bearer token,
answer 401 instead. A private production (and another account's upload, or a
production another artist owns in the studio) is answered like a missing one, 404 — never 403,
which would confirm it exists. Pages that need an account send anonymous visitors to the login
page (303); the API and tus answer 401, with the challenge RFC 9110 requires
(``WWW-Authenticate: Bearer realm="cite-live"``). Admin pages are 403 for artists: that they
exist is no secret. A signed media link is the capability itself: whoever holds it may fetch
until it expires, then 404. Every page but the embeddable player (and the card it shows
when it cannot play) refuses to be framed (T10).

While the matrix runs, the event loop serving it is watched: no request may hold it for more
than 100 ms (asyncio's debug mode reports every callback that does). Whatever touches the
database or the store runs in a worker thread; to make a statement run on the loop impossible
to miss, whatever the machine, every statement run on an event loop's thread waits a moment
first, while those of worker threads run at full speed.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image
from sqlalchemy import Engine, event, select, update
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from cite_live import access, partners
from cite_live.models import Collection, CollectionItem, Production, Tag
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from tests.account_fixtures import artist_id, login, make_user, token_for
from tests.app_fixtures import make_settings
from tests.test_api import publish_fake

ROLES = ("anonymous", "other", "owner", "admin")
EMAILS = {"other": "other@example.org", "owner": "owner@example.org", "admin": "admin@example.org"}
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class World:
    """What the requests of the matrix point at; every production and upload is the owner's."""

    ids: dict[str, str] = field(default_factory=dict)
    slugs: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)
    # The owner's collections, "public" and "draft", each holding the public production.
    collections: dict[str, str] = field(default_factory=dict)
    spare_user: int = 0
    # Partner sites: one edited, one deleted, by an admin.
    partners: dict[str, int] = field(default_factory=dict)

    def token(self, secret_key: str, production: str, seconds: int) -> str:
        return access.sign(secret_key, self.ids[production], int(time.time()) + seconds)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def tus_metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def build_world(services: Services, app: Any) -> World:
    world = World()
    owner = make_user(services, EMAILS["owner"], artists=["Élodie Fauré"])
    other = make_user(services, EMAILS["other"], artists=["Zoé Martin"])
    make_user(services, EMAILS["admin"], "admin")
    world.spare_user = make_user(services, "spare@example.org")
    with services.sessions.begin() as session:
        for name in ("kept", "doomed"):
            origins = f"https://{name}.example"
            partner = partners.save_partner(session, partners.PartnerForm(name, origins))
            world.partners[name] = partner.id
    made = {
        "private": "private",
        "unlisted": "unlisted",
        "public": "public",
        "edit": "public",  # edited, given a cover
        "doomed": "public",  # deleted from the studio
        "hidden": "public",  # unpublished by an admin
        "shown": "private",  # published by an admin
    }
    for name, visibility in made.items():
        world.ids[name] = publish_fake(
            services, f"Concert {name}", visibility=visibility, chapters=[("Ouverture", 0.0)]
        )
    world.ids["failed"] = publish_fake(services, "Concert failed", status="failed")
    services.store.put_bytes(f"originals/{world.ids['failed']}/capture.wav", b"RIFF")
    others = publish_fake(services, "Concert de Zoé", visibility="private", artists=["Zoé Martin"])
    world.ids["others"] = others
    with services.sessions.begin() as session:
        session.execute(
            update(Production)
            .where(Production.id.in_([v for k, v in world.ids.items() if k != "others"]))
            .values(owner_id=owner)
        )
        session.execute(
            update(Production).where(Production.id == world.ids["others"]).values(owner_id=other)
        )
        session.execute(
            update(Production)
            .where(Production.id == world.ids["failed"])
            .values(original_key=f"originals/{world.ids['failed']}/capture.wav")
        )
        for name, production_id in world.ids.items():
            production = session.get(Production, production_id)
            assert production is not None
            world.slugs[name] = production.slug
        # Albums, and podcast series (which have a podcast of their own), public and draft.
        for kind, state in (("album", "public"), ("album", "draft"), ("podcast", "public"),
                            ("podcast", "draft")):  # fmt: skip
            name = state if kind == "album" else f"{kind}-{state}"
            collection = Collection(
                title=f"Collection {name}",
                slug=f"collection-{name}",
                kind=kind,
                state=state,
                owner_id=owner,
            )
            session.add(collection)
            session.flush()
            session.add(
                CollectionItem(collection_id=collection.id, production_id=world.ids["public"])
            )
            world.collections[name] = collection.id
    for name in ("private", "public"):
        world.keys[name] = f"productions/{world.ids[name]}/j1/a128/seg_00001.m4s"
    # Their artist lets listeners save these three (CC BY 4.0): only a private one stays closed.
    with services.sessions.begin() as session:
        for name in ("private", "unlisted", "public"):
            production = session.get(Production, world.ids[name])
            assert production is not None and production.current_version is not None
            production.allow_download = True
            production.current_version.download_key = f"productions/{world.ids[name]}/j1/d.m4a"
            services.store.put_bytes(production.current_version.download_key, b"\0" * 64)
    # The owner's uploads, made with a token so that no role's session is involved.
    bearer = {"Authorization": f"Bearer {token_for(services, EMAILS['owner'])}", **TUS}
    with TestClient(app, base_url="http://testserver") as client:
        for name in ("kept", "doomed"):
            response = client.post(
                "/api/v1/uploads/",
                headers={
                    **bearer,
                    "Upload-Length": "10",
                    "Upload-Metadata": tus_metadata(filename="live.wav"),
                },
            )
            assert response.status_code == 201, response.text
            world.uploads[name] = response.headers["location"].rsplit("/", 1)[1]
    return world


Request = dict[str, Any]


@dataclass(frozen=True)
class Row:
    method: str
    route: str
    what: str
    url: Callable[[World, Services], str]
    expected: tuple[int, int, int, int]
    request: Callable[[World, Services], Request] = lambda world, services: {}


def row(
    method: str,
    route: str,
    what: str,
    url: Callable[[World, Services], str] | str,
    anonymous: int,
    other: int,
    owner: int,
    admin: int,
    request: Callable[[World, Services], Request] | None = None,
) -> Row:
    build = url if callable(url) else (lambda world, services, fixed=url: fixed)
    return Row(
        method,
        route,
        what,
        build,
        (anonymous, other, owner, admin),
        request or (lambda world, services: {}),
    )


def page(name: str) -> Callable[[World, Services], str]:
    return lambda world, services: f"/productions/{world.slugs[name]}"


def by_id(template: str, name: str) -> Callable[[World, Services], str]:
    return lambda world, services: template.format(id=world.ids[name])


def oembed(name: str) -> Callable[[World, Services], str]:
    return lambda world, services: (
        f"/oembed?url=http%3A%2F%2Ftestserver%2Fproductions%2F{world.slugs[name]}"
    )


def collection(template: str, state: str) -> Callable[[World, Services], str]:
    return lambda world, services: template.format(id=world.collections[state])


def collection_form(world: World, services: Services) -> Request:
    return {"data": {"title": "Collection retitrée", "kind": "season", "state": "public"}}


def upload(name: str) -> Callable[[World, Services], str]:
    return lambda world, services: f"/api/v1/uploads/{world.uploads[name]}"


def private_media(token_of: str, seconds: int, key_of: str) -> Callable[[World, Services], str]:
    def build(world: World, services: Services) -> str:
        token = world.token(services.secret_key, token_of, seconds)
        return f"/media/private/{token}/{world.keys[key_of]}"

    return build


def edit_form(world: World, services: Services) -> Request:
    return {"data": {"title": "Concert retitré", "visibility": "public"}}


def cover_form(world: World, services: Services) -> Request:
    return {**edit_form(world, services), "files": {"cover": ("cover.jpg", jpeg(), "image/jpeg")}}


def new_upload(world: World, services: Services) -> Request:
    metadata = tus_metadata(filename="a.wav")
    return {"headers": {**TUS, "Upload-Length": "10", "Upload-Metadata": metadata}}


def patch_bytes(world: World, services: Services) -> Request:
    headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    return {"headers": headers, "content": b"12345"}


def tus_headers(world: World, services: Services) -> Request:
    return {"headers": TUS}


def override(method: str) -> Callable[[World, Services], Request]:
    return lambda world, services: {"headers": {**TUS, "X-HTTP-Method-Override": method}}


def form(**fields: str) -> Callable[[World, Services], Request]:
    return lambda world, services: {"data": fields}


def spare_user(world: World, services: Services) -> str:
    return f"/admin/users/{world.spare_user}"


def profile(suffix: str = "") -> Callable[[World, Services], str]:
    """The address of the owner's artist profile (Élodie Fauré), followed by ``suffix``."""

    def build(world: World, services: Services) -> str:
        return f"/studio/profiles/{artist_id(services, 'Élodie Fauré')}{suffix}"

    return build


def admin_artist(suffix: str) -> Callable[[World, Services], str]:
    """An admin address of the profile "Zoé Martin" (``{user}``: the spare account's id)."""

    def build(world: World, services: Services) -> str:
        path = f"/admin/artists/{artist_id(services, 'Zoé Martin')}{suffix}"
        return path.replace("{user}", str(world.spare_user))

    return build


def partner(name: str, suffix: str = "") -> Callable[[World, Services], str]:
    return lambda world, services: f"/admin/partners/{world.partners[name]}{suffix}"


def admin_tag(slug: str) -> Callable[[World, Services], str]:
    def build(world: World, services: Services) -> str:
        with services.sessions() as session:
            return f"/admin/tags/{session.scalars(select(Tag.id).where(Tag.slug == slug)).one()}"

    return build


def play_of(name: str) -> Callable[[World, Services], Request]:
    """The player's beacon for the production ``name`` (by the address its player names it by)."""

    def build(world: World, services: Services) -> Request:
        address = world.slugs[name] if name == "unlisted" else world.ids[name]
        body = {"production": address, "playback": "p" * 32, "source": "site", "origin": None}
        return {"content": json.dumps(body)}

    return build


def profile_form(world: World, services: Services) -> Request:
    return {"data": {"bio": "Chanteuse."}, "files": {"photo": ("p.jpg", jpeg(), "image/jpeg")}}


# fmt: off
# method, route, what, url,                                           anonymous, other, owner, admin
MATRIX: tuple[Row, ...] = (
    # The catalogue: the same for everyone; lists never show unlisted or private productions.
    row("GET", "/", "", "/",                                                  200, 200, 200, 200),
    row("GET", "/artists", "", "/artists",                                    200, 200, 200, 200),
    row("GET", "/artists/{slug}", "", "/artists/elodie-faure",                200, 200, 200, 200),
    row("GET", "/artists/{slug}/feed.atom", "", "/artists/elodie-faure/feed.atom",
                                                                              200, 200, 200, 200),
    row("GET", "/artists/{slug}/podcast.rss", "", "/artists/elodie-faure/podcast.rss",
                                                                              200, 200, 200, 200),
    row("GET", "/venues", "", "/venues",                                      200, 200, 200, 200),
    row("GET", "/venues/{slug}", "", "/venues/nowhere",                       404, 404, 404, 404),
    row("GET", "/tags", "", "/tags",                                          200, 200, 200, 200),
    row("GET", "/tags/{slug}", "", "/tags/jazz",                              200, 200, 200, 200),
    row("GET", "/search", "", "/search?q=concert",                            200, 200, 200, 200),
    row("GET", "/lang/{code}", "", "/lang/en",                                303, 303, 303, 303),
    row("GET", "/feed.atom", "", "/feed.atom",                                200, 200, 200, 200),
    row("GET", "/podcast.rss", "", "/podcast.rss",                            200, 200, 200, 200),
    row("GET", "/podcast.jpg", "", "/podcast.jpg",                            200, 200, 200, 200),
    row("GET", "/partners", "", "/partners",                                  200, 200, 200, 200),
    # For the operator's machines; the metrics to site.metrics_allow only ("testclient" is not).
    row("GET", "/healthz", "", "/healthz",                                    200, 200, 200, 200),
    row("GET", "/readyz", "", "/readyz",                                      200, 200, 200, 200),
    row("GET", "/metrics", "", "/metrics",                                    403, 403, 403, 403),
    row("GET", "/api/v1/openapi.json", "", "/api/v1/openapi.json",            200, 200, 200, 200),
    row("GET", "/api/v1/productions", "", "/api/v1/productions",              200, 200, 200, 200),
    row("GET", "/api/v1/artists", "", "/api/v1/artists",                      200, 200, 200, 200),
    row("GET", "/api/v1/artists/{slug}", "", "/api/v1/artists/elodie-faure",  200, 200, 200, 200),
    # A production: its page, setlist, API object, embed and oEmbed, by visibility.
    row("GET", "/productions/{slug}", "private", page("private"),             404, 404, 200, 200),
    row("GET", "/productions/{slug}", "unlisted", page("unlisted"),           200, 200, 200, 200),
    row("GET", "/productions/{slug}", "public", page("public"),               200, 200, 200, 200),
    row("GET", "/productions/{slug}", "failed", page("failed"),               404, 404, 200, 200),
    row("GET", "/productions/{slug}/chapters.vtt", "private",
        lambda w, s: f"/productions/{w.slugs['private']}/chapters.vtt",      404, 404, 200, 200),
    row("GET", "/productions/{slug}/chapters.vtt", "unlisted",
        lambda w, s: f"/productions/{w.slugs['unlisted']}/chapters.vtt",     200, 200, 200, 200),
    row("GET", "/productions/{slug}/chapters.vtt", "public",
        lambda w, s: f"/productions/{w.slugs['public']}/chapters.vtt",       200, 200, 200, 200),
    # Its setlist as the podcasts' JSON chapters: only a listed production's, as the podcasts
    # list no other, whoever asks.
    row("GET", "/productions/{slug}/chapters.json", "private",
        lambda w, s: f"/productions/{w.slugs['private']}/chapters.json",     404, 404, 404, 404),
    row("GET", "/productions/{slug}/chapters.json", "unlisted",
        lambda w, s: f"/productions/{w.slugs['unlisted']}/chapters.json",    404, 404, 404, 404),
    row("GET", "/productions/{slug}/chapters.json", "failed",
        lambda w, s: f"/productions/{w.slugs['failed']}/chapters.json",      404, 404, 404, 404),
    row("GET", "/productions/{slug}/chapters.json", "public",
        lambda w, s: f"/productions/{w.slugs['public']}/chapters.json",      200, 200, 200, 200),
    # Its file, where its artist allows it: never a private production's, not even to its owner.
    row("GET", "/productions/{slug}/download", "private",
        lambda w, s: f"/productions/{w.slugs['private']}/download",          404, 404, 404, 404),
    row("GET", "/productions/{slug}/download", "unlisted",
        lambda w, s: f"/productions/{w.slugs['unlisted']}/download",         200, 200, 200, 200),
    row("GET", "/productions/{slug}/download", "public",
        lambda w, s: f"/productions/{w.slugs['public']}/download",           200, 200, 200, 200),
    row("GET", "/productions/{slug}/download", "failed",
        lambda w, s: f"/productions/{w.slugs['failed']}/download",           404, 404, 404, 404),
    # The lasting player's settings: the page's rules.
    row("GET", "/productions/{slug}/player.json", "private",
        lambda w, s: f"/productions/{w.slugs['private']}/player.json",       404, 404, 200, 200),
    row("GET", "/productions/{slug}/player.json", "unlisted",
        lambda w, s: f"/productions/{w.slugs['unlisted']}/player.json",      200, 200, 200, 200),
    row("GET", "/productions/{slug}/player.json", "public",
        lambda w, s: f"/productions/{w.slugs['public']}/player.json",        200, 200, 200, 200),
    row("GET", "/productions/{slug}/player.json", "failed",
        lambda w, s: f"/productions/{w.slugs['failed']}/player.json",        404, 404, 200, 200),
    row("GET", "/productions/{slug}/player.json", "another artist's private",
        lambda w, s: f"/productions/{w.slugs['others']}/player.json",        404, 200, 404, 200),
    row("GET", "/api/v1/productions/{production_id}", "private",
        by_id("/api/v1/productions/{id}", "private"),                        404, 404, 200, 200),
    # An unlisted production opens by its secret address; its id is no secret.
    row("GET", "/api/v1/productions/{production_id}", "unlisted",
        by_id("/api/v1/productions/{id}", "unlisted"),                       404, 404, 200, 200),
    row("GET", "/api/v1/productions/{production_id}", "unlisted, by its address",
        lambda w, s: f"/api/v1/productions/{w.slugs['unlisted']}",           200, 200, 200, 200),
    row("GET", "/api/v1/productions/{production_id}", "failed",
        by_id("/api/v1/productions/{id}", "failed"),                         404, 404, 200, 200),
    row("GET", "/api/v1/productions/{production_id}", "public",
        by_id("/api/v1/productions/{id}", "public"),                         200, 200, 200, 200),
    row("GET", "/api/v1/productions/{production_id}", "another artist's private",
        by_id("/api/v1/productions/{id}", "others"),                         404, 200, 404, 200),
    row("GET", "/embed/{production_id}", "private",
        by_id("/embed/{id}", "private"),                                     404, 404, 200, 200),
    row("GET", "/embed/{production_id}", "unlisted",
        by_id("/embed/{id}", "unlisted"),                                    404, 404, 200, 200),
    row("GET", "/embed/{production_id}", "unlisted, by its address",
        lambda w, s: f"/embed/{w.slugs['unlisted']}",                        200, 200, 200, 200),
    row("GET", "/embed/{production_id}", "failed",
        by_id("/embed/{id}", "failed"),                                      404, 404, 200, 200),
    row("GET", "/embed/{production_id}", "public",
        by_id("/embed/{id}", "public"),                                      200, 200, 200, 200),
    row("GET", "/oembed", "private", oembed("private"),                       404, 404, 404, 404),
    row("GET", "/oembed", "unlisted", oembed("unlisted"),                     200, 200, 200, 200),
    row("GET", "/oembed", "public", oembed("public"),                         200, 200, 200, 200),
    row("GET", "/oembed", "failed", oembed("failed"),                         404, 404, 404, 404),
    # Media: the public route refuses a private production's keys, to everyone; a signed link
    # works for whoever holds it until it expires, and only for its own production.
    row("GET", "/media/{key:path}", "private",
        lambda w, s: f"/media/{w.keys['private']}",                           404, 404, 404, 404),
    row("GET", "/media/{key:path}", "public",
        lambda w, s: f"/media/{w.keys['public']}",                            200, 200, 200, 200),
    row("OPTIONS", "/media/{key:path}", "preflight",
        lambda w, s: f"/media/{w.keys['public']}",                            204, 204, 204, 204),
    row("GET", "/media/private/{token}/{key:path}", "signed link, valid",
        private_media("private", 60, "private"),                             200, 200, 200, 200),
    row("GET", "/media/private/{token}/{key:path}", "signed link, expired",
        private_media("private", -1, "private"),                             404, 404, 404, 404),
    row("GET", "/media/private/{token}/{key:path}", "signed link of another production",
        private_media("public", 60, "private"),                              404, 404, 404, 404),
    # A collection: public ones to everyone, a draft to nobody but in the studio.
    row("GET", "/collections", "", "/collections",                            200, 200, 200, 200),
    row("GET", "/collections/{slug}", "public", "/collections/collection-public",
                                                                              200, 200, 200, 200),
    row("GET", "/collections/{slug}", "draft", "/collections/collection-draft",
                                                                              404, 404, 404, 404),
    row("GET", "/collections/{slug}/feed.atom", "public",
        "/collections/collection-public/feed.atom",                          200, 200, 200, 200),
    row("GET", "/collections/{slug}/feed.atom", "draft",
        "/collections/collection-draft/feed.atom",                           404, 404, 404, 404),
    # A podcast series' podcast: a public one's to everyone; a draft's, or a collection of
    # another kind's, to nobody.
    row("GET", "/collections/{slug}/podcast.rss", "public podcast series",
        "/collections/collection-podcast-public/podcast.rss",                200, 200, 200, 200),
    row("GET", "/collections/{slug}/podcast.rss", "draft podcast series",
        "/collections/collection-podcast-draft/podcast.rss",                 404, 404, 404, 404),
    row("GET", "/collections/{slug}/podcast.rss", "public album",
        "/collections/collection-public/podcast.rss",                        404, 404, 404, 404),
    row("GET", "/embed/collections/{collection_id}", "public",
        collection("/embed/collections/{id}", "public"),                     200, 200, 200, 200),
    row("GET", "/embed/collections/{collection_id}", "draft",
        collection("/embed/collections/{id}", "draft"),                      404, 404, 404, 404),
    row("GET", "/api/v1/collections/{collection_id}", "public",
        collection("/api/v1/collections/{id}", "public"),                    200, 200, 200, 200),
    row("GET", "/api/v1/collections/{collection_id}", "draft",
        collection("/api/v1/collections/{id}", "draft"),                     404, 404, 404, 404),
    # Accounts.
    row("GET", "/login", "", "/login",                                        200, 303, 303, 303),
    row("POST", "/login", "wrong password", "/login",                         403, 400, 400, 400,
        form(email="owner@example.org", password="not the password")),
    row("GET", "/account", "", "/account",                                    303, 200, 200, 200),
    row("POST", "/account", "new API token", "/account",                      403, 200, 200, 200,
        form(action="create_token", name="matrix")),
    row("GET", "/invite/{token}", "unknown invitation", "/invite/nope",       404, 404, 404, 404),
    row("POST", "/invite/{token}", "unknown invitation", "/invite/nope",      403, 404, 404, 404,
        form(password="a long enough password", confirm_password="a long enough password")),
    # A new password: asked for by anyone, with the same answer; a made-up link opens nothing.
    row("GET", "/login/forgot", "", "/login/forgot",                          200, 200, 200, 200),
    row("POST", "/login/forgot", "an address", "/login/forgot",               403, 303, 303, 303,
        form(email="nobody@example.org")),
    row("GET", "/login/reset/{token}", "unknown link", "/login/reset/nope",   404, 404, 404, 404),
    row("POST", "/login/reset/{token}", "unknown link", "/login/reset/nope",  403, 404, 404, 404,
        form(password="a long enough password", confirm_password="a long enough password")),
    # The studio: the owner and the admins; another artist meets a 404.
    row("GET", "/studio", "", "/studio",                                      303, 200, 200, 200),
    row("GET", "/api/v1/me/productions", "", "/api/v1/me/productions",       401, 200, 200, 200),
    row("GET", "/studio/stats", "", "/studio/stats",                          303, 200, 200, 200),
    row("GET", "/api/v1/me/stats", "", "/api/v1/me/stats",                   401, 200, 200, 200),
    # The player's beacon: no token, no CSRF (sendBeacon sends neither), the same for everyone;
    # plays count for what anyone may hear, and nothing else, its owner's preview included.
    row("POST", "/api/v1/plays", "public", "/api/v1/plays",                  204, 204, 204, 204,
        play_of("public")),
    row("POST", "/api/v1/plays", "unlisted", "/api/v1/plays",                204, 204, 204, 204,
        play_of("unlisted")),
    row("POST", "/api/v1/plays", "private", "/api/v1/plays",                 404, 404, 404, 404,
        play_of("private")),
    row("GET", "/studio/productions/{production_id}", "private",
        by_id("/studio/productions/{id}", "private"),                        303, 404, 200, 200),
    row("GET", "/studio/productions/{production_id}", "public",
        by_id("/studio/productions/{id}", "public"),                         303, 404, 200, 200),
    row("POST", "/studio/productions/{production_id}", "edit",
        by_id("/studio/productions/{id}", "edit"),                           403, 404, 303, 303,
        edit_form),
    row("POST", "/studio/productions/{production_id}", "edit with a cover",
        by_id("/studio/productions/{id}", "edit"),                           403, 404, 303, 303,
        cover_form),
    row("GET", "/studio/productions/{production_id}/replace", "",
        by_id("/studio/productions/{id}/replace", "private"),                303, 404, 200, 200),
    row("GET", "/studio/productions/{production_id}/delete", "",
        by_id("/studio/productions/{id}/delete", "private"),                 303, 404, 200, 200),
    row("POST", "/studio/productions/{production_id}/retry", "",
        by_id("/studio/productions/{id}/retry", "failed"),                   403, 404, 303, 303),
    row("POST", "/studio/productions/{production_id}/delete", "",
        by_id("/studio/productions/{id}/delete", "doomed"),                  403, 404, 303, 303),
    # An artist profile: its accounts and the admins; another artist meets a 404. An account
    # with one profile is led to its form; the admin, who speaks for none, sees the list.
    row("GET", "/studio/profiles", "", "/studio/profiles",                   303, 303, 303, 200),
    row("GET", "/studio/profiles/{artist_id}", "", profile(),                303, 404, 200, 200),
    row("POST", "/studio/profiles/{artist_id}", "", profile(),               403, 404, 303, 303,
        profile_form),
    # Collections in the studio: their maker and the admins; another artist meets a 404.
    row("GET", "/studio/collections", "", "/studio/collections",             303, 200, 200, 200),
    row("POST", "/studio/collections", "new", "/studio/collections",         403, 303, 303, 303,
        form(title="Saison", kind="season")),
    row("GET", "/studio/collections/{collection_id}", "draft",
        collection("/studio/collections/{id}", "draft"),                     303, 404, 200, 200),
    row("POST", "/studio/collections/{collection_id}", "edit",
        collection("/studio/collections/{id}", "draft"),                     403, 404, 303, 303,
        collection_form),
    # Administration.
    row("GET", "/admin", "", "/admin",                                        303, 403, 403, 200),
    row("GET", "/admin/stats", "", "/admin/stats",                            303, 403, 403, 200),
    row("POST", "/admin/productions/{production_id}/unpublish", "",
        by_id("/admin/productions/{id}/unpublish", "hidden"),                403, 403, 403, 303),
    row("POST", "/admin/productions/{production_id}/publish", "",
        by_id("/admin/productions/{id}/publish", "shown"),                   403, 403, 403, 303),
    row("POST", "/admin/users/{user_id}", "", spare_user,                     403, 403, 403, 303,
        form(role="artist", quota_gb="")),
    row("POST", "/admin/invitations", "", "/admin/invitations",               403, 403, 403, 200,
        form(email="invited@example.org", role="artist")),
    row("POST", "/admin/artists/{artist_id}/accounts", "", admin_artist("/accounts"),
                                                                              403, 403, 403, 303,
        form(email="spare@example.org")),
    row("POST", "/admin/artists/{artist_id}/accounts/{user_id}/unlink", "",
        admin_artist("/accounts/{user}/unlink"),                             403, 403, 403, 303),
    row("GET", "/admin/partners", "", "/admin/partners",                      303, 403, 403, 200),
    row("POST", "/admin/partners", "", "/admin/partners",                     403, 403, 403, 303,
        form(name="Festival", origins="https://festival.example")),
    row("GET", "/admin/partners/{partner_id}", "", partner("kept"),           303, 403, 403, 200),
    row("POST", "/admin/partners/{partner_id}", "", partner("kept"),          403, 403, 403, 303,
        form(name="Kept", origins="https://kept.example")),
    row("POST", "/admin/partners/{partner_id}/delete", "", partner("doomed", "/delete"),
                                                                              403, 403, 403, 303),
    row("GET", "/admin/tags", "", "/admin/tags",                              303, 403, 403, 200),
    row("POST", "/admin/tags/{tag_id}", "", admin_tag("jazz"),                403, 403, 403, 303,
        form(name_en="Jazz")),
    # tus uploads: an upload is its creator's alone, admins included.
    row("OPTIONS", "/api/v1/uploads/", "", "/api/v1/uploads/",                401, 204, 204, 204),
    row("OPTIONS", "/api/v1/uploads", "", "/api/v1/uploads",                  401, 204, 204, 204),
    row("POST", "/api/v1/uploads/", "create", "/api/v1/uploads/",             401, 201, 201, 201,
        new_upload),
    row("POST", "/api/v1/uploads", "create", "/api/v1/uploads",               401, 201, 201, 201,
        new_upload),
    row("OPTIONS", "/api/v1/uploads/{upload_id}", "", upload("kept"),         401, 204, 204, 204),
    row("HEAD", "/api/v1/uploads/{upload_id}", "the owner's", upload("kept"), 401, 404, 200, 404,
        tus_headers),
    row("POST", "/api/v1/uploads/{upload_id}", "HEAD by override", upload("kept"),
                                                                              401, 404, 200, 404,
        override("HEAD")),
    row("PATCH", "/api/v1/uploads/{upload_id}", "the owner's", upload("kept"),
                                                                              401, 404, 204, 404,
        patch_bytes),
    row("DELETE", "/api/v1/uploads/{upload_id}", "the owner's", upload("doomed"),
                                                                              401, 404, 204, 404,
        tus_headers),
    # Last: signing out ends the session every row above used.
    row("POST", "/logout", "", "/logout",                                     403, 303, 303, 303),
)
# fmt: on
MOUNTS = {"/static": "the site's CSS, scripts and vendored players: public files"}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route; HEAD is left out where it only mirrors GET."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add(("MOUNT", route.path))
        elif isinstance(route, Route):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")
            found.update((method, route.path) for method in methods)
    return found


def test_every_route_is_in_the_matrix(services: Services) -> None:
    routes = app_routes(create_app(services.settings, services))
    covered = {(r.method, r.route) for r in MATRIX} | {("MOUNT", path) for path in MOUNTS}
    unclassified = sorted(routes - covered)
    assert not unclassified, f"routes missing from the access matrix: {unclassified}"
    stale = sorted(covered - routes)
    assert not stale, f"rows of the access matrix for routes that no longer exist: {stale}"


@pytest.fixture
def app(services: Services) -> Any:
    return create_app(services.settings, services)


@pytest.fixture
def world(services: Services, app: Any) -> World:
    return build_world(services, app)


# A callback that runs longer than this blocks every other request: asyncio reports it. Well
# above what a loaded 2-core machine makes of the loop's own work (0.1-0.16 s was seen), since
# what is looked for is made slow on purpose below.
SLOW_CALLBACK = 0.25
# How long a statement run on an event loop's thread waits: well past SLOW_CALLBACK, so that
# one such statement is reported however fast or loaded the machine.
STALL = 0.75


class LoopReports(logging.Handler):
    """asyncio's reports of callbacks that held its loop longer than ``slow_callback_duration``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing "):
            # "Executing <Task …> took 0.312 seconds": the task says nothing of the request.
            self.reports.append(message.rpartition(">")[2].strip())

    def take(self) -> list[str]:
        taken, self.reports = self.reports, []
        return taken


def watched_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK
    return loop


@contextmanager
def loop_reports(engine: Engine) -> Iterator[LoopReports]:
    """Collect the slow-callback reports, with every statement run on a loop stalled.

    What the test process holds by then is frozen out of the collector's sight, as
    `cite-live serve` does (cite_live/cli.py): a full collection of a heap grown by hundreds of
    tests would otherwise hold whichever thread triggers it, the loop's too, for 100 ms or more.
    """

    def stall_on_the_loop(*_: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread: nothing to see
        time.sleep(STALL)

    handler = LoopReports()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    event.listen(engine, "before_cursor_execute", stall_on_the_loop)
    gc.collect()
    gc.freeze()
    try:
        yield handler
    finally:
        gc.unfreeze()
        event.remove(engine, "before_cursor_execute", stall_on_the_loop)
        logger.removeHandler(handler)


@contextmanager
def client_for(app: Any, role: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(
        app,
        base_url="http://testserver",
        raise_server_exceptions=False,
        follow_redirects=False,
        backend_options={"loop_factory": watched_loop},
    ) as client:
        headers: dict[str, str] = {}
        if role != "anonymous":
            headers["X-CSRF-Token"] = login(client, EMAILS[role])
        yield client, headers


def framing_problem(response: Any, url: str) -> str | None:
    """T10: only the embeddable player may be framed, by anyone (public) or this site (private),
    and, in its place, the card saying that what was asked for is not available there."""
    policy = response.headers.get("content-security-policy", "")
    if url.startswith("/embed/") and response.status_code in (403, 404):
        if "data-embed-unavailable" not in response.text or "data-player" in response.text:
            return "an embed refused with something else than its card"
        return "the card sends X-Frame-Options" if "x-frame-options" in response.headers else None
    if url.startswith("/embed/") and response.status_code == 200:
        if "frame-ancestors *" not in policy and "frame-ancestors 'self'" not in policy:
            return f"embed without frame-ancestors: {policy!r}"
        return "embed sends X-Frame-Options" if "x-frame-options" in response.headers else None
    deny = response.headers.get("x-frame-options")
    if "frame-ancestors 'none'" not in policy or deny != "DENY":
        return f"may be framed: CSP {policy!r}, X-Frame-Options {deny!r}"
    return None


def loop_settled(client: TestClient) -> None:
    """Wait for the loop to take one more turn: a report of the request's last callback is
    written after it returns, possibly once the client already has the answer."""
    assert client.portal is not None
    client.portal.call(asyncio.sleep, 0)


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(services: Services, app: Any, world: World, role: str) -> None:
    column = ROLES.index(role)
    problems: list[str] = []
    with loop_reports(services.engine) as watch, client_for(app, role) as (client, session_headers):
        loop_settled(client)
        watch.take()  # signing in is the account pages' business
        for entry in MATRIX:
            url = entry.url(world, services)
            request = entry.request(world, services)
            unsafe = entry.method not in ("GET", "HEAD", "OPTIONS")
            headers = {**(session_headers if unsafe else {}), **request.pop("headers", {})}
            response = client.request(entry.method, url, headers=headers, **request)
            expected = entry.expected[column]
            label = f"{entry.method} {entry.route} ({entry.what or url})"
            loop_settled(client)
            reports = watch.take()
            problems.extend(f"{label}: held the event loop, {report}" for report in reports)
            if response.status_code != expected:
                problems.append(f"{label}: {response.status_code}, expected {expected}")
            challenge = response.headers.get("www-authenticate", "")
            if response.status_code == 401 and not challenge.startswith('Bearer realm="cite-live"'):
                problems.append(f"{label}: 401 without a Bearer challenge: {challenge!r}")
            if entry.method == "GET" and (framing := framing_problem(response, url)):
                problems.append(f"{label}: {framing}")
            # An anonymous visitor's 303 on a page is the way to the login page, nowhere else.
            location = response.headers.get("location", "")
            if (
                role == "anonymous"
                and response.status_code == 303
                and entry.route != "/lang/{code}"
                and not location.startswith("/login?next=")
            ):
                problems.append(f"{label}: sends to {location!r}, not the login page")
    assert not problems, f"{role}:\n" + "\n".join(problems)


# --- hostile input -------------------------------------------------------------------------------

# Not one of them is a whole number here, whatever Python's int() makes of some.
NOT_NUMBERS = (
    "99999999999999999999",
    "-1",
    "0",
    "\u00b2",  # ² : str.isdigit() says yes
    "\u0663",  # ٣ : int() says 3
    "1_000",
    "+1",
    "1e3",
    "0x1f",
    "1.5",
    "1 2",
    " 7",
    "<b>1</b>",
    "\x00",
    "9" * 5000,
)
# Text that a database must never be handed as it is (NUL) or that must stay text (markup).
# Inputs where a NUL is refused with a 400 rather than dropped with the other control characters.
NUL_REFUSED = frozenset({"the API's filters"})
HOSTILE_TEXT = ("a\x00b", "\x1b[31m\x7f", "<script>alert(1)</script>", "'; DROP TABLE users; --")


@dataclass
class Target:
    """What the hostile requests point at: the admin's own production, upload and token."""

    production: str
    slug: str
    spare_user: int
    upload: str
    bearer: dict[str, str]


Probe = Callable[[Target, str], tuple[str, str, dict[str, Any]]]


def query(template: str) -> Probe:
    return lambda t, v: ("GET", template.format(v=quote(v, safe="")), {})


def in_path(method: str, template: str) -> Probe:
    def build(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
        extra = {"headers": {**t.bearer, **TUS}} if "/uploads/" in template else {}
        return method, template.format(v=quote(v, safe="")), extra

    return build


def edit_form_with(**fields: str) -> Probe:
    def build(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
        data = {"title": "Concert", "visibility": "public"}
        data.update({name: value.format(v=v) for name, value in fields.items()})
        return "POST", f"/studio/productions/{t.production}", {"data": data}

    return build


def account_form_with(**fields: str) -> Probe:
    def build(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
        data = {"role": "artist", **{name: value.format(v=v) for name, value in fields.items()}}
        return "POST", f"/admin/users/{t.spare_user}", {"data": data}

    return build


def tus_create(header: str) -> Probe:
    def build(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
        headers: dict[str, Any] = {**t.bearer, **TUS, "Upload-Length": "10"}
        if header == "Upload-Metadata":
            headers[header] = tus_metadata(filename=v, title=v, production=v)
        else:
            headers[header] = v.encode()
        return "POST", "/api/v1/uploads/", {"headers": headers}

    return build


def oembed_of(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
    page_url = "http://testserver/productions/" + quote(v, safe="")
    return "GET", "/oembed?url=" + quote(page_url, safe=""), {}


def media_range(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
    # As a client sends a header: bytes, ISO-8859-1 where it can be (b"\xb2" reads "²").
    raw = v.encode("latin-1") if all(ord(c) < 256 for c in v) else v.encode()
    key = f"productions/{t.production}/j1/a128/seg_00001.m4s"
    return "GET", f"/media/{key}", {"headers": {"Range": b"bytes=" + raw + b"-"}}


def tus_offset(t: Target, v: str) -> tuple[str, str, dict[str, Any]]:
    headers = {
        **t.bearer,
        **TUS,
        "Upload-Offset": v.encode(),
        "Content-Type": "application/offset+octet-stream",
    }
    return "PATCH", f"/api/v1/uploads/{t.upload}", {"headers": headers, "content": b"1"}


# A number where there should be one: 400 with a sentence (accepted values: their own status).
NUMBERS: tuple[tuple[str, Probe, int, dict[str, int]], ...] = (
    ("the studio's page", query("/studio?page={v}"), 400, {}),
    ("the admin's page", query("/admin?page={v}"), 400, {}),
    ("the artists' page", query("/artists?page={v}"), 400, {}),
    ("the search's page", query("/search?q=concert&page={v}"), 400, {}),
    ("the API's page", query("/api/v1/productions?page={v}"), 400, {}),
    ("the API's per_page", query("/api/v1/productions?per_page={v}"), 400, {}),
    ("the API's artists' page", query("/api/v1/artists?page={v}"), 400, {}),
    ("my productions' page", query("/api/v1/me/productions?page={v}"), 400, {}),
    ("oEmbed's maxwidth", query("/oembed?url={{page}}&maxwidth={v}"), 400, {}),
    ("the edit form's venue", edit_form_with(venue_id="{v}"), 400, {}),
    # Gigabytes, typed by a person: "1.5" and " 7" are quotas.
    (
        "an account's quota",
        account_form_with(quota_gb="{v}"),
        400,
        {"0": 303, "1.5": 303, " 7": 303},
    ),
    # HTTP drops the spaces around a header's value.
    ("tus Upload-Length", tus_create("Upload-Length"), 400, {" 7": 201}),
    ("tus Upload-Offset", tus_offset, 400, {"0": 204, " 7": 409}),
    # A Range that is no range is ignored: the whole file (RFC 9110 §14.2).
    ("a media Range", media_range, 200, {"0": 206, " 7": 206, "99999999999999999999": 416}),
    # An id in a path that cannot name anything: the address names nothing.
    ("a studio page's id", in_path("GET", "/studio/productions/{v}"), 404, {}),
    ("an embed's id", in_path("GET", "/embed/{v}"), 404, {}),
    ("the API's production id", in_path("GET", "/api/v1/productions/{v}"), 404, {}),
    ("a publish's id", in_path("POST", "/admin/productions/{v}/publish"), 404, {}),
    ("an account's id", in_path("POST", "/admin/users/{v}"), 404, {}),
    ("an upload's id", in_path("HEAD", "/api/v1/uploads/{v}"), 404, {}),
    ("a production's slug", in_path("GET", "/productions/{v}"), 404, {}),
    ("an artist's slug", in_path("GET", "/artists/{v}"), 404, {}),
    ("an artist feed's slug", in_path("GET", "/artists/{v}/feed.atom"), 404, {}),
    ("the API's artist slug", in_path("GET", "/api/v1/artists/{v}"), 404, {}),
    ("a venue's slug", in_path("GET", "/venues/{v}"), 404, {}),
    ("a tag's slug", in_path("GET", "/tags/{v}"), 404, {}),
    ("oEmbed's page address", oembed_of, 404, {}),
)
# Text where text belongs: kept as text (control characters dropped) or refused with a sentence.
TEXTS: tuple[tuple[str, Probe, frozenset[int]], ...] = (
    (
        "the edit form",
        edit_form_with(
            title="{v}",
            description="{v}",
            venue_new="{v}",
            tags="{v}",
            credit_name="{v}",
            credit_role="performer",
        ),
        frozenset({303, 400}),
    ),
    ("an account's artists", account_form_with(artists="{v}"), frozenset({303, 400})),
    (
        "an invitation",
        lambda t, v: ("POST", "/admin/invitations", {"data": {"email": v, "artists": v}}),
        frozenset({400}),
    ),
    ("the search", query("/search?q={v}"), frozenset({200})),
    ("the admin's search", query("/admin?q={v}&status={v}&visibility={v}"), frozenset({200})),
    ("the API's filters", query("/api/v1/productions?q={v}&artist={v}&tag={v}"), frozenset({200})),
    ("tus metadata", tus_create("Upload-Metadata"), frozenset({201, 400, 404})),
)


@pytest.fixture
def hostile_services(any_database_url: str, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(make_settings(tmp_path / "data", any_database_url))
    yield opened
    opened.close()


def test_hostile_input_is_refused_with_a_sentence_never_a_500(
    hostile_services: Services,
) -> None:
    services = hostile_services
    make_user(services, EMAILS["admin"], "admin", artists=["Élodie Fauré"])
    spare = make_user(services, "spare@example.org")
    production_id = publish_fake(services, "Concert", chapters=[("Ouverture", 0.0)])
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        slug = production.slug
    app = create_app(services.settings, services)
    bearer = {"Authorization": f"Bearer {token_for(services, EMAILS['admin'])}"}
    problems: list[str] = []
    with client_for(app, "admin") as (client, session_headers):
        created = client.post(
            "/api/v1/uploads/",
            headers={**bearer, **TUS, "Upload-Length": "10", "Upload-Metadata": ""},
        )
        assert created.status_code == 201, created.text
        target = Target(
            production_id, slug, spare, created.headers["location"].rsplit("/", 1)[1], bearer
        )

        def send(probe: Probe, value: str) -> Any:
            method, url, request = probe(target, value)
            url = url.replace("{page}", quote(f"http://testserver/productions/{slug}", safe=""))
            headers = {**session_headers, **request.pop("headers", {})}
            return client.request(method, url, headers=headers, **request)

        for name, probe, refused, accepted in NUMBERS:
            for value in NOT_NUMBERS:
                response = send(probe, value)
                expected = accepted.get(value, refused)
                if response.status_code != expected:
                    problems.append(
                        f"{name} = {value[:24]!r}: {response.status_code}, not {expected}"
                    )
                elif expected == 400 and not sentence(response):
                    problems.append(f"{name} = {value[:24]!r}: 400 without a sentence")
        for name, probe, allowed in TEXTS:
            for value in HOSTILE_TEXT:
                # The OpenAPI document calls a filter holding a NUL invalid: refused, not cleaned.
                nul = name in NUL_REFUSED and "\x00" in value
                expected = frozenset({400}) if nul else allowed
                response = send(probe, value)
                if response.status_code not in expected:
                    problems.append(f"{name} = {value!r}: {response.status_code}, not {expected}")
    assert not problems, "\n".join(problems)


def sentence(response: Any) -> bool:
    """Whether a refusal says why: the API's JSON error, tus's text, or the page's message."""
    kind = response.headers.get("content-type", "")
    if response.request.method == "HEAD":
        return True
    if kind.startswith("application/json"):
        return bool(response.json().get("error"))
    if kind.startswith("text/plain"):
        return bool(response.text.strip())
    return any(
        mark in response.text for mark in ("error-page__detail", "field-error", "notice--error")
    )
