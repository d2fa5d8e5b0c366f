"""How often productions are played: an artist's statistics in the studio, every partner's on
the admin side. The numbers are cite_live.play_stats'; the chart is drawn here as SVG geometry
(no chart library, no style attribute: the page's CSP allows neither), and a table beside it
says the same in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from cite_live import params, play_stats
from cite_live.models import Production
from cite_live.play_stats import PlayStats
from cite_live.presenter import title_of
from cite_live.web.context import ACCOUNT_CACHE, Context, page

# The chart's drawing box, in SVG units; it stretches to the page's width.
CHART_WIDTH = 900
CHART_HEIGHT = 200


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    plays: int


def day_bars(stats: PlayStats) -> list[Bar]:
    """One bar per day, the busiest day at full height (a day without plays has a sliver, so
    that the day is still there to point at)."""
    slot = CHART_WIDTH / max(1, len(stats.days))
    top = max(1, stats.busiest_day)
    bars = []
    for i, (day, plays) in enumerate(stats.days):
        height = max(1.0, CHART_HEIGHT * plays / top)
        bars.append(
            Bar(
                x=round(i * slot + slot * 0.1, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
                day=day.isoformat(),
                plays=plays,
            )
        )
    return bars


def _range(ctx: Context) -> int:
    """``?days=``: one of the ranges offered; anything else is a 400."""
    days = params.whole_number(
        ctx.query.get("days"), "days", low=1, high=max(play_stats.RANGES), lang=ctx.lang
    )
    if days is None:
        return play_stats.DEFAULT_RANGE
    if days not in play_stats.RANGES:
        raise ctx.refusal(400, play_stats.BAD_RANGE)
    return days


def _context(ctx: Context, stats: PlayStats, days: int) -> dict[str, Any]:
    return {
        "stats": stats,
        "days": days,
        "ranges": play_stats.RANGES,
        "bars": day_bars(stats),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
    }


@page
def studio_stats(ctx: Context) -> Response:
    """The plays of the signed-in account's productions; ``?production=`` one of them alone."""
    user = ctx.require_user()
    days = _range(ctx)
    chosen = params.public_id(ctx.query.get("production") or "")
    with ctx.services.sessions() as session:
        owned = session.scalars(
            select(Production)
            .where(Production.owner_id == user.id)
            .order_by(Production.created_at.desc(), Production.id)
        ).all()
        choices = [(p.id, title_of(p, ctx.lang)) for p in owned]
        # Another account's production, or none at all: the whole list, as if not asked.
        if chosen not in {pid for pid, _ in choices}:
            chosen = None
        stats = play_stats.play_stats(
            session,
            days=days,
            owner_id=user.id,
            production_id=chosen,
            lang=ctx.lang,
        )
    context = {**_context(ctx, stats, days), "choices": choices, "chosen": chosen}
    return ctx.render("studio_stats.html", context, cache=ACCOUNT_CACHE)


@page
def admin_stats(ctx: Context) -> Response:
    """Every production's plays, and each partner site's."""
    ctx.require_admin()
    days = _range(ctx)
    with ctx.services.sessions() as session:
        stats = play_stats.play_stats(
            session,
            days=days,
            lang=ctx.lang,
        )
    return ctx.render("admin_stats.html", _context(ctx, stats, days), cache=ACCOUNT_CACHE)
