"""The catalogue's words: the codes a record may hold and what a visitor reads for each.

Codes are stored; labels are shown, translated (they are marked with ``N_`` and translated when
a page is made). ``cite_live.models`` checks its columns against the codes; the pages, the studio,
the admin page, the forms, the page metadata and the OpenAPI document read both from here.
"""

from __future__ import annotations

import unicodedata

from cite_live import i18n
from cite_live.i18n import N_

KINDS = ("audio", "video")
STATUSES = ("processing", "ready", "failed")
VISIBILITIES = ("public", "unlisted", "private")
SESSION_TYPES = ("studio", "live", "clip", "residency", "rehearsal", "podcast")
JOB_STATES = ("queued", "running", "done", "failed")
# Of an account; the roles of a credit are CREDIT_ROLES.
ROLES = ("admin", "artist")
UPLOAD_STATES = ("receiving", "complete", "stored", "terminated")
# "preview": a version still being written (EVENT playlists that grow), which its production
# plays before it is finished (cite_live.catalogue.preview_version); published once complete.
VERSION_STATES = ("building", "preview", "published", "retired")
# A collection of productions (cite_live.collections): what it gathers, and whether it is shown.
COLLECTION_KINDS = ("festival", "season", "album", "podcast")
COLLECTION_STATES = ("draft", "public")
# Where a production's player may be framed (cite_live.partners): any site, the partner sites
# the admins list, or this site only.
EMBED_POLICIES = ("anywhere", "partners", "site")

KIND_LABELS = {"audio": N_("Audio"), "video": N_("Video")}
# What a production is sung or spoken in (BCP 47), which its HLS master playlist announces
# (LANGUAGE): the catalogue's languages and those of the region and its neighbours. A file's own
# tag may bring another one (transcoder.language), which its form then keeps.
LANGUAGE_LABELS = {
    "fr": N_("French"),
    "en": N_("English"),
    "oc": N_("Occitan"),
    "it": N_("Italian"),
    "es": N_("Spanish"),
    "de": N_("German"),
    "pt": N_("Portuguese"),
    "ar": N_("Arabic"),
}
STATUS_LABELS = {"processing": N_("Processing"), "ready": N_("Ready"), "failed": N_("Failed")}
VISIBILITY_LABELS = {
    "public": N_("Public"),
    "unlisted": N_("Unlisted"),
    "private": N_("Private"),
}
# What each choice means, under the studio's visibility field.
VISIBILITY_HINTS = {
    "public": N_("Listed on the site, in search and in the feeds."),
    "unlisted": N_("Reachable by its link only; absent from lists, search and feeds."),
    "private": N_("Only you and the administrators can see it."),
}
EMBED_POLICY_LABELS = {
    "anywhere": N_("On any site"),
    "partners": N_("On partner sites only"),
    "site": N_("On this site only"),
}
# What each choice means, under the studio's field.
EMBED_POLICY_HINTS = {
    "anywhere": N_("Any site may embed its player."),
    "partners": N_(
        "Only the partner sites listed by the administrators may embed its player; elsewhere "
        "the frame says the recording is not available there."
    ),
    "site": N_("Its player plays on its page of this site only; no other site may embed it."),
}
# A production its artist has not published yet (cite_live.catalogue.publish); private meanwhile.
DRAFT_LABEL = N_("Draft")
DRAFT_HINT = N_("A draft: only you and the administrators can see it until you publish it.")
# The studio's visibility field, for a draft: what it chooses is the visibility once published.
DRAFT_VISIBILITY_LEGEND = N_("Who can see it once published")
# The choice to let everyone who may see a production play it while it processes, on its edit
# form and on a new upload's card (cite_live.catalogue.may_play_preview).
PUBLISH_EARLY = N_("Publish as soon as playable")
UPLOAD_DRAFT_HINT = N_(
    "Each recording you upload is a draft: only you see it until you publish it from its edit page."
)
SESSION_TYPE_LABELS = {
    "studio": N_("Studio session"),
    "live": N_("Live"),
    "clip": N_("Clip"),
    "residency": N_("Residency"),
    "rehearsal": N_("Rehearsal"),
    "podcast": N_("Podcast"),
}
COLLECTION_KIND_LABELS = {
    "festival": N_("Festival highlight"),
    "season": N_("Season"),
    "album": N_("Album"),
    "podcast": N_("Podcast series"),
}
COLLECTION_STATE_LABELS = {"draft": DRAFT_LABEL, "public": N_("Public")}
COLLECTION_STATE_HINTS = {
    "draft": N_("Only you and the administrators can see it."),
    "public": N_("Listed on the site, with its page, feed and player."),
}
ROLE_LABELS = {"admin": N_("Administrator"), "artist": N_("Artist")}
CREDIT_ROLE_LABELS = {
    "performer": N_("Performer"),
    "composer": N_("Composer"),
    "author": N_("Author"),
    "arranger": N_("Arranger"),
    "producer": N_("Producer"),
    "director": N_("Director"),
    "engineer": N_("Sound engineer"),
    "mixing": N_("Mixing"),
    "guest": N_("Guest"),
}
CREDIT_ROLES = tuple(CREDIT_ROLE_LABELS)

# Each licence a production may carry: its name, and where its text is published (None for
# "all rights reserved", which has no text to link to).
LICENCE_NAMES = {
    "all-rights-reserved": N_("All rights reserved"),
    "CC-BY-4.0": "CC BY 4.0",
    "CC-BY-SA-4.0": "CC BY-SA 4.0",
    "CC-BY-NC-4.0": "CC BY-NC 4.0",
    "CC-BY-NC-SA-4.0": "CC BY-NC-SA 4.0",
    "CC-BY-NC-ND-4.0": "CC BY-NC-ND 4.0",
    "CC0-1.0": "CC0 1.0",
}
LICENCE_URLS = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "CC-BY-NC-SA-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "CC-BY-NC-ND-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}
LICENCES = tuple(LICENCE_NAMES)
# The licences under which listeners may be handed the file: every Creative Commons licence lets
# anyone share copies (NC: not for money; ND: unchanged) and CC0 waives every right. "All rights
# reserved", or no licence said, does not.
DOWNLOADABLE_LICENCES = frozenset(code for code in LICENCE_URLS)

# Common disciplines, each with its French and English name. An artist types their disciplines
# freely (cite_live.artist_profile); one of these, in either language, whatever its case or
# accents, is shown in the page's language, anything else as it was typed.
DISCIPLINES = (
    ("Musique classique", "Classical music"),
    ("Musique contemporaine", "Contemporary music"),
    ("Musique baroque", "Baroque music"),
    ("Musiques actuelles", "Contemporary popular music"),
    ("Musique électronique", "Electronic music"),
    ("Électro", "Electro"),
    ("Musiques du monde", "World music"),
    ("Musique traditionnelle", "Traditional music"),
    ("Musique de film", "Film music"),
    ("Chanson", "Chanson"),
    ("Chanson française", "French chanson"),
    ("Jazz", "Jazz"),
    ("Rock", "Rock"),
    ("Pop", "Pop"),
    ("Rap", "Rap"),
    ("Hip-hop", "Hip-hop"),
    ("Reggae", "Reggae"),
    ("Folk", "Folk"),
    ("Blues", "Blues"),
    ("Soul", "Soul"),
    ("Funk", "Funk"),
    ("Métal", "Metal"),
    ("Opéra", "Opera"),
    ("Chant", "Singing"),
    ("Chant lyrique", "Classical singing"),
    ("Chœur", "Choir"),
    ("Piano", "Piano"),
    ("Violon", "Violin"),
    ("Alto", "Viola"),
    ("Violoncelle", "Cello"),
    ("Contrebasse", "Double bass"),
    ("Guitare", "Guitar"),
    ("Basse", "Bass"),
    ("Batterie", "Drums"),
    ("Percussions", "Percussion"),
    ("Saxophone", "Saxophone"),
    ("Trompette", "Trumpet"),
    ("Flûte", "Flute"),
    ("Clarinette", "Clarinet"),
    ("Accordéon", "Accordion"),
    ("Harpe", "Harp"),
    ("Composition", "Composition"),
    ("Arrangement", "Arrangement"),
    ("Direction d’orchestre", "Conducting"),
    ("DJ", "DJ"),
    ("Beatmaking", "Beatmaking"),
    ("Ingénierie du son", "Sound engineering"),
    ("Danse", "Dance"),
    ("Théâtre", "Theatre"),
    ("Cirque", "Circus"),
    ("Conte", "Storytelling"),
    ("Poésie", "Poetry"),
    ("Slam", "Slam"),
    ("Cinéma", "Film"),
    ("Vidéo", "Video"),
    ("Photographie", "Photography"),
    ("Arts visuels", "Visual arts"),
    ("Illustration", "Illustration"),
    ("Animation", "Animation"),
    ("Podcast", "Podcast"),
)


def _folded(name: str) -> str:
    """A name as it is matched: no case, no accents, one kind of apostrophe, single spaces."""
    decomposed = unicodedata.normalize("NFKD", name.replace("’", "'").casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


_DISCIPLINES_BY_NAME = {_folded(name): pair for pair in DISCIPLINES for name in pair}


def discipline_language(name: str) -> str | None:
    """The language ``name`` is written in when it is one of :data:`DISCIPLINES` whose names
    differ ("Violoncelle": "fr", "Cello": "en"; "Jazz": None); None for any other."""
    pair = _DISCIPLINES_BY_NAME.get(_folded(name))
    if pair is None or _folded(pair[0]) == _folded(pair[1]):
        return None
    return "fr" if _folded(name) == _folded(pair[0]) else "en"


def discipline_name(name: str, lang: str) -> str | None:
    """A known discipline's name in ``lang``; None when ``name`` is none of :data:`DISCIPLINES`."""
    pair = _DISCIPLINES_BY_NAME.get(_folded(name))
    if pair is None:
        return None
    return pair[1] if lang == "en" else pair[0]


def label(labels: dict[str, str], code: str | None, lang: str) -> str:
    """The translated label of a known code; an unknown one is shown as it was entered."""
    if not code:
        return ""
    known = labels.get(code)
    return i18n.gettext(known, lang) if known else code


def licence_of(code: str | None, lang: str) -> dict[str, str | None] | None:
    """A production's licence as a page shows it: its translated name and the address of its
    text; a code no longer offered is shown as it was entered, without a link."""
    if not code:
        return None
    if code not in LICENCE_NAMES:
        return {"label": code, "url": None}
    return {"label": i18n.gettext(LICENCE_NAMES[code], lang), "url": LICENCE_URLS.get(code)}


def choices(labels: dict[str, str], lang: str) -> list[dict[str, str]]:
    """The options of a form's list: each code with its translated label."""
    return [{"code": code, "label": i18n.gettext(text, lang)} for code, text in labels.items()]


def language_choices(current: str, lang: str) -> list[dict[str, str]]:
    """The languages a production's form offers: the list, and ``current`` first when a file's
    tag gave it another one (shown as its code)."""
    listed = choices(LANGUAGE_LABELS, lang)
    if current and current not in LANGUAGE_LABELS:
        listed.insert(0, {"code": current, "label": current})
    return listed


def hinted_choices(
    labels: dict[str, str], hints: dict[str, str], lang: str
) -> list[dict[str, str]]:
    """The options of a radio group: each code with its translated label and what it means."""
    return [
        {**choice, "hint": i18n.gettext(hints[choice["code"]], lang)}
        for choice in choices(labels, lang)
    ]
