"""Trim an edition to fit: the most stories whose HTML part, inlined and encoded as sent,
stays under Gmail's clipping size, found with few premailer runs."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from digest.records import RankedEdition, Story
from digest.render import qp

# Gmail clips HTML over about 102 KB as sent (quoted-printable: "=" is "=3D", "é" is
# "=C3=A9"); keep room for the personal links and the part's headers.
HTML_LIMIT = 100_000
# A story's block in the rendered HTML, by the number it is shown with.
_STORY_START = re.compile(r'<div class="story" id="story-(\d+)"')


def fitting(
    html: Callable[[int], str],
    inline: Callable[[str], str],
    ranked: RankedEdition,
    shown: list[Story],
) -> tuple[int, str]:
    """The most stories whose inlined HTML part fits ``HTML_LIMIT`` as sent, and that HTML
    (none at all when not even the header and footer fit). ``html`` renders the first k
    stories, ``inline`` inlines its CSS; ``shown``: the stories as the email numbers them.

    premailer is most of a render's cost, so the count is searched on estimates and only
    checked by inlining: one render of every story gives each story's share of the bytes
    (``_shares``), the last inlined size how much inlining and encoding add, and each check
    narrows the bracket [fits, does not fit]. An edition that fits whole is inlined once, a
    trimmed one typically three times (a bisection of 600 stories would take eleven).
    """
    full = html(ranked.count)
    shares = _shares(full, ranked, shown)  # shares[k]: the first k stories' bytes
    whole = size_of(full)
    frame = max(whole - shares[-1], 1)  # header, footer and style, unshared
    inlined: dict[int, str] = {}
    sizes: dict[int, int] = {}
    fits, too_big = 0, ranked.count + 1
    if whole <= 2 * HTML_LIMIT:  # inlining never halves a page: worth checking whole
        candidate = ranked.count
    else:
        candidate = _estimate(shares, frame, sizes, fits, too_big)
    checks = 0
    while too_big - fits > 1:
        candidate = min(max(candidate, fits + 1), too_big - 1)
        inlined[candidate] = inline(html(candidate))
        sizes[candidate] = size_of(inlined[candidate])
        if sizes[candidate] <= HTML_LIMIT:
            fits = candidate
        else:
            too_big = candidate
        checks += 1
        if checks >= 4:  # the estimates stay off: halve the bracket from now on
            candidate = (fits + too_big) // 2
        else:
            candidate = _estimate(shares, frame, sizes, fits, too_big)
    if fits not in inlined:  # nothing fits, not even one story: the frame alone
        inlined[fits] = inline(html(fits))
    return fits, inlined[fits]


def _estimate(shares: list[int], frame: int, sizes: dict[int, int], fits: int, too_big: int) -> int:
    """The largest count in the bracket (fits, too_big) whose estimated size fits.

    Sizes are taken to grow in step with the stories' shares: between the bracket's ends
    when both were inlined, else from the share-to-size ratio of the last count inlined.
    """
    if fits in sizes and too_big in sizes and sizes[too_big] > sizes[fits]:
        low, high = shares[fits], shares[too_big]
        slope = (high - low) / (sizes[too_big] - sizes[fits])
        room = low + (HTML_LIMIT - sizes[fits]) * slope
    else:
        last = next(reversed(sizes), None)
        ratio = 1.0 if last is None else sizes[last] / (frame + shares[last])
        room = HTML_LIMIT / ratio - frame
    count = bisect.bisect_right(shares, room) - 1
    return min(max(count, fits + 1), too_big - 1)


def _shares(html: str, ranked: RankedEdition, shown: list[Story]) -> list[int]:
    """Cumulative bytes of the first k stories in rank order, from one render of them all:
    each story's block runs from its opening tag to the next story's (a group's heading
    counts with the story before it)."""
    starts = {int(m.group(1)): m.start() for m in _STORY_START.finditer(html)}
    positions = [starts.get(n) for n in range(1, len(shown) + 1)]
    known = sorted(p for p in positions if p is not None)
    block: dict[int, int] = {}
    for n, start in enumerate(positions, 1):
        if start is None:  # an override template without the story ids: no share
            block[n] = 0
            continue
        following = bisect.bisect_right(known, start)
        end = known[following] if following < len(known) else _section_end(html, start)
        block[n] = len(qp.encode(html[start:end]))
    numbers = {id(story): n for n, story in enumerate(shown, 1)}
    cumulative = [0]
    for story in (*ranked.breaking, *ranked.latest):
        cumulative.append(cumulative[-1] + block[numbers[id(story)]])
    return cumulative


def _section_end(html: str, start: int) -> int:
    """Where the last story's block ends: the end of its table cell, else of the page."""
    end = html.find("</td>", start)
    return end if end >= 0 else len(html)


def size_of(html: str) -> int:
    """Bytes of the HTML part as sent: quoted-printable, as ``render.message`` encodes it."""
    return len(qp.encode(html))


def shows_all(html: str, count: int) -> bool:
    """Whether the rendered ``html`` shows all ``count`` stories of its edition: False for
    one trimmed to fit (or rendered by an override template without the story ids, which
    cannot tell)."""
    return len({m.group(1) for m in _STORY_START.finditer(html)}) >= count
