"""Editions: when one is built and for whom (``slots``), its stories ranked and stored once
per digest and slot (``build``), its messages per segment of readers (``segments``), and
what it leaves out and why (``notes``). The build half of the composition root
(``digest.pipeline``)."""

from digest.editions.build import (
    WindowRanking,
    breadth_sources,
    build_edition,
    edition_row,
    next_edition_preview,
    rank_window,
    sent_before,
    window_ranking,
)
from digest.editions.notes import left_out, nothing_new
from digest.editions.segments import SegmentTemplates, log_trim
from digest.editions.slots import (
    digest_plan,
    digest_slot,
    digest_timezone,
    edition_info,
    local_time_bucket,
    missed_slot,
    next_edition_at,
    rebuildable,
    superseding_edition,
    web_view_url,
)

__all__ = [
    "SegmentTemplates",
    "WindowRanking",
    "breadth_sources",
    "build_edition",
    "digest_plan",
    "digest_slot",
    "digest_timezone",
    "edition_info",
    "edition_row",
    "left_out",
    "local_time_bucket",
    "log_trim",
    "missed_slot",
    "next_edition_at",
    "next_edition_preview",
    "nothing_new",
    "rank_window",
    "rebuildable",
    "sent_before",
    "superseding_edition",
    "web_view_url",
    "window_ranking",
]
