"""A press on a player's play button made before the site's scripts run.

The server draws a real ``<button data-play-button>`` over each player's picture (``_player.html``),
and on a slow phone it is on the screen before the site's script (``web/static/js/site.js``,
with the player's loader) has arrived and run: a press in that moment did nothing, and the
listener pressed again. This script, inline in the page's ``<head>`` so that it runs before the
body is drawn, keeps such a press: it marks the player (``data-wants-play``, which the player's
stylesheet shows as waiting), and the loader (``web/static/js/player.js``) honours it as it
starts, as it honours a press made while the player's own code is on its way.

It is the pages' only inline script. The Content-Security-Policy allows it by its hash
(:data:`CSP_SOURCE`, in :func:`cite_live.security_headers.page_policy`), never by
``'unsafe-inline'``: the hash is the same for every page and every visitor, so the page cache
(``cite_live.pagecache``) serves it as it is; an injected script still does not run.
"""

from __future__ import annotations

import base64
import hashlib

from markupsafe import Markup

# Plain ES5 (it runs before anything else, in any browser); `closest` is checked since an old
# browser without it keeps the press for the loader's own listener.
SCRIPT = (
    'document.addEventListener("click",function(e){'
    'var t=e.target,b=t&&t.closest&&t.closest("[data-play-button]"),'
    'r=b&&b.closest("[data-player]");'
    "if(!r||e.button!==0)return;"
    'e.preventDefault();r.setAttribute("data-wants-play","")});'
)

CSP_SOURCE = "'sha256-{}'".format(
    base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode("ascii")
)


def element() -> Markup:
    """The ``<script>`` element, for the templates (a Jinja global)."""
    # SCRIPT is this module's constant, never anything a request brings.
    return Markup(f"<script>{SCRIPT}</script>")  # noqa: S704
