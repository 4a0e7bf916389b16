"""Web safety that needs no session: signed CSRF fields, per-key rate limits, headers.

Every form carries a CSRF field signed with the service secret and bound to what the form
acts on, so a page on another site cannot post it. A preferences form is bound to the
subscriber its link names. The sign-up form has no such name, so it is bound to a random
nonce in one cookie (``FORM_COOKIE``, SameSite=Strict, HttpOnly): a page elsewhere can
neither read the field nor make the browser send the cookie with its post. It used to be
bound to the client's IP, and then a reader whose address changed between the page and the
submit (IPv4 then IPv6, a private relay, carrier NAT) was told the form expired. That is
the only cookie: it holds no identity and no other page reads it.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from hashlib import sha256

from digest.clock import Clock

SECURITY_HEADERS = {
    # The web view is an email's HTML: inline styles, https images, no script at all.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# Sent over https only (a browser ignores it over http): a year, this host alone (a
# subdomain may still serve plain http).
HSTS = "max-age=31536000"


def csrf_token(secret: str, bound_to: str, now: float) -> str:
    """A form field valid for a day, bound to ``bound_to``; ``now``: the app's clock's time
    (``now_stamp``), in seconds since the epoch."""
    stamp = str(int(now // 3600))
    mac = hmac.new(secret.encode(), f"csrf:{bound_to}:{stamp}".encode(), sha256).hexdigest()
    return f"{stamp}.{mac[:32]}"


def csrf_ok(secret: str, bound_to: str, token: str, now: float) -> bool:
    """True for a genuine field issued in the 24 hours before ``now`` for the same thing."""
    hour = int(now // 3600)
    stamp, _, _ = token.partition(".")
    # isascii: str.isdigit() also admits digits int() refuses, such as '²'.
    if not (stamp.isascii() and stamp.isdigit()) or not 0 <= hour - int(stamp) <= 24:
        return False
    expected = csrf_token(secret, bound_to, int(stamp) * 3600)
    return hmac.compare_digest(expected, token)


FORM_COOKIE = "digest_form"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")


def form_nonce(cookie: str | None) -> str:
    """The nonce the sign-up form is bound to: the browser's own, kept so two open tabs both
    work, or a new one when it has none (or something that is not one of ours)."""
    if cookie and _NONCE.fullmatch(cookie):
        return cookie
    return secrets.token_urlsafe(16)  # 22 characters


def signup_csrf(secret: str, nonce: str, now: float) -> str:
    """The sign-up form's field, bound to the browser's nonce."""
    return csrf_token(secret, f"signup:{nonce}", now)


def signup_csrf_ok(secret: str, nonce: str | None, token: str, now: float) -> bool:
    """True for a field issued to the browser that holds ``nonce`` in the day before ``now``."""
    return bool(nonce and _NONCE.fullmatch(nonce)) and csrf_ok(
        secret, f"signup:{nonce}", token, now
    )


def now_stamp(clock: Clock) -> float:
    """The clock's wall time in seconds since the epoch: what CSRF fields are dated by."""
    return clock.now().timestamp()


def rate_key(address: str) -> str:
    """What a client's requests are counted under for a per-address limit: its IPv4
    address, or the /64 of its IPv6 one. A home line or a server is given a whole /64 and
    may use any address in it, so a limit per IPv6 address would be no limit at all to a
    client that changes address at each request. An IPv4 client seen in IPv6 form
    (``::ffff:198.51.100.7``) is counted as itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # "unknown", or a name a test server gives
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


# Providers known to ignore the dots of a local part (ann.lee@ is annlee@), by domain, and
# the one domain each delivers as.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(address: str) -> str:
    """What confirmations to an address are counted under: the mailbox they land in. A
    subaddress (``ann+1@``, ``ann+2@``: RFC 5233, which most providers deliver to ``ann@``)
    and Gmail's dots are taken off, so a stranger cannot send one mailbox a flood of
    confirmations by writing its address a new way each time."""
    local, _, domain = address.lower().rpartition("@")
    local = local.partition("+")[0] or local  # an address that begins with "+" is its own
    if domain in _DOTLESS:
        local, domain = local.replace(".", "") or local, _DOTLESS[domain]
    return f"{local}@{domain}"


class RateLimit:
    """At most ``limit`` events per ``window`` seconds for each key (an IP, an address).
    ``clock``: the app's monotonic count (``app.clock.monotonic``), so a test moves the
    window on with a ``ManualClock`` instead of waiting."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]):
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        """Record an event for ``key``; False when it is over the limit."""
        now = self.clock()
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 100_000:  # keep memory bounded under a flood of keys
            self._events = defaultdict(deque, {key: events})
        return True
