"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``.

Objects are closed (``additionalProperties: false``) and their fields required, so a field
added to, renamed in or dropped from ``cite_live.presenter``'s API objects without being described
here makes the test that validates real responses against this document fail. The limits it
states are those the handlers apply (:mod:`cite_live.web.limits`), its paths those of the route
table (:mod:`cite_live.web.urls`).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from cite_live.auth import COOKIE
from cite_live.params import MAX_INT
from cite_live.play_stats import DEFAULT_RANGE, RANGES, SOURCE_KINDS
from cite_live.vocabulary import (
    COLLECTION_KINDS,
    EMBED_POLICIES,
    JOB_STATES,
    KINDS,
    LICENCES,
    SESSION_TYPES,
    STATUSES,
    VISIBILITIES,
)
from cite_live.web.context import Context, api
from cite_live.web.limits import (
    API_DEFAULT_PER_PAGE,
    API_MAX_PAGE,
    API_MAX_PER_PAGE,
    LIST_MAX_PAGE,
    MAX_FILTER_LENGTH,
    OEMBED_MAX_URL_LENGTH,
)
from cite_live.web.urls import PATHS

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null (JSON Schema 2020-12, as OpenAPI 3.1 uses it)."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    nullable = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        nullable["enum"] = [*schema["enum"], None]
    return nullable


def _object(
    properties: dict[str, Any], *, optional: tuple[str, ...] = (), description: str = ""
) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


STRING = {"type": "string"}
# Patterns as well as formats: validators skip formats unless asked, and a relative URL or a
# date-time without its offset would break clients all the same.
URL = {"type": "string", "format": "uri", "pattern": "^https?://"}
DATE_TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
}


def _page_of(item: str, description: str) -> dict[str, Any]:
    return _object(
        {
            "items": {"type": "array", "items": _ref(item)},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": API_MAX_PER_PAGE},
            "total": {"type": "integer", "minimum": 0, "description": "Matches in all."},
            "next": {**_nullable(URL), "description": "The next page, null on the last."},
            "prev": {**_nullable(URL), "description": "The previous page, null on the first."},
        },
        description=description,
    )


SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": {**STRING, "description": "What went wrong, in a sentence."},
            "status": {"type": "integer", "description": "The HTTP status, repeated."},
        },
    ),
    "Credit": _object(
        {
            "name": STRING,
            "slug": STRING,
            "role": {**STRING, "description": "performer, composer, director…"},
        }
    ),
    "Chapter": _object(
        {"title": STRING, "start": {"type": "number", "minimum": 0, "description": "Seconds."}},
        description="One entry of the setlist.",
    ),
    "VenueRef": _object({"name": STRING, "slug": STRING}),
    "Production": _object(
        {
            "id": {**STRING, "description": "Public identifier, stable for ever."},
            "slug": {
                **STRING,
                "description": "Last part of the page URL. A listed production's follows its "
                "title; any other's ends in a secret.",
            },
            "title": {**STRING, "description": "Title in French (the catalogue's language)."},
            "title_en": _nullable(STRING),
            "kind": {"type": "string", "enum": list(KINDS)},
            "status": {"type": "string", "enum": list(STATUSES)},
            "visibility": {"type": "string", "enum": list(VISIBILITIES)},
            "duration": {**_nullable({"type": "number"}), "description": "Seconds."},
            "description": STRING,
            "description_en": _nullable(STRING),
            "recorded_on": _nullable({"type": "string", "format": "date"}),
            "session_type": _nullable({"type": "string", "enum": list(SESSION_TYPES)}),
            "licence": _nullable({"type": "string", "enum": list(LICENCES)}),
            "venue": _nullable(_ref("VenueRef")),
            "tags": {"type": "array", "items": STRING},
            "artists": {"type": "array", "items": _ref("Credit")},
            "chapters": {"type": "array", "items": _ref("Chapter")},
            "hls_url": {
                **_nullable(URL),
                "description": "HLS master playlist, when ready; while it is processing, its "
                "preview's (an EVENT playlist that grows until it is finished), for whoever "
                "may play it (see publish_early).",
            },
            "playable": {
                "type": "boolean",
                "description": "hls_url plays: it is ready, or its preview plays while it is "
                "processing.",
            },
            "poster_url": {**_nullable(URL), "description": "Poster (video) or cover (audio)."},
            "waveform_url": {
                **_nullable(URL),
                "description": "Peaks (audiowaveform JSON), audio only.",
            },
            "storyboard_url": {
                **_nullable(URL),
                "description": "WebVTT thumbnails of the scrub bar, video only.",
            },
            "download_url": {
                **_nullable(URL),
                "description": "AAC .m4a file to download, audio only.",
            },
            "allow_download": {
                "type": "boolean",
                "description": "Its artist lets listeners save its file from its page.",
            },
            "language": {
                "type": "string",
                "maxLength": 35,
                "description": "What it is sung or spoken in (BCP 47, such as fr or pt-BR), "
                "which its master playlist announces (LANGUAGE).",
            },
            "attachment_url": {
                **_nullable(URL),
                "description": "The .m4a saved as “<artists> - <title>.m4a” (Content-Disposition: "
                "attachment), when its artist allows it and its licence (Creative Commons or CC0) "
                "permits it; audio only.",
            },
            "loudness_lufs": {
                **_nullable({"type": "number"}),
                "description": "Integrated loudness (EBU R128).",
            },
            "page_url": URL,
            "embed_url": {**URL, "description": "Address of the iframe player."},
            "embed_policy": {
                "type": "string",
                "enum": list(EMBED_POLICIES),
                "description": "Where the iframe player may be framed: any site (anywhere), "
                "this site and its partner sites (partners), or this site only (site). "
                "Elsewhere the frame shows a card saying the recording is not available there, "
                "and oEmbed answers 401 for any policy but anywhere.",
            },
            "created_at": DATE_TIME,
            "published_at": _nullable(DATE_TIME),
            "error": {
                **_nullable(STRING),
                "description": "Why processing failed; only when status is failed.",
            },
            "publish_early": {
                "type": "boolean",
                "description": "Its artist lets everyone who may see it play it while it is "
                "still processing, as soon as its first segments are there; otherwise only its "
                "owner and the administrators do. Only in what its owner and the "
                "administrators read.",
            },
        },
        optional=("error", "publish_early"),
    ),
    "ProductionList": _page_of("Production", "Ready, public productions, newest first."),
    "Link": _object({"label": STRING, "url": URL}),
    "Artist": _object(
        {
            "slug": STRING,
            "name": STRING,
            "commune": _nullable(STRING),
            "disciplines": {"type": "array", "items": STRING},
            "bio": {**STRING, "description": "Biography, in French."},
            "bio_en": {
                **_nullable(STRING),
                "description": "Biography for English readers; null when there is none (show bio).",
            },
            "picture_url": {
                **_nullable(URL),
                "description": "The artist's photo, a JPEG of at most 1200 × 1200 pixels.",
            },
            "links": {
                "type": "array",
                "items": _ref("Link"),
                "description": "Where else to follow them: http(s) addresses only.",
            },
            "featured": {"type": "boolean"},
            "page_url": URL,
            "feed_url": {**URL, "description": "Atom feed of the artist's productions."},
            "api_url": URL,
        }
    ),
    "ArtistList": _page_of("Artist", "Artists with at least one public production, by name."),
}
SCHEMAS["ArtistDetail"] = {
    **SCHEMAS["Artist"],
    "properties": {
        **SCHEMAS["Artist"]["properties"],
        "productions": {
            "type": "array",
            "items": _ref("Production"),
            "description": "The artist's latest ready, public productions.",
        },
        "productions_total": {"type": "integer", "minimum": 0},
        "productions_url": {**URL, "description": "All of them, page by page."},
    },
    "required": [
        *SCHEMAS["Artist"]["required"],
        "productions",
        "productions_total",
        "productions_url",
    ],
}
SCHEMAS["Collection"] = _object(
    {
        "id": {**STRING, "description": "Public identifier, stable for ever."},
        "slug": {**STRING, "description": "Last part of the page URL."},
        "kind": {"type": "string", "enum": list(COLLECTION_KINDS)},
        "title": {**STRING, "description": "Title in French (the catalogue's language)."},
        "title_en": _nullable(STRING),
        "description": STRING,
        "description_en": _nullable(STRING),
        "cover_url": {
            **_nullable(URL),
            "description": "Its cover, else the picture of its first production.",
        },
        "page_url": URL,
        "embed_url": {**URL, "description": "Address of the playlist player."},
        "feed_url": {**URL, "description": "Atom feed of its productions."},
        "podcast_url": {
            **_nullable(URL),
            "description": "Its podcast (RSS with enclosures), for a collection of kind podcast.",
        },
        "updated_at": DATE_TIME,
        "items": {
            "type": "array",
            "items": _ref("Production"),
            "description": "Its ready, public productions, in its order.",
        },
    },
    description="A festival highlight, a season, an album or a podcast series.",
)
SCHEMAS["OEmbed"] = _object(
    {
        "version": {"const": "1.0"},
        "type": {"type": "string", "enum": ["video", "rich"]},
        "title": STRING,
        "author_name": STRING,
        "author_url": URL,
        "provider_name": STRING,
        "provider_url": URL,
        "html": {**STRING, "description": "The iframe of the player."},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "thumbnail_url": URL,
        "thumbnail_width": {"type": "integer", "minimum": 1},
        "thumbnail_height": {"type": "integer", "minimum": 1},
        "cache_age": {"type": "integer", "minimum": 0},
    },
    optional=(
        "author_name",
        "author_url",
        "thumbnail_url",
        "thumbnail_width",
        "thumbnail_height",
    ),
    description="An oEmbed 1.0 response.",
)


# The signed-in account's own productions (cite_live.web.studio): what the studio polls.
SCHEMAS["JobState"] = _object(
    {
        "state": {"type": "string", "enum": list(JOB_STATES)},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "error": {**_nullable(STRING), "description": "Why it failed, in a sentence."},
        "attempts": {"type": "integer", "minimum": 0},
        "max_attempts": {"type": "integer", "minimum": 1},
    },
    description="The newest processing job of a production.",
)
SCHEMAS["MyProduction"] = _object(
    {
        "id": STRING,
        "title": STRING,
        "kind": {"type": "string", "enum": list(KINDS)},
        "status": {"type": "string", "enum": list(STATUSES)},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "draft": {
            "type": "boolean",
            "description": "Not published yet: private until its artist publishes it, from "
            "the studio.",
        },
        "publish_as": {
            **_nullable({"type": "string", "enum": list(VISIBILITIES)}),
            "description": "A draft's visibility once published; null once published.",
        },
        "error": {**_nullable(STRING), "description": "Why it failed, when it did."},
        "job": _nullable(_ref("JobState")),
        "page_url": URL,
        "edit_url": URL,
    },
    description="One of the account's productions, with the state of its newest job.",
)
SCHEMAS["MyProductionList"] = _object(
    {
        "items": {"type": "array", "items": _ref("MyProduction")},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1},
        "total": {"type": "integer", "minimum": 0},
    },
    description="The account's productions, newest first.",
)


# The plays of the signed-in account's productions (cite_live.play_stats): what /studio/stats
# shows.
DAY = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
PLAYS = {"type": "integer", "minimum": 0}
SCHEMAS["DayPlays"] = _object({"day": DAY, "plays": PLAYS}, description="The plays of one day.")
SCHEMAS["ProductionPlays"] = _object(
    {
        "id": STRING,
        "title": STRING,
        "plays": PLAYS,
        "by_day": {
            "type": "array",
            "items": _ref("DayPlays"),
            "description": "The days it was played, oldest first (days without plays left out).",
        },
    },
)
SCHEMAS["SourcePlays"] = _object(
    {
        "kind": {
            "type": "string",
            "enum": list(SOURCE_KINDS),
            "description": "site: this site's pages; partner: a partner site's pages, by name; "
            "other: an embed on any other site (or one that did not say where).",
        },
        "name": {**_nullable(STRING), "description": "The partner's name; null otherwise."},
        "plays": PLAYS,
    },
)
SCHEMAS["MyStats"] = _object(
    {
        "from": DAY,
        "to": DAY,
        "total": PLAYS,
        "by_day": {
            "type": "array",
            "items": _ref("DayPlays"),
            "description": "Every day of the period, oldest first, days without plays included.",
        },
        "productions": {
            "type": "array",
            "items": _ref("ProductionPlays"),
            "description": "The account's productions played in the period, most played first.",
        },
        "sources": {"type": "array", "items": _ref("SourcePlays")},
    },
    description="Plays of the account's productions: one per playback session of 30 s (or half "
    "of a shorter recording) heard, known robots left out, days in UTC.",
)


# A filter is text of MAX_FILTER_LENGTH characters at most, without NUL (nothing holds one).
TEXT = {"type": "string", "maxLength": MAX_FILTER_LENGTH, "pattern": "^[^\\u0000]*$"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or TEXT,
    }


PAGE_URL = {"type": "string", "minLength": 1, "maxLength": OEMBED_MAX_URL_LENGTH}
# What params.whole_number reads: a size larger than any integer column is refused too.
PIXELS = {"type": "integer", "minimum": 1, "maximum": MAX_INT}


def _page(maximum: int) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": 1}
    return _query("page", "Page number, from 1.", schema)


PARAMETERS = {
    "page": _page(API_MAX_PAGE),
    "per_page": _query(
        "per_page",
        "Items per page.",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": API_MAX_PER_PAGE,
            "default": API_DEFAULT_PER_PAGE,
        },
    ),
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


BAD_PARAMETER = (
    "A parameter is not valid: the error names it and says why (not a whole number, out of "
    "range, too long, not one of the values listed); the bounds are those stated here."
)
REFUSED_TOKEN = "The Bearer token is not valid, or it has been revoked."  # noqa: S105 - a message, not a secret

SECURITY_SCHEMES = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token of an account (cite-live token create EMAIL).",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "The session of a browser signed in on the site.",
    },
}
# The catalogue is open to anyone; a token, when sent, is checked before any route, so every
# operation may answer 401.
Security = list[dict[str, list[str]]]
OPEN: Security = [{}, {"bearerToken": []}]
SIGNED_IN: Security = [{"bearerToken": []}, {"session": []}]


def _refused(why: str) -> dict[str, Any]:
    """A 401: the Error object and the challenge RFC 9110 requires with it."""
    challenge = {
        "description": "The scheme to authenticate with (Bearer), and what was wrong.",
        "required": True,
        "schema": STRING,
    }
    return {**_json("Error", why), "headers": {"WWW-Authenticate": challenge}}


def _operation(
    operation_id: str,
    summary: str,
    parameters: list[dict[str, Any]],
    ok: str,
    errors: dict[str, str],
    *,
    security: Security = OPEN,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json(ok, summary)}
    responses.update({status: _json("Error", why) for status, why in errors.items()})
    responses["401"] = _refused(errors.get("401", REFUSED_TOKEN))
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "security": security,
            "responses": dict(sorted(responses.items())),
        }
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": STRING,
    }


PAGING = [{"$ref": "#/components/parameters/page"}, {"$ref": "#/components/parameters/per_page"}]


def document(server_url: str) -> dict[str, Any]:
    """The whole OpenAPI document, with ``server_url`` as the API's server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cité Live Web API",
            "version": VERSION,
            "summary": "The catalogue of the Cité de la Musique of Romans-sur-Isère.",
            "description": (
                "The artists and productions of the catalogue. Lists show ready, public "
                "productions only; an unlisted production is readable by its identifier, a "
                "private one by its owner and the admins only. The catalogue's answers allow "
                "any origin (CORS); the signed-in account's own list does not. Sign in with a "
                "session or an Authorization: Bearer token (cite-live token create EMAIL). Uploads "
                f"use the tus 1.0 protocol at {PATHS['api_uploads']}, and the player reports "
                f"plays to {PATHS['api_plays']}, both outside this document. Errors are "
                "the Error object, in English to a client that asks for no language."
            ),
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": server_url}],
        "paths": {
            PATHS["api_productions"]: _operation(
                "listProductions",
                "Ready, public productions, newest first.",
                [
                    *PAGING,
                    _query("q", "Words to find, case- and accent-insensitive."),
                    _query("artist", "Slug of a credited artist."),
                    _query("kind", "audio or video.", {"type": "string", "enum": list(KINDS)}),
                    _query("venue", "Slug of the venue."),
                    _query("tag", "Slug of a tag."),
                    _query(
                        "session_type",
                        "Kind of session.",
                        {"type": "string", "enum": list(SESSION_TYPES)},
                    ),
                ],
                "ProductionList",
                {"400": BAD_PARAMETER},
            ),
            PATHS["api_production"]: {
                "parameters": [
                    _path(
                        "production_id",
                        "The production's public identifier; for an unlisted production, the "
                        "last part of its page's URL (its slug, which holds a secret) instead.",
                    )
                ],
                **_operation(
                    "getProduction",
                    "One production: a public one by its identifier, an unlisted one by its "
                    "page's slug.",
                    [],
                    "Production",
                    {
                        "404": "No such production; or, except for its owner and the admins, a "
                        "private, processing or failed one, or an unlisted one asked for by its "
                        "identifier."
                    },
                ),
            },
            PATHS["api_artists"]: _operation(
                "listArtists",
                "Artists, by name.",
                [
                    *PAGING,
                    _query("q", "Words to find, case- and accent-insensitive."),
                    _query("discipline", "One of the artist's disciplines, e.g. électro."),
                    _query("commune", "The artist's commune, e.g. Romans-sur-Isère."),
                ],
                "ArtistList",
                {"400": BAD_PARAMETER},
            ),
            PATHS["api_artist"]: {
                "parameters": [_path("slug", "The artist's slug.")],
                **_operation(
                    "getArtist",
                    "One artist and their latest productions.",
                    [],
                    "ArtistDetail",
                    {"404": "No such artist."},
                ),
            },
            PATHS["api_collection"]: {
                "parameters": [_path("collection_id", "The collection's public identifier.")],
                **_operation(
                    "getCollection",
                    "One public collection and its ready, public productions, in order.",
                    [],
                    "Collection",
                    {"404": "No such public collection."},
                ),
            },
            PATHS["api_my_productions"]: _operation(
                "listMyProductions",
                "The productions of the signed-in account (session or Bearer token), newest "
                "first, with their processing state. Not open to other origins.",
                [_page(LIST_MAX_PAGE)],
                "MyProductionList",
                {
                    "400": BAD_PARAMETER,
                    "401": "Neither a session nor a valid API token.",
                    "404": "A page past the last one.",
                },
                security=SIGNED_IN,
            ),
            PATHS["api_my_stats"]: _operation(
                "getMyStats",
                "How often the signed-in account's productions were played (session or Bearer "
                "token), per day, production and source. Not open to other origins.",
                [
                    _query(
                        "days",
                        "The period: the last 7, 30 or 90 days, today (UTC) included.",
                        {"type": "integer", "enum": list(RANGES), "default": DEFAULT_RANGE},
                    )
                ],
                "MyStats",
                {"400": BAD_PARAMETER, "401": "Neither a session nor a valid API token."},
                security=SIGNED_IN,
            ),
            PATHS["oembed"]: _operation(
                "oEmbed",
                "oEmbed 1.0 description of a production or collection page, for embedding its "
                "player.",
                [
                    {
                        **_query("url", "Address of a production or collection page.", PAGE_URL),
                        "required": True,
                    },
                    _query("format", "json (xml is not offered).", {"enum": ["json", "xml"]}),
                    _query("maxwidth", "Largest width wanted, in pixels.", PIXELS),
                    _query("maxheight", "Largest height wanted, in pixels.", PIXELS),
                ],
                "OEmbed",
                {
                    "400": BAD_PARAMETER,
                    "401": "The production's player may only be framed by the sites it is kept "
                    "for (embed_policy): it is not offered to everyone.",
                    "404": "Not the address of one of our production or collection pages.",
                    "501": "A format other than json was asked for.",
                },
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@api
def openapi_document(ctx: Context) -> JSONResponse:
    return JSONResponse(document(ctx.site), headers={"Cache-Control": "public, max-age=300"})
