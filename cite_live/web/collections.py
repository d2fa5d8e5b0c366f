"""Collections as visitors and partner sites see them: the list, a collection's page, its
playlist player (``/embed/collections/{id}``, framed by any site) and its API object.

Only public collections exist here, and of each only the productions anyone may see
(cite_live.collections): a draft collection, or a hidden production in a public one, gets
exactly what something that does not exist gets.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, selectinload
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from cite_live import collections, params
from cite_live.catalogue import production_query
from cite_live.collection_view import (
    EMBED_HEIGHT,
    card,
    collection_json,
    description_lang_of,
    description_of,
    embed_snippet,
    embed_url,
    page_url,
    picture,
    playlist,
    title_lang_of,
    title_of,
)
from cite_live.i18n import N_
from cite_live.models import Collection, Production
from cite_live.presenter import cards, media_url, paragraphs
from cite_live.vocabulary import COLLECTION_KIND_LABELS, label
from cite_live.web.context import ACCOUNT_CACHE, Context, api, page, unavailable_card

PER_PAGE = 24
NOT_FOUND = N_("There is no collection at this address.")
# Said in English, as the API says it.
NO_SUCH_COLLECTION = "There is no collection with this identifier."
# Any site may frame the playlist player, as the single one (cite_live.web.embeds): only
# public productions of public collections are in it, so it is the same for everyone.
EMBED_HEADERS = {
    "Content-Security-Policy": "frame-ancestors *",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "public, max-age=60",
}


def _playing(
    ctx: Context, session: Session, collection: Collection, *, framed: bool = False
) -> dict[str, Any]:
    """What the page and the player show of ``collection``: its productions as cards and as
    the playlist plays them, and its picture. ``framed``: for the playlist player other sites
    frame, which leaves out the productions kept for partner sites or for this site (their
    own players say where they may play: cite_live.partners)."""
    items = collections.shown_items(session, collection.id)
    if framed:
        items = [item for item in items if item.embed_policy == "anywhere"]
    return {
        "items": items,
        "cards": cards(items, ctx.store, ctx.urls, ctx.lang),
        "playlist": playlist(items, ctx.store, ctx.site, ctx.lang),
        "image": media_url(ctx.store, ctx.site)(picture(collection, items)),
    }


@page
def collections_index(ctx: Context) -> Response:
    page_number = ctx.page_number()
    with ctx.services.sessions() as session:
        rows, total = collections.public_page(session, (page_number - 1) * PER_PAGE, PER_PAGE)
        pager = ctx.pager(page_number, PER_PAGE, total)
        counts = collections.shown_counts(session, [c.id for c in rows])
        shown = []
        for collection in rows:
            first = collections.shown_items(session, collection.id)[:1]
            image_key = picture(collection, first)
            count = counts.get(collection.id, 0)
            shown.append(card(collection, image_key, count, ctx.store, ctx.urls, ctx.lang))
    return ctx.render(
        "collections.html", {"nav": "collections", "collections": shown, "pager": pager}
    )


@page
def collection_page(ctx: Context) -> Response:
    lang, urls = ctx.lang, ctx.urls
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        collection = collections.public_at(session, slug) if slug else None
        if collection is None:
            raise ctx.not_found(NOT_FOUND)
        shown = _playing(ctx, session, collection)
        title = title_of(collection, lang)
        embed = embed_url(collection, urls)
        editable = collections.can_edit(ctx.user, collection)
        edit_url = urls.studio_collection(collection.id) if editable else None
        context = {
            "nav": "collections",
            "collection": {
                "id": collection.id,
                "title": title,
                "title_lang": title_lang_of(collection, lang),
                "kind_label": label(COLLECTION_KIND_LABELS, collection.kind, lang),
                "paragraphs": paragraphs(description_of(collection, lang)),
                "description_lang": description_lang_of(collection, lang),
                "image": shown["image"],
                "page_url": page_url(collection, urls),
                "feed_url": urls.collection_feed(collection.slug),
                "podcast_url": (
                    urls.collection_podcast(collection.slug)
                    if collection.kind == "podcast"
                    else None
                ),
                "oembed_url": urls.absolute(
                    urls.oembed(url=page_url(collection, urls), format="json")
                ),
                "embed_url": embed,
                "embed_snippet": embed_snippet(embed, title),
                "edit_url": edit_url,
            },
            "cards": shown["cards"],
            "entries": shown["playlist"],
        }
    # Its editors get a link to its edit page: a page of theirs, kept by nobody else.
    return ctx.render("collection.html", context, cache=ACCOUNT_CACHE if editable else None)


@page
def collection_embed(ctx: Context) -> Response:
    lang = ctx.lang
    collection_id = params.public_id(ctx.path_param("collection_id"))
    with ctx.services.sessions() as session:
        found = collections.public_by_id(session, collection_id) if collection_id else None
        if found is None:
            return unavailable_card(ctx, 404, ctx.urls.absolute(ctx.urls.home()))
        shown = _playing(ctx, session, found, framed=True)
        context = {
            "lang": lang,
            "title": title_of(found, lang),
            "title_lang": title_lang_of(found, lang),
            "page_url": page_url(found, ctx.urls),
            "image": shown["image"],
            "entries": shown["playlist"],
            "height": EMBED_HEIGHT,
        }
    return ctx.render("embed_collection.html", context, headers=EMBED_HEADERS)


@api
def show_collection(ctx: Context) -> JSONResponse:
    collection_id = params.public_id(ctx.path_param("collection_id"))
    with ctx.services.sessions() as session:
        found = collections.public_by_id(session, collection_id) if collection_id else None
        if found is None:
            raise HTTPException(404, NO_SUCH_COLLECTION)
        items = collections.shown_items(
            session, found.id, production_query().options(selectinload(Production.chapters))
        )
        data = collection_json(found, items, ctx.store, ctx.urls)
    return JSONResponse(data)
