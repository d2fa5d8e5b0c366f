"""The request limits the handlers and the OpenAPI document share.

A handler refuses what goes past one of these with a 400 (a 404 for a list page past the
end); the OpenAPI document (:mod:`cite_live.web.openapi`) states the same bounds, so that a
client reading it never sends what the API would refuse.
"""

from __future__ import annotations

#: The highest ``?page=`` of the site's lists: the catalogue's pages, the studio, the admin
#: page and the signed-in account's productions (``/api/v1/me/productions``).
LIST_MAX_PAGE = 100_000

#: The highest ``?page=`` of the catalogue's API lists.
API_MAX_PAGE = 1_000_000
#: ``?per_page=`` of the API lists: at most this many items, this many when not asked.
API_MAX_PER_PAGE = 100
API_DEFAULT_PER_PAGE = 20
#: The longest text filter of the API (``q``, ``artist``, ``venue``…), in characters.
MAX_FILTER_LENGTH = 200

#: The longest page address oEmbed reads (``?url=``): no production page has a longer one.
OEMBED_MAX_URL_LENGTH = 2000
