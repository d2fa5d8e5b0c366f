"""What the studio and the admin page say of a production: its visibility and processing state
in words, its newest job, the row of the studio's list and the JSON that scripts poll.

The newest job is the one an artist waits on: a failed replacement shows as failed (with its
reason, and a retry when its file is kept) while the production stays ready and the previous
recording plays on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from babel.numbers import format_decimal, format_percent
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cite_live import access, i18n
from cite_live.catalogue import picture_key
from cite_live.i18n import N_, fallback_lang, pick
from cite_live.models import Job, Production
from cite_live.presenter import page_url
from cite_live.vocabulary import DRAFT_LABEL, KIND_LABELS, VISIBILITY_LABELS, label
from cite_live.web.urls import Urls

if TYPE_CHECKING:
    from cite_live.services import Services

STATE_LABELS = {
    "queued": N_("Waiting to be processed"),
    "running": N_("Processing"),
    "failed": N_("Processing failed"),
    "processing": N_("Processing"),
    "ready": N_("Ready"),
}
REPLACEMENT_FAILED = N_("Replacement failed")
STILL_PLAYS = N_("The previous recording still plays.")
SIZE_UNITS = {"fr": ("o", "Ko", "Mo", "Go", "To"), "en": ("B", "KB", "MB", "GB", "TB")}


def human_size(size: int, lang: str) -> str:
    """ "8 Go", "1,5 Go" in French; "8 GB", "1.5 GB" in English (units of 1024)."""
    value, unit = float(size), 0
    while value >= 1024 and unit < len(SIZE_UNITS["en"]) - 1:
        value, unit = value / 1024, unit + 1
    shown = round(value, 1) if unit and value < 10 else round(value)
    units = SIZE_UNITS.get(lang, SIZE_UNITS["en"])
    return f"{format_decimal(shown, locale=lang)}\u00a0{units[unit]}"


def latest_jobs(session: Session, production_ids: list[str]) -> dict[str, Job]:
    """The newest job of each production: the one whose state the artist is waiting on."""
    if not production_ids:
        return {}
    newest = (
        select(func.max(Job.id))
        .where(Job.production_id.in_(production_ids))
        .group_by(Job.production_id)
    )
    return {
        job.production_id or "": job
        for job in session.scalars(select(Job).where(Job.id.in_(newest)))
    }


def state_of(production: Production, job: Job | None) -> str:
    """queued, running or failed while a job says so; otherwise the production's status."""
    if job is not None and job.state in ("queued", "running", "failed"):
        return job.state
    return production.status


def studio_row(production: Production, job: Job | None, lang: str, urls: Urls) -> dict[str, Any]:
    """A production as the studio list shows it, with the links of its pages."""
    state = state_of(production, job)
    error = (job.error if job is not None and job.state == "failed" else None) or (
        production.error if production.status == "failed" else None
    )
    progress = job.progress if job is not None and state == "running" else 0.0
    # A replacement (or a new processing) that failed while an earlier version plays.
    plays_on = state == "failed" and production.current_version_id is not None
    state_label = label(STATE_LABELS, state, lang)
    # A replacement whose file went with its failure (it was refused): nothing to try again.
    file_gone = job is not None and job.original_key is not None and job.original_bytes is None
    if plays_on and job is not None and job.original_key is not None:
        state_label = i18n.gettext(REPLACEMENT_FAILED, lang)
    progress = max(0.0, min(1.0, progress or 0.0))
    return {
        "id": production.id,
        "title": pick(production.title, production.title_en, lang),
        "title_lang": fallback_lang(production.title, production.title_en, lang),
        "kind_label": label(KIND_LABELS, production.kind, lang),
        "status": production.status,
        **visibility_of(production, lang),
        "state": state,
        "state_label": state_label,
        "progress": progress,
        "percent": format_percent(progress, locale=lang),
        # The stored sentence is English; a known one is shown in the page's language.
        "error": i18n.gettext(error, lang) if error else None,
        "still_plays": i18n.gettext(STILL_PLAYS, lang) if plays_on else None,
        "can_retry": state == "failed" and not file_gone,
        "job_state": job.state if job is not None else "",
        "created_at": production.created_at,
        "page_url": urls.production(production.slug),
        "edit_url": urls.studio_edit(production.id),
        "replace_url": urls.studio_replace(production.id),
        "delete_url": urls.studio_delete(production.id),
        "retry_url": urls.studio_retry(production.id),
        "ready": production.status == "ready",
    }


def visibility_of(production: Production, lang: str) -> dict[str, Any]:
    """Who sees ``production``, as the studio's and the admin's lists show it: a draft as one,
    with the visibility it will have once published (studio_macros.visibility_badge)."""
    return {
        "visibility": production.visibility,
        "visibility_label": label(VISIBILITY_LABELS, production.visibility, lang),
        "draft": production.publish_as is not None,
        "draft_label": i18n.gettext(DRAFT_LABEL, lang),
        "publish_as_label": label(VISIBILITY_LABELS, production.publish_as, lang),
    }


def status_json(production: Production, job: Job | None, urls: Urls) -> dict[str, Any]:
    """A production in the JSON of the caller's productions, its links absolute."""
    return {
        "id": production.id,
        "title": production.title,
        "kind": production.kind,
        "status": production.status,
        "visibility": production.visibility,
        "draft": production.publish_as is not None,
        "publish_as": production.publish_as,
        "error": production.error if production.status == "failed" else None,
        "job": (
            {
                "state": job.state,
                "progress": round(max(0.0, min(1.0, job.progress or 0.0)), 4),
                "error": job.error,
                "attempts": job.attempts,
                "max_attempts": job.max_attempts,
            }
            if job is not None
            else None
        ),
        "page_url": page_url(production, urls),
        "edit_url": urls.absolute(urls.studio_edit(production.id)),
    }


def managed_picture(services: Services, production: Production, site_url: str) -> str | None:
    """The picture the studio and the admin list show of ``production``: the cover its artist
    chose (even before the recording is ready), else the recording's own image
    (:func:`cite_live.catalogue.picture_key`); None while there is none. Signed wherever the
    public address would refuse it (:func:`cite_live.access.manager_link`): call it only for a
    viewer who may manage the production."""
    key = production.cover_key or picture_key(production)
    return access.manager_link(services, production, site_url)(key) if key else None
