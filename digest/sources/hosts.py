"""A link's or picture's host as browsers and mail clients read it (the WHATWG URL
standard's way): what ``normalise.canonical_url`` stores, and what the picture rule
(``addresses.url_literal_kind``) judges, so both see the address a reader's client opens."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import idna

from digest.records import invisible_encoded

# What no host may hold once read (the WHATWG URL standard's forbidden domain code points):
# a percent-encoded "/" or "@" decoded would make another address of the link.
_NOT_IN_HOST = re.compile(r"[\x00-\x20#/:<>?@\[\\\]^|%\x7f]")
# Zero-width joiner and non-joiner: invisible, yet some scripts' names need them.
_JOINERS = re.compile("[\u200c\u200d]")


def web_host(host: str) -> str | None:
    """``host`` (a name or an IPv4 address, not IPv6) as browsers and mail clients read
    it, the WHATWG URL standard's way short of punycode: percent-decoded (UTF-8), mapped by
    UTS #46 (case folded; full-width or circled digits to ASCII ones, ideographic full
    stops to dots), so ``%31%39%32.168.1.1`` and ``１９２.168.1.1`` are 192.168.1.1 here
    too. None when what is left is no plain host: a "%" or a character no host holds
    (``_NOT_IN_HOST``), bytes that are not UTF-8, an invisible character (but a joiner where
    IDNA lets one stand, ``_joiners_fit``), or digits other than ASCII ones, which one
    reader's software or another may take for numbers."""
    if "%" in host:
        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError:
            return None
    if not host.isascii():
        try:
            host = idna.uts46_remap(host, std3_rules=False, transitional=False)
        except (idna.IDNAError, ValueError):
            return None
        bare = _JOINERS.sub("", host)
        if invisible_encoded(bare) != bare or any(c.isdigit() for c in host if not c.isascii()):
            return None
        if bare != host and not _joiners_fit(host):
            return None
    if not host or _NOT_IN_HOST.search(host):
        return None
    return invisible_encoded(host.lower())  # a joiner kept is written %E2%80%8D, as in links


def _joiners_fit(host: str) -> bool:
    """Whether each zero-width joiner or non-joiner of ``host`` stands where IDNA 2008 lets
    one (CONTEXTJ: after a virama, as in Sinhala's ශ්‍රී, or a non-joiner between joining
    letters, as in Persian): the only invisible characters a real name holds."""
    for label in host.split("."):
        if _JOINERS.search(label):
            try:
                idna.check_label(label)
            except (idna.IDNAError, ValueError):
                return False
    return True


def host_words(url: str) -> str | None:
    """Why ``canonical_url`` refuses the http(s) address ``url`` for its host
    (``web_host``, or a backslash in its authority, where browsers end the host), in
    ``refused_words``' way; None otherwise."""
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname or ""
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    if "\\" in parts.netloc:
        hostname = parts.netloc
    elif ":" in hostname:
        if "%" not in hostname:
            return None
    elif web_host(hostname) is not None:
        return None
    return f"written with a host mail clients may read as another ({hostname[:60]!r})"
