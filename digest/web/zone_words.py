"""Why the preferences page refuses a typed time zone, in the reader's language.

The config's check (``check_timezone``) finds what was meant, the zones a misspelt or
half-typed name probably means and the zone of an offset typed as one ('GMT+5'); it
words that for an admin, in English. A reader gets the same suggestions in their own
language: the zone names themselves are IANA's, the same in every language.
"""

from __future__ import annotations

from functools import reduce

from digest.config.models import offset_meant, region_places, zones_meant
from digest.render.i18n import Localizer


def zone_refused(tr: Localizer, typed: str) -> str:
    """Why ``typed`` is not a time zone, and the zone it probably means, in ``tr``'s
    language (the first suggestion that fits, as the config's check orders them)."""
    zone = repr(typed if len(typed) <= 40 else typed[:40] + "…")
    offset = offset_meant(typed)
    if offset is not None:
        written, etc = offset
        if etc == "UTC":
            return tr.gettext(
                "unknown time zone {zone}; write 'UTC', or better the place's own zone, "
                "named Area/City ('Europe/Paris', 'America/New_York'), which follows its "
                "summer time",
                zone=zone,
            )
        if not etc:
            return tr.gettext(
                "unknown time zone {zone}; no IANA zone is a fixed {offset}: use the "
                "place's own zone, named Area/City ('Europe/Paris', 'America/New_York')",
                zone=zone,
                offset=written,
            )
        return tr.gettext(
            "unknown time zone {zone}; for {offset} write {etc} (IANA's Etc names count "
            "the other way round), or better the place's own zone, named Area/City "
            "('Europe/Paris', 'America/New_York'), which follows its summer time",
            zone=zone,
            offset=written,
            etc=repr(etc),
        )
    places = [repr(z) for z in region_places(typed)]
    if places:
        return tr.gettext(
            "unknown time zone {zone}; that is a region: name a place in it, such as {zones}",
            zone=zone,
            zones=reduce(lambda a, b: tr.gettext("{first} or {last}", first=a, last=b), places),
        )
    close = [repr(z) for z in zones_meant(typed)]
    if close:
        either = reduce(lambda a, b: tr.gettext("{first} or {last}", first=a, last=b), close)
        return tr.gettext(
            "unknown time zone {zone}; did you mean {zones}?", zone=zone, zones=either
        )
    return tr.gettext("unknown time zone {zone}; use a name like 'Europe/Paris'", zone=zone)
