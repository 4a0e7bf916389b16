"""Registrable domains from the Public Suffix List: which hosts belong to one organisation.

Two uses share this one reading of the list: a page source's "same site" (news.co.uk and
www.news.co.uk are one site, rival.co.uk another) and DMARC's relaxed alignment (a DKIM
d=example.org covers From: news@mail.example.org). The list is the copy bundled with
publicsuffixlist, never fetched.
"""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList


def registrable_domain(host: str) -> str | None:
    """``example.co.uk`` for ``www.example.co.uk``; None for a bare suffix or one label."""
    return _suffix_list().privatesuffix(host.lower().rstrip("."))


def same_organisation(host: str, other: str) -> bool:
    """True when both hosts have one registrable domain (DMARC relaxed alignment), or,
    for a host the list gives none (``localhost``), when they are the same host."""
    host, other = host.lower().rstrip("."), other.lower().rstrip(".")
    if host == other:
        return True
    domain = registrable_domain(host)
    return domain is not None and domain == registrable_domain(other)


@cache
def _suffix_list() -> PublicSuffixList:
    """The Public Suffix List bundled with publicsuffixlist, read once (~0.15 s)."""
    return PublicSuffixList()
